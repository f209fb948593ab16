//! `Handle`: what `call_soon`/`call_later`/`call_at` return.
//!
//! Frozen (no borrow tracking on the hot path). The callback runs as
//! `Context.run(context, callback, *args)`; the handle keeps the three as
//! its own fields, so scheduling allocates nothing but the handle, and a
//! spent `call_soon` handle nobody else holds is reused (`HandlePool`).

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::gil_cell::GilCell;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::capi;

/// A strong reference released with a plain `Py_DECREF`. A handle's fields
/// are dropped only in its `tp_dealloc`, or on a failed creation inside
/// `call_soon`, both with the GIL held, so PyO3's check for the GIL (a
/// thread-local read per reference) is not needed.
pub(crate) struct Owned(ManuallyDrop<PyObject>);

impl Owned {
    pub(crate) fn new(obj: PyObject) -> Owned {
        Owned(ManuallyDrop::new(obj))
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    pub(crate) fn bind<'a, 'py>(&'a self, py: Python<'py>) -> &'a Bound<'py, PyAny> {
        self.0.bind(py)
    }

    fn get(&self) -> &PyObject {
        &self.0
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the GIL is held wherever a handle is dropped (see above),
        // and this is the reference `new` took over.
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}

/// A handle's callback arguments, kept inline for the common counts (a task
/// step takes none, a wake-up or done callback one) so scheduling allocates
/// no tuple: a GC-tracked tuple per pending callback made every collection
/// of a busy loop longer.
pub(crate) enum Args {
    Zero,
    One(Owned),
    Two(Owned, Owned),
    Many(Py<PyTuple>),
}

impl Args {
    /// From a C array of `n` borrowed references.
    ///
    /// # Safety
    /// `items` must point to `n` valid object pointers (the GIL held).
    pub(crate) unsafe fn from_raw(
        py: Python<'_>,
        items: *const *mut pyo3::ffi::PyObject,
        n: usize,
    ) -> PyResult<Args> {
        // SAFETY: the caller guarantees `n` valid borrowed pointers.
        unsafe {
            let item = |i: usize| Owned::new(PyObject::from_borrowed_ptr(py, *items.add(i)));
            Ok(match n {
                0 => Args::Zero,
                1 => Args::One(item(0)),
                2 => Args::Two(item(0), item(1)),
                _ => Args::Many(
                    PyTuple::new(
                        py,
                        (0..n).map(|i| Bound::from_borrowed_ptr(py, *items.add(i))),
                    )?
                    .unbind(),
                ),
            })
        }
    }

    pub(crate) fn from_tuple(args: &Bound<'_, PyTuple>) -> Args {
        let item = |i: usize| {
            Owned::new(
                args.get_item(i)
                    .expect("index within the tuple's length")
                    .unbind(),
            )
        };
        match args.len() {
            0 => Args::Zero,
            1 => Args::One(item(0)),
            2 => Args::Two(item(0), item(1)),
            _ => Args::Many(args.clone().unbind()),
        }
    }

    fn tuple<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        match self {
            Args::Zero => PyTuple::empty(py),
            Args::One(a) => PyTuple::new(py, [a.bind(py)]).expect("a one-item tuple"),
            Args::Two(a, b) => PyTuple::new(py, [a.bind(py), b.bind(py)]).expect("a pair"),
            Args::Many(t) => t.bind(py).clone(),
        }
    }
}

/// What a handle runs: `context.run(callback, *args)`.
pub(crate) struct Call {
    context: Owned,
    callback: Owned,
    args: Args,
}

impl Call {
    /// The call a spent handle keeps while it waits in the pool.
    fn spent(py: Python<'_>) -> Call {
        Call::without_callback(py, py.None())
    }

