//! Python face of the systematic explorer, and what a ready callback may touch.

use std::sync::Mutex;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyTuple;
use seedloop_engine::systematic::{Explorer as EngineExplorer, Footprint, Plan, Stop, Walk};

use crate::loop_core::{is_function, self_carrying_types, task_types};

/// The plan of one run (opaque to Python): passed to `SeedLoop` setup.
#[pyclass(frozen, module = "seedloop._engine")]
pub struct WalkPlan {
    pub plan: Plan,
}

#[pymethods]
impl WalkPlan {
    /// The choices replayed before the walk takes its own.
    #[getter]
    fn prefix(&self) -> Vec<u32> {
        self.plan.prefix.clone()
    }
}

/// What one run of the exploration saw (opaque to Python): given back to
/// `Explorer.report`.
#[pyclass(frozen, module = "seedloop._engine")]
pub struct WalkRecord {
    pub walk: Walk,
}

#[pymethods]
impl WalkRecord {
    /// Did the walk stop before the scenario ended ("asleep", "bound",
    /// "diverged"), or None?
    #[getter]
    fn stopped(&self) -> Option<&'static str> {
        self.walk.stop().map(|s| match s {
            Stop::Asleep => "asleep",
            Stop::Bound => "bound",
            Stop::Diverged { .. } => "diverged",
        })
    }

    /// The step at which replaying the prefix ran another entry, or None.
    #[getter]
    fn diverged_at(&self) -> Option<u64> {
        match self.walk.stop() {
            Some(Stop::Diverged { step }) => Some(step),
            _ => None,
        }
    }
}

/// Bounded depth-first search over decision tapes with sleep sets.
#[pyclass(frozen, module = "seedloop._engine")]
pub struct Explorer {
    inner: Mutex<EngineExplorer>,
}

