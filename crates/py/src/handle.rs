//! `Handle`: what `call_soon`/`call_later`/`call_at` return.
//!
//! Frozen (no borrow tracking on the hot path). The callback runs as
//! `Context.run(context, callback, *args)`, and the argument tuple for that
//! call is built once, at scheduling time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

#[pyclass(frozen, module = "seedloop._engine", weakref)]
pub struct Handle {
    /// `(context, callback, *args)`, ready for `Context.run`: the one place
    /// the handle keeps them (one reference to take and drop per handle).
    pub(crate) run_args: Py<PyTuple>,
    pub(crate) cancelled: AtomicBool,
    /// Deadline in loop time for timer handles.
    pub(crate) when: Option<f64>,
    /// Shared with the loop: how many timers were cancelled (drives purging).
    pub(crate) cancelled_timers: Option<Arc<AtomicUsize>>,
}

static CONTEXT_RUN: GILOnceCell<PyObject> = GILOnceCell::new();
static FORMAT_CALLBACK: GILOnceCell<PyObject> = GILOnceCell::new();

impl Handle {
    pub(crate) fn new(
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: PyObject,
        when: Option<f64>,
        cancelled_timers: Option<Arc<AtomicUsize>>,
    ) -> PyResult<Handle> {
        let mut items = Vec::with_capacity(args.len() + 2);
        items.push(context.into_bound(py));
        items.push(callback.clone());
        items.extend(args.iter());
        let run_args = PyTuple::new(py, items)?;
        Ok(Handle {
            run_args: run_args.unbind(),
            cancelled: AtomicBool::new(false),
            when,
            cancelled_timers,
        })
    }

    /// A ready handle from its `(context, callback, *args)` tuple, built by the caller.
    pub(crate) fn from_run_args(run_args: Bound<'_, PyTuple>) -> Handle {
        Handle {
            run_args: run_args.unbind(),
            cancelled: AtomicBool::new(false),
            when: None,
            cancelled_timers: None,
        }
    }

    fn context<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.run_args
            .bind(py)
            .get_item(0)
            .expect("a handle's run tuple starts with its context")
    }

    fn callback<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.run_args
            .bind(py)
            .get_item(1)
            .expect("a handle's run tuple holds its callback second")
    }

    fn args<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        let run_args = self.run_args.bind(py);
        run_args.get_slice(2, run_args.len())
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// The callback as asyncio prints it: `func(args) at file:line`. From 3.13
    /// on, asyncio shows the arguments only in debug mode (`debug`).
    pub(crate) fn callback_source(&self, py: Python<'_>, debug: bool) -> PyResult<String> {
        let format = FORMAT_CALLBACK.get_or_try_init(py, || -> PyResult<PyObject> {
            Ok(py
                .import("asyncio.format_helpers")?
                .getattr("_format_callback_source")?
                .unbind())
        })?;
        let args = (self.callback(py), self.args(py));
        let source = if py.version_info() >= (3, 13) {
            let kwargs = PyDict::new(py);
            kwargs.set_item("debug", debug)?;
            format.bind(py).call(args, Some(&kwargs))?
        } else {
            format.bind(py).call1(args)?
        };
        source.extract()
    }

    /// Run the callback in its context; errors are the caller's to route.
    pub(crate) fn run(&self, py: Python<'_>) -> PyResult<()> {
        let run = CONTEXT_RUN.get_or_try_init(py, || -> PyResult<PyObject> {
            Ok(py
                .import("contextvars")?
                .getattr("Context")?
                .getattr("run")?
                .unbind())
        })?;
        run.bind(py).call1(self.run_args.bind(py))?;
        Ok(())
    }
}

#[pymethods]
impl Handle {
    /// Make handles visible to the cyclic GC: an object that stores its own
    /// TimerHandle (aiohttp, websockets, redis-py all do) forms a cycle through
    /// the handle, which would otherwise keep the whole run (loop included) alive.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.run_args)?;
        Ok(())
    }

    fn cancel(&self) {
        if !self.cancelled.swap(true, Ordering::Relaxed) {
            if let Some(counter) = &self.cancelled_timers {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    /// The scheduled loop time (timer handles only, like `asyncio.TimerHandle.when`).
    fn when(&self) -> PyResult<f64> {
        self.when.ok_or_else(|| {
            pyo3::exceptions::PyAttributeError::new_err(
                "when() is only defined for handles from call_later/call_at",
            )
        })
    }

    fn get_context<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.context(py)
    }

    #[getter]
    fn _callback<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.callback(py)
    }

    #[getter]
    fn _args<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        self.args(py)
    }

    #[getter]
    fn _cancelled(&self) -> bool {
        self.is_cancelled()
    }

    #[getter]
    fn _when(&self) -> Option<f64> {
        self.when
    }

    /// Run the callback now (asyncio's private `Handle._run`, used by some tools).
    fn _run(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // A handle does not know its loop: shown as in debug mode (with arguments).
        let source = self.callback_source(py, true)?;
        let kind = if self.when.is_some() {
            "TimerHandle"
        } else {
            "Handle"
        };
        let mut parts = String::new();
        if self.is_cancelled() {
            parts.push_str(" cancelled");
        }
        if let Some(when) = self.when {
            parts.push_str(&format!(" when={when}"));
        }
        Ok(format!("<{kind}{parts} {source}>"))
    }
}