    /// A call with `context` and no callback nor arguments: what a
    /// cancelled handle keeps (its context stays, as in stock).
    fn without_callback(py: Python<'_>, context: PyObject) -> Call {
        Call {
            context: Owned::new(context),
            callback: Owned::new(py.None()),
            args: Args::Zero,
        }
    }
}

#[pyclass(frozen, module = "seedloop._engine", weakref)]
pub struct Handle {
    /// Written at creation, by `HandlePool` while the pool holds the
    /// handle's only reference, and by `release_call` when it is cancelled
    /// and not running (see `Handle::call`).
    call: UnsafeCell<Call>,
    pub(crate) cancelled: AtomicBool,
    /// `run` is calling the callback: a `cancel` meanwhile leaves the call
    /// in place until it returns (see `release_call`).
    running: AtomicBool,
    /// Deadline in loop time for timer handles.
    pub(crate) when: Option<f64>,
    /// Shared with the loop: how many timers were cancelled (drives purging).
    pub(crate) cancelled_timers: Option<Arc<AtomicUsize>>,
}

// SAFETY: `call` is only touched with the GIL held (every entry point is a
// Python call or the loop running under the GIL). It is written while the
// writer holds the handle's only reference, or (`release_call`) while no
// borrow of it is alive: `run`, the one reader that keeps it across Python
// code, marks itself `running`, and every other reader clones what it needs
// before running Python code. So no reader can overlap a write.
unsafe impl Sync for Handle {}

static CONTEXT_RUN: GILOnceCell<PyObject> = GILOnceCell::new();
static FORMAT_CALLBACK: GILOnceCell<PyObject> = GILOnceCell::new();
static ASYNCIO_EVENTS: GILOnceCell<PyObject> = GILOnceCell::new();

impl Handle {
    pub(crate) fn new(
        callback: &Bound<'_, PyAny>,
        args: Args,
        context: PyObject,
        when: Option<f64>,
        cancelled_timers: Option<Arc<AtomicUsize>>,
    ) -> Handle {
        Handle {
            call: UnsafeCell::new(Call {
                context: Owned::new(context),
                callback: Owned::new(callback.clone().unbind()),
                args,
            }),
            cancelled: AtomicBool::new(false),
            running: AtomicBool::new(false),
            when,
            cancelled_timers,
        }
    }

    fn call(&self) -> &Call {
        // SAFETY: see `unsafe impl Sync`: no write overlaps a borrow.
        unsafe { &*self.call.get() }
    }

    fn context<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.call().context.bind(py).clone()
    }

    fn callback<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.call().callback.bind(py).clone()
    }

    fn args<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        self.call().args.tuple(py)
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
    /// What `Context.run(context, callback, *args)` does, without dispatching
    /// through the method: enter the context, call, exit (about 150
    /// instructions a callback). Anything but an exact `Context` goes through
    /// `Context.run`, which raises the stock loop's TypeError for it.
    pub(crate) fn run(&self, py: Python<'_>) -> PyResult<()> {
        self.running.store(true, Ordering::Relaxed);
        let outcome = self.run_call(py);
        self.running.store(false, Ordering::Relaxed);
        if self.is_cancelled() {
            // Cancelled while it ran (by the callback itself, say).
            self.release_call(py);
        }
        outcome
    }

    /// Drop the callback and its arguments of a cancelled handle, as stock
    /// asyncio's `Handle.cancel()` does (`_callback = _args = None`): what
    /// they reference is freed now, not when the loop lets go of the timer.
    /// The context stays (`get_context()` still answers). Not while `run` is
    /// calling them: it reads the call until the callback returns.
    fn release_call(&self, py: Python<'_>) {
        if self.running.load(Ordering::Relaxed) {
            return;
        }
        let released = Call::without_callback(py, self.call().context.get().clone_ref(py));
        // SAFETY: the GIL is held and nothing borrows the call: `run` is not
        // calling it (checked above), and every other reader clones what it
        // needs before running Python code. The old call is dropped after
        // the swap, so code its release runs sees a consistent handle.
        let old = unsafe { std::mem::replace(&mut *self.call.get(), released) };
        drop(old);
    }

    fn run_call(&self, py: Python<'_>) -> PyResult<()> {
        let call = self.call();
        let (ctx, cb) = (call.context.as_ptr(), call.callback.as_ptr());
        // SAFETY: live objects owned by this handle, the GIL held.
        if !unsafe { capi::is_context(ctx) } {
            return self.run_through_context_run(py);
        }
        // SAFETY: as above; entering fails (RuntimeError set) if the context
        // is already entered, as `Context.run` does.
        if unsafe { capi::PyContext_Enter(ctx) } < 0 {
            return Err(PyErr::fetch(py));
        }
        let end = std::ptr::null_mut::<ffi::PyObject>();
        // SAFETY: every pointer is a live object owned by this handle, the
        // variadic list is NULL-terminated, and the GIL is held.
        let result = unsafe {
            match &call.args {
                Args::Zero => ffi::PyObject_CallNoArgs(cb),
                Args::One(a) => ffi::PyObject_CallFunctionObjArgs(cb, a.as_ptr(), end),
                Args::Two(a, b) => {
                    ffi::PyObject_CallFunctionObjArgs(cb, a.as_ptr(), b.as_ptr(), end)
                }
                Args::Many(t) => ffi::PyObject_Call(cb, t.as_ptr(), std::ptr::null_mut()),
            }
        };
        // Fetch the callback's error before leaving the context: exiting
        // only fails if the callback left it entered, a bug of its own.
        let outcome = if result.is_null() {
            Err(PyErr::fetch(py))
        } else {
            // SAFETY: a new reference we do not keep.
            unsafe { ffi::Py_DECREF(result) };
            Ok(())
        };
        // SAFETY: the context this call entered, the GIL held.
        if unsafe { capi::PyContext_Exit(ctx) } < 0 {
            return Err(PyErr::fetch(py));
        }
        outcome
    }

    /// `Context.run(context, callback, *args)` looked up and called as such.
    fn run_through_context_run(&self, py: Python<'_>) -> PyResult<()> {
        let run = CONTEXT_RUN.get_or_try_init(py, || -> PyResult<PyObject> {
            Ok(py
                .import("contextvars")?
                .getattr("Context")?
                .getattr("run")?
                .unbind())
        })?;
        let mut items = vec![self.context(py), self.callback(py)];
        items.extend(self.args(py).iter());
        run.bind(py).call1(PyTuple::new(py, items)?)?;
        Ok(())
    }
}