impl Explorer {
    fn with<R>(&self, f: impl FnOnce(&mut EngineExplorer) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[pymethods]
impl Explorer {
    /// `bound`: the most preemptions (non-FIFO choices) a run may spend,
    /// deepened round by round from 0; None for no bound (one round).
    /// `reduce`: prune reorderings of independent steps (sleep sets).
    #[new]
    #[pyo3(signature = (bound, reduce=true))]
    fn new(bound: Option<u32>, reduce: bool) -> Self {
        Explorer {
            inner: Mutex::new(EngineExplorer::new(bound, reduce)),
        }
    }

    fn next_plan(&self) -> Option<WalkPlan> {
        self.with(|e| e.next_plan()).map(|plan| WalkPlan { plan })
    }

    fn report(&self, record: &WalkRecord) {
        self.with(|e| e.report(&record.walk))
    }

    /// Runs planned so far (stopped walks included).
    #[getter]
    fn runs(&self) -> u64 {
        self.with(|e| e.runs)
    }

    /// Walks stopped early (their schedules were covered, or over the bound).
    #[getter]
    fn stopped(&self) -> u64 {
        self.with(|e| e.stopped)
    }

    /// Complete schedules run in the current round.
    #[getter]
    fn interleavings(&self) -> u64 {
        self.with(|e| e.interleavings)
    }

    /// The current round's bound (None: unbounded).
    #[getter]
    fn bound(&self) -> Option<u32> {
        self.with(|e| (e.bound() != u32::MAX).then_some(e.bound()))
    }

    /// Is every round over?
    #[getter]
    fn done(&self) -> bool {
        self.with(|e| e.is_done())
    }

    /// Over, and the last round never cut a choice for the bound.
    #[getter]
    fn exhaustive(&self) -> bool {
        self.with(|e| e.exhaustive())
    }
}

static SET_RESULT_UNLESS_CANCELLED: GILOnceCell<PyObject> = GILOnceCell::new();
static FUTURE_TYPES: GILOnceCell<Py<PyTuple>> = GILOnceCell::new();
static SEED_TASK: GILOnceCell<PyObject> = GILOnceCell::new();

/// asyncio's Future types and seedloop's `SeedFuture` (which only changes `__hash__`).
fn future_types(py: Python<'_>) -> PyResult<&Bound<'_, PyTuple>> {
    Ok(FUTURE_TYPES
        .get_or_try_init(py, || -> PyResult<Py<PyTuple>> {
            let futures = py.import("asyncio.futures")?;
            let mut types = vec![futures.getattr("Future")?];
            if let Ok(py_future) = futures.getattr("_PyFuture") {
                types.push(py_future);
            }
            types.push(py.import("seedloop._loop.tasks")?.getattr("SeedFuture")?);
            Ok(PyTuple::new(py, types)?.unbind())
        })?
        .bind(py))
}

/// seedloop's `SeedTask` (an `asyncio.Task` that only changes `__hash__`).
fn seed_task(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    Ok(SEED_TASK
        .get_or_try_init(py, || -> PyResult<PyObject> {
            Ok(py
                .import("seedloop._loop.tasks")?
                .getattr("SeedTask")?
                .unbind())
        })?
        .bind(py))
}

/// Is `obj` exactly one of asyncio's futures (or tasks, with `tasks`)? A
/// subclass may override `set_result`, `cancelled`... with user code.
fn is_stock_future(py: Python<'_>, obj: &Bound<'_, PyAny>, tasks: bool) -> PyResult<bool> {
    let ty = obj.get_type();
    if future_types(py)?.iter().any(|t| ty.is(&t)) {
        return Ok(true);
    }
    Ok(tasks && (ty.is(seed_task(py)?) || task_types(py)?.iter().any(|t| ty.is(&t))))
}

fn addr(obj: &Bound<'_, PyAny>) -> u64 {
    obj.as_ptr() as usize as u64
}

/// What running `callback(*args)` may touch. Only loop-internal callbacks
/// whose effects are known get a narrow footprint; everything else may run
/// user code and so may touch anything (see `Footprint::Any`):
///
/// - `futures._set_result_unless_cancelled(fut, ...)` (the timer of
///   `asyncio.sleep`): completes `fut`, schedules its callbacks;
/// - `fut.set_result` / `fut.set_exception` of a Future: the same;
/// - gather's `_done_callback(child)`: counts the child into its gather
///   (the closure, one per gather call) and may complete the gather.
///
/// Only asyncio's own Future and Task types (and seedloop's `SeedFuture`,
/// `SeedTask`, which only change `__hash__`) qualify: a subclass may run
/// user code in an overridden method.
///
/// Scheduling callbacks is not a conflict: the explorer treats the ready
/// entries as a set and tries every order of them anyway.
pub fn footprint_of(
    py: Python<'_>,
    callback: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<Footprint> {
    let sruc = SET_RESULT_UNLESS_CANCELLED.get_or_try_init(py, || -> PyResult<PyObject> {
        Ok(py
            .import("asyncio.futures")?
            .getattr("_set_result_unless_cancelled")?
            .unbind())
    })?;
    if callback.is(sruc.bind(py)) {
        return Ok(match args.get_item(0) {
            Ok(fut) if is_stock_future(py, &fut, false)? => Footprint::Objects([addr(&fut), 0]),
            _ => Footprint::Any,
        });
    }
    let ty = callback.get_type();
    if is_function(py, &ty)? {
        let module = callback.getattr(intern!(py, "__module__"))?;
        let qualname = callback.getattr(intern!(py, "__qualname__"))?;
        if module.extract::<String>().ok().as_deref() == Some("asyncio.tasks")
            && qualname.extract::<String>().ok().as_deref()
                == Some("gather.<locals>._done_callback")
        {
            if let Ok(child) = args.get_item(0) {
                if is_stock_future(py, &child, true)? {
                    return Ok(Footprint::Objects([addr(callback), addr(&child)]));
                }
            }
        }
        return Ok(Footprint::Any);
    }
    if ty.is_subclass(self_carrying_types(py)?)? {
        if let Ok(owner) = callback.getattr(intern!(py, "__self__")) {
            if is_stock_future(py, &owner, false)? {
                let name = callback.getattr(intern!(py, "__name__"))?;
                let name = name.extract::<String>().unwrap_or_default();
                if name == "set_result" || name == "set_exception" {
                    return Ok(Footprint::Objects([addr(&owner), 0]));
                }
            }
        }
    }
    Ok(Footprint::Any)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Explorer>()?;
    m.add_class::<WalkPlan>()?;
    m.add_class::<WalkRecord>()?;
    Ok(())
}