#[pymethods]
impl Handle {
    /// Make handles visible to the cyclic GC: an object that stores its own
    /// TimerHandle (aiohttp, websockets, redis-py all do) forms a cycle through
    /// the handle, which would otherwise keep the whole run (loop included) alive.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        let call = self.call();
        visit.call(call.context.get())?;
        visit.call(call.callback.get())?;
        match &call.args {
            Args::Zero => {}
            Args::One(a) => visit.call(a.get())?,
            Args::Two(a, b) => {
                visit.call(a.get())?;
                visit.call(b.get())?;
            }
            Args::Many(t) => visit.call(t)?,
        }
        Ok(())
    }

    fn cancel(&self, py: Python<'_>) {
        if !self.cancelled.swap(true, Ordering::Relaxed) {
            if let Some(counter) = &self.cancelled_timers {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            self.release_call(py);
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

    /// `asyncio.TimerHandle` (from call_later/call_at) or `asyncio.Handle`:
    /// what the stock loop's handle is, so `isinstance(h, asyncio.TimerHandle)`
    /// holds as it does there (a cache keeping its expiry timers checks it).
    /// `type(h)` is still this class.
    #[getter(__class__)]
    fn asyncio_class<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let name = if self.when.is_some() {
            intern!(py, "TimerHandle")
        } else {
            intern!(py, "Handle")
        };
        ASYNCIO_EVENTS
            .get_or_try_init(py, || {
                py.import("asyncio.events").map(|m| m.unbind().into_any())
            })?
            .bind(py)
            .getattr(name)
    }

    /// Run the callback now (asyncio's private `Handle._run`, used by some tools).
    fn _run(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // A handle does not know its loop: shown as in debug mode (with
        // arguments). A cancelled one has no callback left, as in stock.
        let source = if self.callback(py).is_none() {
            String::new()
        } else {
            format!(" {}", self.callback_source(py, true)?)
        };
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
        Ok(format!("<{kind}{parts}{source}>"))
    }
}

/// Spent `call_soon` handles kept for reuse: allocating a PyO3 object and
/// freeing it again cost about 500 instructions of every callback. A handle
/// comes back only when nothing but the loop can see it (one reference, no
/// weak reference), so reuse is indistinguishable from a new allocation at
/// the same address, which the allocator would likely hand out anyway.
#[derive(Default)]
pub(crate) struct HandlePool(GilCell<Vec<Py<Handle>>>);

/// Enough for a loop's steady state, including a burst of a thousand tasks
/// created at once (each task's first step is a handle: with 64 kept, such
/// bursts built a new handle per task, about 400 instructions each); more
/// only keeps memory (at most this many idle handles per loop, freed with it).
const POOL_SIZE: usize = 1024;

static WEAKLIST_OFFSET: GILOnceCell<isize> = GILOnceCell::new();

impl HandlePool {
    /// A handle for `call_soon(callback, *args, context=context)`, tracked
    /// by the collector if `tracked` (untracked: the caller's promise that no
    /// reference cycle can run through it, see `fast_call_soon`).
    pub(crate) fn take(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: Args,
        context: PyObject,
        tracked: bool,
    ) -> PyResult<Py<Handle>> {
        let spent = self.0.lock().pop();
        if let Some(handle) = spent {
            // SAFETY: a live object; the GIL is held.
            if unsafe { ffi::Py_REFCNT(handle.as_ptr()) } == 1 {
                let fresh = Call {
                    context: Owned::new(context),
                    callback: Owned::new(callback.clone().unbind()),
                    args,
                };
                // SAFETY: the pool holds the only reference (checked just
                // above): nothing can read the call while it is replaced. The
                // spent call holds only None, so dropping it runs no code.
                drop(unsafe { std::mem::replace(&mut *handle.get().call.get(), fresh) });
                handle.get().cancelled.store(false, Ordering::Relaxed);
                set_tracked(handle.as_ptr(), tracked);
                return Ok(handle);
            }
            // Someone else holds it (they got it before it was pooled): leave it to them.
        }
        let handle = Py::new(py, Handle::new(callback, args, context, None, None))?;
        set_tracked(handle.as_ptr(), tracked);
        Ok(handle)
    }

    /// Keep `handle` for reuse if it is a spent `call_soon` handle nothing
    /// else holds; otherwise just drop this reference.
    pub(crate) fn give(&self, py: Python<'_>, handle: Py<Handle>) {
        let ptr = handle.as_ptr();
        // SAFETY: a live object; the GIL is held.
        if handle.get().when.is_some()
            || unsafe { ffi::Py_REFCNT(ptr) } != 1
            || has_weakrefs(py, ptr)
        {
            return;
        }
        // SAFETY: this is the only reference (checked above). The old call is
        // dropped after the swap, so any code its release runs sees a handle
        // in a consistent state.
        let old = unsafe { std::mem::replace(&mut *handle.get().call.get(), Call::spent(py)) };
        drop(old);
        // Pooled as tracked or untracked as it was: `take` sets what its next
        // call needs. (Re-tracking here put every task step's handle back in
        // the youngest generation, walked by its next collection; a spent
        // call holds only None, so no cycle runs through an idle handle.)
        let mut pool = self.0.lock();
        if pool.len() < POOL_SIZE {
            pool.push(handle);
        }
    }
}

/// Track (or untrack) the GC object at `ptr` unless it already is.
fn set_tracked(ptr: *mut ffi::PyObject, tracked: bool) {
    // SAFETY: a live GC object, the GIL held (the callers'); untracking is
    // always sound (the collector treats what it references as reachable).
    unsafe {
        let is_tracked = ffi::PyObject_GC_IsTracked(ptr) != 0;
        if tracked && !is_tracked {
            ffi::PyObject_GC_Track(ptr.cast());
        } else if !tracked && is_tracked {
            ffi::PyObject_GC_UnTrack(ptr.cast());
        }
    }
}

/// Does the handle at `ptr` have weak references? (Its weak-reference list,
/// at the class's `__weakrefoffset__`, is not empty.)
fn has_weakrefs(py: Python<'_>, ptr: *mut ffi::PyObject) -> bool {
    let offset = WEAKLIST_OFFSET.get_or_init(py, || {
        py.get_type::<Handle>()
            .getattr("__weakrefoffset__")
            .and_then(|o| o.extract::<isize>())
            .unwrap_or(0)
    });
    if *offset <= 0 {
        return true; // unknown layout: never reuse
    }
    // SAFETY: `offset` is where CPython keeps this type's weak-reference list
    // head, inside the object.
    unsafe {
        !(*ptr
            .cast::<u8>()
            .offset(*offset)
            .cast::<*mut ffi::PyObject>())
        .is_null()
    }
}
