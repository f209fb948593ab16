//! `LoopCore`: the Rust half of `SeedLoop`.
//!
//! It owns the scheduler (ready list, timers, virtual clock, strategy, trace)
//! and implements the hot loop methods: `call_soon`, `call_later`, `call_at`,
//! `call_soon_threadsafe`, `time` and one loop iteration. The Python subclass
//! `seedloop._loop.SeedLoop` adds everything else on top of
//! `asyncio.BaseEventLoop`.
//!
//! Locking: the state mutex is never held while Python code runs (a callback
//! may schedule more callbacks), and payloads are dropped outside it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyDict, PyTuple, PyType, PyWeakrefMethods, PyWeakrefReference};
use pyo3::{intern, PyTypeInfo};
use seedloop_engine::clock::{ns_to_secs, secs_to_ns_ceil};
use seedloop_engine::systematic::Footprint;
use seedloop_engine::trace::TapeBuf;
use seedloop_engine::{Begin, Scheduler, StrategySpec, STRATEGIES};

use crate::errors::{self, Raised};
use crate::gil_cell::{GilCell, GilGuard};
use crate::handle::{Args, Handle, HandlePool};
use crate::systematic::{footprint_of, WalkPlan, WalkRecord};
use crate::task_ordinal;

/// What one loop iteration ended with (read by `SeedLoop._run_once`).
pub const RAN: u8 = 0;
pub const IDLE: u8 = 1;
pub const STEP_BUDGET: u8 = 2;
pub const TIME_BUDGET: u8 = 3;
pub const TAPE_OVERRUN: u8 = 4;
pub const WALL_BUDGET: u8 = 5;
/// A systematic walk stopped: the rest of the run is not part of the exploration.
pub const WALK_STOPPED: u8 = 6;

/// With the automatic step time, a busy streak (loop iterations since the
/// ready list was last empty) longer than this charges `SPIN_STEP_NS` per
/// step. While anything is ready the clock otherwise never moves, so code
/// polling with `sleep(0)` for a timer's effect would spin forever. Counted
/// in iterations, not steps: a burst of many tasks is one iteration per round
/// however many tasks take part, so ordinary runs never reach the streak and
/// keep their exact virtual times.
pub const SPIN_AFTER_ITERATIONS: u64 = 10_000;

/// Iterations between two reads of the real-time clock for the wall budget.
const WALL_CHECK_EVERY: u32 = 64;
/// Simulated CPU time of one step in a busy streak: 10 us, in the range a
/// stock event loop spends per callback.
pub const SPIN_STEP_NS: u64 = 10_000;

/// Hashes an object address (the ordinal map's key) with one multiply:
/// SipHash cost about 120 instructions per `call_soon`, and the map is only
/// looked up, never iterated on a decision path, so its order does not matter.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        // Addresses are 16-byte aligned: fold the high bits into the low ones.
        let x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

type AddressMap<V> = HashMap<usize, V, BuildHasherDefault<AddressHasher>>;

struct State {
    sched: Scheduler<Py<Handle>>,
    /// Task ordinal of the entry being run (0 = the loop itself).
    current_owner: u32,
    /// Task object address -> (ordinal, weakref). Only looked up, never iterated
    /// on a decision path, and verified through the weakref against reuse.
    ordinals: AddressMap<(u32, Py<PyWeakrefReference>)>,
    next_ordinal: u32,
    live_after_prune: usize,
    max_steps: u64,
    max_time_ns: u64,
    /// A tape entry past the ready list stops the run (user tapes) instead
    /// of being clamped (the shrinker's and Hypothesis's candidate tapes).
    strict_tape: bool,
    /// Real-time budget of a run (None = unbounded) and when it started
    /// (the first iteration after setup or a budget change).
    max_wall: Option<Duration>,
    wall_start: Option<Instant>,
    /// Iterations left before the real-time budget is checked again.
    wall_countdown: u32,
    /// Virtual time charged per step: Some(ns) for every step, None for the
    /// automatic rule (nothing, except in a long busy streak).
    step_time_ns: Option<u64>,
    /// Iterations run since the ready list was last empty at an iteration's start.
    busy_iterations: u64,
    /// WALK_STOPPED was returned once (the clean-up after it runs on).
    walk_stop_reported: bool,
}

/// Callbacks handed over by other threads.
#[derive(Default)]
struct Inbox {
    queue: Mutex<Vec<Py<Handle>>>,
    /// The queue is not empty (written under its lock): lets every
    /// iteration skip the lock when no thread called back.
    pending: AtomicBool,
    wake: Condvar,
}

impl Inbox {
    fn push(&self, handle: Py<Handle>) {
        let mut q = self.queue.lock();
        q.push(handle);
        self.pending.store(true, Ordering::Release);
        drop(q);
        self.wake.notify_all();
    }

    fn take_all(&self) -> Vec<Py<Handle>> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut q = self.queue.lock();
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *q)
    }
}

#[pyclass(subclass, frozen, module = "seedloop._engine")]
pub struct LoopCore {
    state: GilCell<State>,
    /// Spent `call_soon` handles for reuse.
    pool: HandlePool,
    inbox: Inbox,
    cancelled_timers: Arc<AtomicUsize>,
    /// Executor jobs or other outside work that may still call back.
    external_pending: AtomicUsize,
    /// Since when (real time, and the loop's time then) outside work has been
    /// in flight: the loop's clock does not fall behind real time meanwhile.
    outside_since: Mutex<Option<(Instant, u64)>>,
    /// Called as `observer(step, task_ordinal, handle)` before each step
    /// (timelines); None on the fast path.
    observer: Mutex<Option<PyObject>>,
    /// Called as `chooser(step, ready_handles)` when more than one callback
    /// is ready; returns the index to run (a guided search's learnt policy).
    chooser: Mutex<Option<PyObject>>,
    /// The class overrides `time()`: always ask it (see `patched_time`).
    own_time: AtomicBool,
    /// A `time` was set on the instance (`time_attr.rs` keeps this).
    time_patched: AtomicBool,
    /// `self._stopping` (see `stopping_attr`).
    stopping_flag: AtomicBool,
    /// A systematic walk drives this run: entries carry their footprints.
    systematic: AtomicBool,
    /// Closed: new callbacks are refused (read without the state lock).
    closed: AtomicBool,
    /// An observer or chooser is installed (checked once per iteration without its lock).
    observed: AtomicBool,
    /// The next creation-order hash of this loop's tasks and futures (from 1).
    next_hash: AtomicU64,
    /// `self._tasks_created` and `self._seed_tasks_created` (see
    /// `tasks_created_attr`): counted here by the engine's `create_task`.
    pub(crate) tasks_created: AtomicI64,
    pub(crate) seed_tasks_created: AtomicI64,
    /// This loop's own object address (set up by `_engine_setup`): a
    /// SeedTask whose loop this is keeps its ordinal (see `task_ordinal`).
    addr: AtomicUsize,
}

#[cold]
#[inline(never)]
fn reentered() -> PyErr {
    PyRuntimeError::new_err(
        "seedloop's loop was called back while it was updating its own state \
         (from a destructor?); this is a seedloop bug, please report it",
    )
}

static TASK_TYPES: GILOnceCell<Py<PyTuple>> = GILOnceCell::new();
static SELF_CARRYING_TYPES: GILOnceCell<Py<PyTuple>> = GILOnceCell::new();
static FUNCTION_TYPE: GILOnceCell<Py<PyType>> = GILOnceCell::new();
static STEP_WRAPPER: GILOnceCell<Py<PyType>> = GILOnceCell::new();

pub(crate) fn task_types(py: Python<'_>) -> PyResult<&Bound<'_, PyTuple>> {
    Ok(TASK_TYPES
        .get_or_try_init(py, || -> PyResult<Py<PyTuple>> {
            let tasks = py.import("asyncio.tasks")?;
            let mut types = vec![tasks.getattr("Task")?];
            if let Ok(py_task) = tasks.getattr("_PyTask") {
                types.push(py_task);
            }
            Ok(PyTuple::new(py, types)?.unbind())
        })?
        .bind(py))
}

/// Types of callables whose `__self__` may be the task they step or wake.
pub(crate) fn self_carrying_types(py: Python<'_>) -> PyResult<&Bound<'_, PyTuple>> {
    Ok(SELF_CARRYING_TYPES
        .get_or_try_init(py, || -> PyResult<Py<PyTuple>> {
            let types = py.import("types")?;
            Ok(PyTuple::new(
                py,
                [
                    types.getattr("BuiltinMethodType")?,
                    types.getattr("MethodType")?,
                ],
            )?
            .unbind())
        })?
        .bind(py))
}

pub(crate) fn is_function(py: Python<'_>, ty: &Bound<'_, PyType>) -> PyResult<bool> {
    let f = FUNCTION_TYPE.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        Ok(py
            .import("types")?
            .getattr("FunctionType")?
            .downcast_into::<PyType>()?
            .unbind())
    })?;
    Ok(ty.is(f.bind(py)))
}

/// Is `ty` the C Task's step wrapper (`TaskStepMethWrapper`, not exported
/// by asyncio)? Learnt by name once, then compared by identity.
fn is_step_wrapper(py: Python<'_>, ty: &Bound<'_, PyType>) -> PyResult<bool> {
    if let Some(known) = STEP_WRAPPER.get(py) {
        return Ok(ty.is(known.bind(py)));
    }
    if ty.name()?.to_cow()? == "TaskStepMethWrapper" {
        let _ = STEP_WRAPPER.set(py, ty.clone().unbind());
        return Ok(true);
    }
    Ok(false)
}

/// Does the C step wrapper keep its task in the first word after the object
/// header (`TaskStepMethWrapper { PyObject_HEAD; TaskObj *sw_task; ... }` in
/// CPython 3.10-3.13)? Learnt on the first wrapper by comparing that word
/// with its `__self__` (0 not yet known, 1 yes, 2 no: always `__self__`).
static WRAPPER_LAYOUT: AtomicU8 = AtomicU8::new(0);

/// The task a C step wrapper steps: read from the wrapper itself where its
/// layout was confirmed (the attribute lookup cost about 150 instructions of
/// every task step), else its `__self__`.
fn step_wrapper_task<'py>(
    py: Python<'py>,
    wrapper: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let word = std::mem::size_of::<*mut pyo3::ffi::PyObject>();
    // SAFETY (both reads): the wrapper's instances are at least three words
    // long (checked with __basicsize__ before the first read), the GIL is held.
    let field = || unsafe { *(wrapper.as_ptr() as *const *mut pyo3::ffi::PyObject).add(2) };
    match WRAPPER_LAYOUT.load(Ordering::Relaxed) {
        1 => {
            let task = field();
            if !task.is_null() {
                // SAFETY: the wrapper holds a strong reference to its task.
                return Ok(unsafe { Bound::from_borrowed_ptr(py, task) });
            }
        }
        0 => {
            let by_name = wrapper.getattr(intern!(py, "__self__"))?;
            let size: usize = wrapper
                .get_type()
                .getattr(intern!(py, "__basicsize__"))?
                .extract()?;
            let same = size >= 3 * word && field() == by_name.as_ptr();
            WRAPPER_LAYOUT.store(if same { 1 } else { 2 }, Ordering::Relaxed);
            return Ok(by_name);
        }
        _ => {}
    }
    wrapper.getattr(intern!(py, "__self__"))
}

/// `contextvars.copy_context()`.
fn copy_context(py: Python<'_>) -> PyResult<PyObject> {
    // SAFETY: the GIL is held; a new reference or NULL with an error set.
    unsafe { PyObject::from_owned_ptr_or_err(py, crate::capi::PyContext_CopyCurrent()) }
}

impl LoopCore {
    /// Draw the next creation-order hash (see `task_hash`).
    pub(crate) fn next_hash(&self) -> u64 {
        self.next_hash.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> GilGuard<'_, State> {
        // The GIL is the lock (see `gil_cell`): every caller holds it.
        self.state.lock()
    }

    /// The task ordinal an entry belongs to: the task it steps or wakes, else
    /// (None) the task that is scheduling it, read under the caller's lock.
    fn owner_of(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        Ok(self.owner_and_step(py, callback)?.0)
    }

    /// `owner_of`, and whether `callback` is a C task's own step wrapper.
    fn owner_and_step(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<(Option<u32>, bool)> {
        let ty = callback.get_type();
        if is_function(py, &ty)? {
            return Ok((None, false));
        }
        if is_step_wrapper(py, &ty)? {
            // A C task's step: its __self__ is always the task.
            let task = step_wrapper_task(py, callback)?;
            return Ok((Some(self.ordinal_of(py, &task)?), true));
        }
        let owner = if ty.as_type_ptr() == std::ptr::addr_of_mut!(pyo3::ffi::PyCFunction_Type) {
            // A bound C method, such as the C task's wakeup: its `__self__`
            // read directly (the subclass check and the attribute lookup
            // cost about 150 instructions of every wakeup).
            // SAFETY: `callback` is a live PyCFunction (exact type checked);
            // the result is borrowed from it, or NULL for none.
            let owner = unsafe { pyo3::ffi::PyCFunction_GetSelf(callback.as_ptr()) };
            // SAFETY: a live object the callback holds a reference to.
            (!owner.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, owner) })
        } else if ty.is_subclass(self_carrying_types(py)?)? {
            callback.getattr(intern!(py, "__self__")).ok()
        } else {
            None
        };
        if let Some(owner) = owner {
            if task_ordinal::is_seed_task(&owner) || owner.is_instance(task_types(py)?)? {
                return Ok((Some(self.ordinal_of(py, &owner)?), false));
            }
        }
        Ok((None, false))
    }

    fn ordinal_of(&self, py: Python<'_>, task: &Bound<'_, PyAny>) -> PyResult<u32> {
        let addr = self.addr.load(Ordering::Relaxed);
        if let Some(ordinal) = task_ordinal::read(task, addr) {
            return Ok(ordinal);
        }
        let key = task.as_ptr() as usize;
        {
            let st = self.lock();
            if let Some((ordinal, weak)) = st.ordinals.get(&key) {
                if let Some(obj) = weak.bind(py).upgrade() {
                    if obj.is(task) {
                        // Seen again: a task that steps more than once keeps
                        // its number on itself (most short-lived tasks are
                        // looked up once, and then would only pay for an int).
                        let ordinal = *ordinal;
                        drop(st);
                        task_ordinal::write(py, task, addr, ordinal);
                        return Ok(ordinal);
                    }
                }
            }
        }
        let weak = PyWeakrefReference::new(task)?.unbind();
        // A weakref without a callback references nothing the collector
        // follows (its traverse visits only the callback), so leaving it
        // tracked only made every collection walk one more object per task:
        // the map's references outlive their tasks until the next prune.
        // SAFETY: a live weakref object; untracking an untracked object is a no-op.
        unsafe { pyo3::ffi::PyObject_GC_UnTrack(weak.as_ptr().cast()) };
        let mut st = self.lock();
        st.next_ordinal += 1;
        let ordinal = st.next_ordinal;
        let stale = st.ordinals.insert(key, (ordinal, weak));
        let mut dead = Vec::new();
        if st.ordinals.len() > 2 * st.live_after_prune + 1024 {
            // Forget dead tasks so long runs stay in bounded memory.
            let keys: Vec<usize> = st.ordinals.keys().copied().collect();
            for k in keys {
                let alive = st.ordinals[&k].1.bind(py).upgrade().is_some();
                if !alive {
                    dead.extend(st.ordinals.remove(&k));
                }
            }
            st.live_after_prune = st.ordinals.len();
        }
        drop(st);
        drop(stale);
        drop(dead);
        Ok(ordinal)
    }

    /// The state for `fast_call_soon`: re-entry (a destructor run while the
    /// state is in use calling back) is an error there, not a panic.
    #[inline]
    fn lock_or_err(&self) -> PyResult<GilGuard<'_, State>> {
        match self.state.try_lock() {
            Some(guard) => Ok(guard),
            None => Err(reentered()),
        }
    }

    fn check_open(&self) -> PyResult<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(PyRuntimeError::new_err("Event loop is closed"));
        }
        Ok(())
    }

    fn make_handle(
        &self,
        py: Python<'_>,
        method: &str,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<PyObject>,
        when: Option<f64>,
    ) -> PyResult<Py<Handle>> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "a callable object was expected by {method}(), got {}",
                callback.repr()?
            )));
        }
        let context = match context {
            Some(c) if !c.is_none(py) => c,
            _ => copy_context(py)?,
        };
        let timers = when.map(|_| self.cancelled_timers.clone());
        Py::new(
            py,
            Handle::new(callback, Args::from_tuple(args), context, when, timers),
        )
    }

    /// What the entry may touch, when a systematic walk needs to know.
    fn footprint(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Footprint> {
        if !self.systematic.load(Ordering::Relaxed) {
            return Ok(Footprint::Any);
        }
        footprint_of(py, callback, args)
    }

    fn schedule_timer(
        &self,
        py: Python<'_>,
        method: &str,
        when: f64,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<PyObject>,
    ) -> PyResult<Py<Handle>> {
        self.check_open()?;
        let handle = self.make_handle(py, method, callback, args, context, Some(when))?;
        let owner = self.owner_of(py, callback)?;
        let fp = self.footprint(py, callback, args)?;
        let deadline = secs_to_ns_ceil(when);
        {
            let mut st = self.lock();
            let owner = owner.unwrap_or(st.current_owner);
            st.sched
                .push_timer_fp(deadline, owner, fp, handle.clone_ref(py));
        }
        self.maybe_purge_timers(py);
        Ok(handle)
    }

    fn maybe_purge_timers(&self, py: Python<'_>) {
        let cancelled = self.cancelled_timers.load(Ordering::Relaxed);
        if cancelled < 256 {
            return;
        }
        let mut st = self.lock();
        if cancelled * 2 < st.sched.timers_len() {
            return;
        }
        st.sched.purge_timers(|h| !h.get().is_cancelled());
        let dead = st.sched.take_discarded();
        self.cancelled_timers.store(0, Ordering::Relaxed);
        drop(st);
        drop(dead); // after the state is free (see `run_once`)
        let _ = py;
    }

    /// Move callbacks from other threads into the ready list.
    fn drain_inbox(&self) {
        let incoming = self.inbox.take_all();
        if incoming.is_empty() {
            return;
        }
        let mut st = self.lock();
        for h in incoming {
            st.sched.push_ready(0, h);
        }
    }

    /// While real threads (executor jobs) are in flight and nothing is ready,
    /// virtual time passes as fast as real time, no faster (otherwise a
    /// virtual timeout would always beat work that takes real time) and no
    /// slower (code timing a thread's work reads the time it took). Returns
    /// true if it waited (the caller re-checks the inbox and the ready list).
    fn wait_for_outside_work(&self, py: Python<'_>) -> PyResult<bool> {
        if self.external_pending.load(Ordering::SeqCst) == 0 {
            return Ok(false);
        }
        let until_timer = {
            let st = self.lock();
            if st.sched.ready_len() > 0 {
                return Ok(false);
            }
            st.sched
                .next_deadline()
                .map(|d| d.saturating_sub(st.sched.now_ns()))
        };
        let cap = Duration::from_millis(50);
        let limit = until_timer.map_or(cap, |ns| Duration::from_nanos(ns).min(cap));
        if limit.is_zero() {
            return Ok(false); // a timer is due now: run it
        }
        let waited = py.allow_threads(|| {
            let start = Instant::now();
            let mut q = self.inbox.queue.lock();
            if q.is_empty() {
                let _ = self.inbox.wake.wait_for(&mut q, limit);
            }
            start.elapsed()
        });
        py.check_signals()?;
        // Real work in real threads took real time: the clock moves by what
        // was waited, and catches up with the real time since the work began
        // (the loop ran callbacks meanwhile), so a thread's `time.sleep(1)`
        // is at least a second on the loop's clock too, and a timeout cannot
        // fire before the work it waits for has had its real time.
        let waited = u64::try_from(waited.min(limit).as_nanos()).unwrap_or(u64::MAX);
        let since = *self.outside_since.lock();
        let mut st = self.lock();
        let now = st.sched.now_ns();
        let behind = since.map_or(0, |(start, at)| {
            let real = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            at.saturating_add(real).saturating_sub(now)
        });
        st.sched.advance(waited.max(behind));
        Ok(true)
    }

    /// The loop's `time()` when a test or subclass replaced it
    /// (`mock.patch.object(loop, "time", ...)`), else None. The stock loop
    /// reads `self.time()` to compute `call_later` deadlines and to decide
    /// which timers are due. Two flags, no lookup: `SeedLoop.time` is a data
    /// descriptor that notices an instance's replacement (`time_attr.rs`).
    fn patched_time(slf: &Bound<'_, Self>) -> PyResult<Option<f64>> {
        let this = slf.get();
        if !this.own_time.load(Ordering::Relaxed) && !this.time_patched() {
            return Ok(None);
        }
        slf.call_method0(intern!(slf.py(), "time"))?
            .extract::<f64>()
            .map(Some)
    }

    pub(crate) fn time_patched(&self) -> bool {
        self.time_patched.load(Ordering::Relaxed)
    }

    pub(crate) fn set_time_patched(&self, patched: bool) {
        self.time_patched.store(patched, Ordering::Relaxed);
    }

    /// `self._stopping` (set by `loop.stop()`): the engine's own attribute
    /// (`stopping_attr`), read without a lookup; a class that redefines
    /// `_stopping` (`engine_stopping` false) is read through `getattr`.
    fn stopping(slf: &Bound<'_, Self>, engine_stopping: bool) -> PyResult<bool> {
        if engine_stopping {
            return Ok(slf.get().stopping_flag.load(Ordering::Relaxed));
        }
        slf.getattr(intern!(slf.py(), "_stopping"))?.is_truthy()
    }

    /// Is `_stopping` the engine's own attribute for this loop's class (no
    /// class in between makes it something else)? Learnt once per class
    /// (the last one asked).
    fn engine_stopping(slf: &Bound<'_, Self>) -> PyResult<bool> {
        static OURS: AtomicPtr<pyo3::ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());
        let ty = slf.get_type();
        if OURS.load(Ordering::Relaxed) == ty.as_type_ptr() {
            return Ok(true);
        }
        let py = slf.py();
        let name = intern!(py, "_stopping");
        let ours = ty
            .getattr(name)?
            .is(&LoopCore::type_object(py).getattr(name)?);
        if ours {
            // Keep the class alive so its address cannot name another class.
            std::mem::forget(ty.clone());
            OURS.store(ty.as_type_ptr(), Ordering::Relaxed);
        }
        Ok(ours)
    }

    /// The installed observer or chooser, if any (a new reference).
    fn hook(&self, slot: &Mutex<Option<PyObject>>, py: Python<'_>) -> Option<PyObject> {
        slot.lock().as_ref().map(|o| o.clone_ref(py))
    }

    fn update_observed(&self) {
        let any = |slot: &Mutex<Option<PyObject>>| slot.lock().is_some();
        self.observed
            .store(any(&self.observer) || any(&self.chooser), Ordering::Relaxed);
    }

    /// The chooser's index for the next step, or None when at most one
    /// callback is ready (no choice to make). Called without the state lock:
    /// the chooser is Python and may look at the handles.
    fn ask_chooser(&self, py: Python<'_>, chooser: &PyObject) -> PyResult<Option<usize>> {
        let (step, ready) = {
            let st = self.lock();
            if st.sched.ready_len() < 2 {
                return Ok(None);
            }
            let ready: Vec<Py<Handle>> =
                st.sched.ready_payloads().map(|h| h.clone_ref(py)).collect();
            (st.sched.trace().len(), ready)
        };
        let index = chooser.bind(py).call1((step, ready))?;
        index.extract::<usize>().map(Some).map_err(|_| {
            PyTypeError::new_err(format!(
                "a step chooser must return an index among the ready callbacks, got {index}"
            ))
        })
    }

    /// Has the run used up its real-time budget? (Starts the clock on first
    /// use.) The clock is read every `WALL_CHECK_EVERY` iterations: a read per
    /// iteration cost more than the rest of the check, and a budget is far
    /// coarser than that many iterations.
    fn wall_exceeded(st: &mut State) -> bool {
        let Some(budget) = st.max_wall else {
            return false;
        };
        if st.wall_start.is_some() && st.wall_countdown > 0 {
            st.wall_countdown -= 1;
            return false;
        }
        st.wall_countdown = WALL_CHECK_EVERY - 1;
        st.wall_start.get_or_insert_with(Instant::now).elapsed() > budget
    }

    /// One loop iteration (see `_engine_run_once`).
    fn run_once(slf: &Bound<'_, Self>, stopping: bool) -> PyResult<u8> {
        let py = slf.py();
        let this = slf.get();
        loop {
            this.drain_inbox();
            if !stopping && this.wait_for_outside_work(py)? {
                // Waited in real time: check the budget now.
                let mut st = this.lock();
                st.wall_countdown = 0;
                if Self::wall_exceeded(&mut st) {
                    return Ok(WALL_BUDGET);
                }
                continue;
            }
            let due_at = Self::patched_time(slf)?.map(secs_to_ns_ceil);
            let begin = {
                let mut st = this.lock();
                if Self::wall_exceeded(&mut st) {
                    return Ok(WALL_BUDGET);
                }
                if st.sched.ready_len() == 0 {
                    st.busy_iterations = 0;
                }
                if let Some(at) = due_at {
                    st.sched.release_due_at(at, &|h| !h.get().is_cancelled());
                }
                if st.max_steps > 0 && st.sched.trace().len() as u64 >= st.max_steps {
                    return Ok(STEP_BUDGET);
                }
                let begin = st
                    .sched
                    .begin_iteration(!stopping, |h| !h.get().is_cancelled());
                if st.max_time_ns > 0 && st.sched.now_ns() > st.max_time_ns {
                    return Ok(TIME_BUDGET);
                }
                if begin != Begin::Discarded {
                    // (Dropping cancelled timers and beginning again is not
                    // an iteration of its own.)
                    st.busy_iterations += 1;
                }
                let charge = match st.step_time_ns {
                    Some(ns) => ns,
                    None if st.busy_iterations > SPIN_AFTER_ITERATIONS => SPIN_STEP_NS,
                    None => 0,
                };
                (begin, charge)
            };
            match begin {
                (Begin::Ready(n), charge) => {
                    let (observer, chooser) = if this.observed.load(Ordering::Relaxed) {
                        (this.hook(&this.observer, py), this.hook(&this.chooser, py))
                    } else {
                        (None, None)
                    };
                    for _ in 0..n {
                        let chosen = match &chooser {
                            Some(chooser) => this.ask_chooser(py, chooser)?,
                            None => None,
                        };
                        let (entry, step, overrun, walk_stop) = {
                            let mut st = this.lock();
                            let next = match chosen {
                                Some(index) => st.sched.step_chosen(index),
                                None => st.sched.step(),
                            };
                            let Some(entry) = next else { break };
                            st.current_owner = entry.owner;
                            // A user tape named a callback that was not ready:
                            // the clamped step still runs (nothing is lost for
                            // the clean-up), then the run stops.
                            let overrun = st.strict_tape && st.sched.tape_overrun().is_some();
                            // Likewise when a systematic walk stopped.
                            let walk_stop = !st.walk_stop_reported && st.sched.walk_stopped();
                            st.walk_stop_reported |= walk_stop;
                            (entry, st.sched.trace().len() - 1, overrun, walk_stop)
                        };
                        let handle = entry.payload.bind(py);
                        let h = handle.get();
                        if !h.is_cancelled() {
                            if let Some(observer) = &observer {
                                observer.bind(py).call1((step, entry.owner, handle))?;
                            }
                            let outcome = h.run(py);
                            if charge > 0 {
                                // The step's simulated CPU time passes after it ran.
                                this.lock().sched.advance(charge);
                            }
                            if let Err(err) = outcome {
                                Self::report_callback_error(slf, err, handle)?;
                            }
                        }
                        if overrun {
                            this.lock().current_owner = 0;
                            return Ok(TAPE_OVERRUN);
                        }
                        if walk_stop {
                            this.lock().current_owner = 0;
                            return Ok(WALK_STOPPED);
                        }
                        this.pool.give(py, entry.payload);
                    }
                    this.lock().current_owner = 0;
                    return Ok(RAN);
                }
                (Begin::Discarded, _) => {
                    // Cancelled timers go once the state is free: dropping
                    // one may run a destructor that calls back into the loop
                    // (what it schedules runs before the clock moves on).
                    let dead = this.lock().sched.take_discarded();
                    drop(dead);
                }
                (Begin::Idle, _) => {
                    if stopping {
                        return Ok(IDLE);
                    }
                    let waiting_outside = this.external_pending.load(Ordering::SeqCst) > 0;
                    if !waiting_outside {
                        return Ok(IDLE);
                    }
                    // Real threads may still call back: wait for them (GIL released).
                    py.allow_threads(|| {
                        let mut q = this.inbox.queue.lock();
                        if q.is_empty() {
                            let _ = this.inbox.wake.wait_for(&mut q, Duration::from_millis(50));
                        }
                    });
                    py.check_signals()?;
                }
            }
        }
    }

    /// Route a callback's exception the way the stock loop does.
    fn report_callback_error(
        slf: &Bound<'_, Self>,
        err: PyErr,
        handle: &Bound<'_, Handle>,
    ) -> PyResult<()> {
        let py = slf.py();
        if err.is_instance_of::<PySystemExit>(py) || err.is_instance_of::<PyKeyboardInterrupt>(py) {
            return Err(err);
        }
        let context = PyDict::new(py);
        // The stock loop's wording: the callback and its source, not the handle's repr.
        let debug = slf.call_method0(intern!(py, "get_debug"))?.is_truthy()?;
        let source = handle.get().callback_source(py, debug)?;
        context.set_item("message", format!("Exception in callback {source}"))?;
        context.set_item("exception", err.value(py))?;
        context.set_item("handle", handle)?;
        slf.call_method1(intern!(py, "call_exception_handler"), (context,))?;
        Ok(())
    }
}

#[pymethods]
impl LoopCore {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        LoopCore {
            pool: HandlePool::default(),
            state: GilCell::new(State {
                sched: Scheduler::new(0, StrategySpec::Fifo),
                current_owner: 0,
                ordinals: AddressMap::default(),
                next_ordinal: 0,
                live_after_prune: 0,
                max_steps: 0,
                max_time_ns: 0,
                strict_tape: false,
                max_wall: None,
                wall_start: None,
                wall_countdown: 0,
                step_time_ns: None,
                busy_iterations: 0,
                walk_stop_reported: false,
            }),
            inbox: Inbox::default(),
            cancelled_timers: Arc::new(AtomicUsize::new(0)),
            external_pending: AtomicUsize::new(0),
            outside_since: Mutex::new(None),
            observer: Mutex::new(None),
            chooser: Mutex::new(None),
            own_time: AtomicBool::new(false),
            time_patched: AtomicBool::new(false),
            stopping_flag: AtomicBool::new(false),
            systematic: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            observed: AtomicBool::new(false),
            next_hash: AtomicU64::new(1),
            tasks_created: AtomicI64::new(0),
            seed_tasks_created: AtomicI64::new(0),
            addr: AtomicUsize::new(0),
        }
    }

    /// `self._tasks_created`: tasks this loop's `create_task` made or was
    /// asked for (it names unnamed tasks `Task-<n>` from it). Kept by the
    /// engine, whose `create_task` counts without a dict write per task;
    /// reads and writes behave as for a plain attribute holding an int.
    #[getter(_tasks_created)]
    fn tasks_created_attr(&self) -> i64 {
        self.tasks_created.load(Ordering::Relaxed)
    }

    #[setter(_tasks_created)]
    fn set_tasks_created_attr(&self, value: i64) {
        self.tasks_created.store(value, Ordering::Relaxed);
    }

    /// `self._seed_tasks_created`: the SeedTasks among them (`pending_tasks`
    /// compares it with the tasks the engine has seen).
    #[getter(_seed_tasks_created)]
    fn seed_tasks_created_attr(&self) -> i64 {
        self.seed_tasks_created.load(Ordering::Relaxed)
    }

    #[setter(_seed_tasks_created)]
    fn set_seed_tasks_created_attr(&self, value: i64) {
        self.seed_tasks_created.store(value, Ordering::Relaxed);
    }

    /// `self._stopping`, set by `loop.stop()` and reset by `run_forever`:
    /// kept by the engine, which reads it every iteration (a lookup in the
    /// instance dict cost about 150 instructions of every `call_soon`
    /// callback). Reads and writes behave as for the stock loop's attribute.
    #[getter(_stopping)]
    fn stopping_attr(&self) -> bool {
        self.stopping_flag.load(Ordering::Relaxed)
    }

    #[setter(_stopping)]
    fn set_stopping_attr(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.stopping_flag
            .store(value.is_truthy()?, Ordering::Relaxed);
        Ok(())
    }

    /// Install (or clear, with None) the per-step observer.
    fn _engine_set_observer(&self, py: Python<'_>, observer: Option<PyObject>) {
        let observer = observer.filter(|o| !o.is_none(py));
        let old = std::mem::replace(&mut *self.observer.lock(), observer);
        drop(old);
        self.update_observed();
    }

    /// Install (or clear, with None) the per-step chooser: it decides every
    /// step with more than one ready callback instead of the strategy, and
    /// its choices are recorded in the tape like the strategy's.
    fn _engine_set_chooser(&self, py: Python<'_>, chooser: Option<PyObject>) {
        let chooser = chooser.filter(|o| !o.is_none(py));
        let old = std::mem::replace(&mut *self.chooser.lock(), chooser);
        drop(old);
        self.update_observed();
    }

    /// Did every decision so far keep asyncio's documented order (a schedule
    /// a real event loop could also produce)?
    fn _engine_all_strict(&self) -> bool {
        self.lock().sched.trace().all_strict()
    }

    /// The timing values a `feasible` run used (CPU time per callback and
    /// timer lateness, in ns, in order): with `_engine_set_timing_tape` under
    /// `fifo` they replay the run.
    fn _engine_timing_tape(&self) -> Vec<u64> {
        self.lock().sched.timing_tape().to_vec()
    }

    /// Replay recorded timing (see `_engine_timing_tape`); before the run starts.
    fn _engine_set_timing_tape(&self, tape: Vec<u64>) {
        self.lock().sched.set_timing_tape(tape);
    }

    /// Configure the engine (called once by `SeedLoop.__init__`).
    /// `strategy` is a name; `tape` selects replay; budgets of 0 / None mean
    /// none; `step_time` is virtual seconds per step (None: the automatic rule).
    /// `strict_tape`: a tape entry past the ready list stops the run
    /// (TAPE_OVERRUN) instead of choosing the newest entry. `keep_steps`
    /// keeps the full step log (32 bytes a step) besides the compact tape.
    /// `walk` (an `Explorer` plan) makes this run one of a systematic exploration.
    #[pyo3(signature = (seed, strategy, depth=3, steps=1000, tape=None, max_steps=0, max_time=None, strict_tape=false, keep_steps=false, max_wall=None, step_time=None, walk=None))]
    #[allow(clippy::too_many_arguments)]
    fn _engine_setup(
        slf: &Bound<'_, Self>,
        seed: u64,
        strategy: &str,
        depth: u32,
        steps: u64,
        tape: Option<Vec<u32>>,
        max_steps: u64,
        max_time: Option<f64>,
        strict_tape: bool,
        keep_steps: bool,
        max_wall: Option<f64>,
        step_time: Option<f64>,
        walk: Option<PyRef<'_, WalkPlan>>,
    ) -> PyResult<()> {
        let py = slf.py();
        // A class whose `time` is not the engine's descriptor (a subclass's
        // own method, or LoopCore used without SeedLoop) is always asked.
        let own_time = !crate::time_attr::is_engine_time(&slf.get_type())?;
        slf.get()
            .addr
            .store(slf.as_ptr() as usize, Ordering::Relaxed);
        slf.get().own_time.store(own_time, Ordering::Relaxed);
        slf.get()
            .systematic
            .store(walk.is_some(), Ordering::Relaxed);
        let spec = match (tape, strategy) {
            _ if walk.is_some() => {
                StrategySpec::Systematic(walk.as_ref().expect("checked").plan.clone())
            }
            (Some(tape), _) => StrategySpec::Replay { tape },
            (None, "pct") => StrategySpec::Pct { depth, steps },
            (None, name) => StrategySpec::parse(name)
                .map_err(|message| errors::new(py, Raised::InvalidStrategy, message))?,
        };
        let old = {
            let mut st = slf.get().lock();
            let old = std::mem::replace(&mut st.sched, Scheduler::new(seed, spec));
            st.sched.keep_steps(keep_steps);
            st.strict_tape = strict_tape;
            st.max_steps = max_steps;
            st.max_time_ns = max_time.map(secs_to_ns_ceil).unwrap_or(0);
            st.max_wall = max_wall.and_then(|s| Duration::try_from_secs_f64(s).ok());
            st.wall_start = None;
            st.step_time_ns = step_time.map(secs_to_ns_ceil);
            st.busy_iterations = 0;
            st.walk_stop_reported = false;
            old
        };
        drop(old);
        Ok(())
    }

    fn time(&self) -> f64 {
        ns_to_secs(self.lock().sched.now_ns())
    }

    /// Advance the virtual clock by `secs` while a callback runs (a blocking
    /// `time.sleep` inside a run: nothing else runs meanwhile).
    fn _engine_advance(&self, secs: f64) -> PyResult<()> {
        if secs.is_nan() || secs < 0.0 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "sleep length must be non-negative",
            ));
        }
        self.lock().sched.advance(secs_to_ns_ceil(secs));
        Ok(())
    }

    #[pyo3(signature = (callback, *args, context=None))]
    fn call_soon(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<PyObject>,
    ) -> PyResult<Py<Handle>> {
        self.check_open()?;
        let handle = self.make_handle(py, "call_soon", callback, args, context, None)?;
        let owner = self.owner_of(py, callback)?;
        let fp = self.footprint(py, callback, args)?;
        {
            let mut st = self.lock();
            let owner = owner.unwrap_or(st.current_owner);
            st.sched.push_ready_fp(owner, fp, handle.clone_ref(py));
        }
        Ok(handle)
    }

    #[pyo3(signature = (delay, callback, *args, context=None))]
    fn call_later(
        slf: &Bound<'_, Self>,
        delay: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<PyObject>,
    ) -> PyResult<Py<Handle>> {
        let py = slf.py();
        let delay = errors::finite_or_inf(py, delay, "call_later", "delay")?;
        if delay < 0.0 {
            return Err(errors::new(
                py,
                Raised::InvalidDelay,
                format!(
                    "call_later() delay must be >= 0, got {delay}; use call_soon() to run as soon as possible"
                ),
            ));
        }
        // As stock: `self.time() + delay`, through a patched time() if any.
        let now = match Self::patched_time(slf)? {
            Some(t) => t,
            None => slf.get().time(),
        };
        slf.get()
            .schedule_timer(py, "call_later", now + delay, callback, args, context)
    }

    #[pyo3(signature = (when, callback, *args, context=None))]
    fn call_at(
        &self,
        py: Python<'_>,
        when: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<PyObject>,
    ) -> PyResult<Py<Handle>> {
        let when = errors::finite_or_inf(py, when, "call_at", "when")?;
        self.schedule_timer(py, "call_at", when, callback, args, context)
    }

    #[pyo3(signature = (callback, *args, context=None))]
    fn call_soon_threadsafe(
        &self,
        py: Python<'_>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        context: Option<PyObject>,
    ) -> PyResult<Py<Handle>> {
        self.check_open()?;
        let handle = self.make_handle(py, "call_soon_threadsafe", callback, args, context, None)?;
        self.inbox.push(handle.clone_ref(py));
        Ok(handle)
    }

    /// Count outside work (executor jobs) that may still call back: while it
    /// is non-zero an idle loop waits for it instead of reporting a deadlock.
    fn _engine_external(&self, delta: isize) {
        let left = if delta >= 0 {
            let before = self
                .external_pending
                .fetch_add(delta as usize, Ordering::SeqCst);
            if before == 0 && delta > 0 {
                let now = self.lock().sched.now_ns();
                *self.outside_since.lock() = Some((Instant::now(), now));
            }
            before + delta as usize
        } else {
            self.external_pending
                .fetch_sub(delta.unsigned_abs(), Ordering::SeqCst)
                .saturating_sub(delta.unsigned_abs())
        };
        if left == 0 {
            *self.outside_since.lock() = None;
        }
        self.inbox.wake.notify_all();
    }

    /// One loop iteration: release due timers, then run as many steps as
    /// entries were ready when it began (asyncio's batch semantics).
    fn _engine_run_once(slf: &Bound<'_, Self>, stopping: bool) -> PyResult<u8> {
        Self::run_once(slf, stopping)
    }

    /// `run_forever`'s loop (`while True: _run_once(); if _stopping: break`)
    /// without a Python frame per iteration: iterations until `loop.stop()`
    /// was called (returns RAN) or one ends with another status (a deadlock,
    /// a budget, a tape overrun), which `SeedLoop` turns into its error.
    fn _engine_run_until_stopped(slf: &Bound<'_, Self>) -> PyResult<u8> {
        let engine_stopping = Self::engine_stopping(slf)?;
        // Read once per iteration: nothing runs between the check after an
        // iteration and the start of the next, so the value carries over.
        let mut stopping = Self::stopping(slf, engine_stopping)?;
        loop {
            let status = Self::run_once(slf, stopping)?;
            if status != RAN && !(status == IDLE && stopping) {
                return Ok(status);
            }
            stopping = Self::stopping(slf, engine_stopping)?;
            if stopping {
                return Ok(RAN);
            }
        }
    }

    /// Drop everything scheduled and refuse new callbacks.
    fn _engine_close(&self) {
        let dropped = {
            let mut st = self.lock();
            self.closed.store(true, Ordering::Relaxed);
            st.sched.drain_all()
        };
        let inbox = self.inbox.take_all();
        drop(dropped);
        drop(inbox);
    }

    /// Replace the step/virtual-time/real-time budgets (0 / None = unbounded);
    /// the real-time budget starts again.
    #[pyo3(signature = (max_steps, max_time=None, max_wall=None))]
    fn _engine_set_budget(&self, max_steps: u64, max_time: Option<f64>, max_wall: Option<f64>) {
        let mut st = self.lock();
        st.max_steps = max_steps;
        st.max_time_ns = max_time.map(secs_to_ns_ceil).unwrap_or(0);
        st.max_wall = max_wall.and_then(|s| Duration::try_from_secs_f64(s).ok());
        st.wall_start = None;
    }

    /// Fingerprint of the decisions so far (hex string, stable across processes).
    fn _engine_fingerprint(&self) -> String {
        format!("{:016x}", self.lock().sched.trace().fingerprint())
    }

    /// The decision tape: index chosen among ready entries at each step.
    fn _engine_tape(&self) -> Vec<u32> {
        self.lock().sched.trace().tape()
    }

    /// The decision tape as stored: `(bytes per choice, little-endian bytes)`.
    fn _engine_tape_bytes<'py>(&self, py: Python<'py>) -> (u8, Bound<'py, PyBytes>) {
        tape_bytes(py, self.lock().sched.trace().tape_buf())
    }

    /// What a finished run reports, in one call: `(fingerprint, tape width,
    /// tape bytes, steps, virtual time, all strict, timing tape)` (see the
    /// separate getters).
    #[allow(clippy::type_complexity)]
    fn _engine_outcome<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        String,
        u8,
        Bound<'py, PyBytes>,
        usize,
        f64,
        bool,
        Bound<'py, PyBytes>,
    ) {
        let st = self.lock();
        let trace = st.sched.trace();
        let (width, bytes) = tape_bytes(py, trace.tape_buf());
        (
            format!("{:016x}", trace.fingerprint()),
            width,
            bytes,
            trace.len(),
            ns_to_secs(st.sched.now_ns()),
            trace.all_strict(),
            // Little-endian words, read back as a compact `Tape`: a list of
            // Python ints cost about 160 instructions a callback.
            le_bytes(py, st.sched.timing_tape(), u64::to_le_bytes),
        )
    }

    /// From now on clamp tape entries past the ready list (clean-up after
    /// TAPE_OVERRUN stopped the run).
    fn _engine_clamp_tape(&self) {
        self.lock().strict_tape = false;
    }

    /// `(step, choice, ready)` of the first tape entry past the ready list.
    fn _engine_tape_overrun(&self) -> Option<(u64, u32, usize)> {
        self.lock()
            .sched
            .tape_overrun()
            .map(|o| (o.step, o.choice, o.ready))
    }

    /// The step log as `(seq, task_ordinal, choice, now_seconds)` tuples.
    fn _engine_steps(&self) -> Vec<(u64, u32, u32, f64)> {
        self.lock()
            .sched
            .trace()
            .steps()
            .iter()
            .map(|s| (s.seq, s.owner, s.choice, ns_to_secs(s.now_ns)))
            .collect()
    }

    /// The systematic walk of this run (once; None if the run had none).
    fn _engine_take_walk(&self) -> Option<WalkRecord> {
        self.lock()
            .sched
            .take_walk()
            .map(|walk| WalkRecord { walk })
    }

    fn _engine_step_count(&self) -> usize {
        self.lock().sched.trace().len()
    }

    /// Stable ordinal of a task (creation order as first seen by this loop).
    fn _engine_task_ordinal(&self, py: Python<'_>, task: &Bound<'_, PyAny>) -> PyResult<u32> {
        self.ordinal_of(py, task)
    }

    /// The tasks this loop has scheduled callbacks for that are still alive,
    /// oldest first (by ordinal: creation order). Clean-up reads pending tasks here.
    fn _engine_live_tasks<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyAny>> {
        let mut live: Vec<(u32, Bound<'py, PyAny>)> = {
            let st = self.lock();
            st.ordinals
                .values()
                .filter_map(|(ordinal, weak)| weak.bind(py).upgrade().map(|t| (*ordinal, t)))
                .collect()
        };
        // The map's order is a hash order: sort before anything sees it.
        live.sort_unstable_by_key(|(ordinal, _)| *ordinal);
        live.into_iter().map(|(_, task)| task).collect()
    }

    /// Draw the next creation-order hash of this loop's tasks and futures.
    fn _engine_next_hash(&self) -> u64 {
        self.next_hash()
    }

    /// How many tasks the ordinal map holds (dead ones are pruned as it grows).
    fn _engine_tasks_tracked(&self) -> usize {
        self.lock().ordinals.len()
    }

    /// How many distinct tasks this loop has scheduled callbacks for.
    fn _engine_tasks_seen(&self) -> u32 {
        self.lock().next_ordinal
    }

    fn _engine_pending(&self) -> (usize, usize) {
        let st = self.lock();
        (st.sched.ready_len(), st.sched.timers_len())
    }
}

/// `call_soon` as a METH_FASTCALL method of `LoopCore`, installed as
/// `SeedLoop.call_soon`: the arguments arrive as a C array and go straight
/// into the handle's fields, without PyO3's
/// argument parsing and its intermediate `*args` tuple (about 500
/// instructions of every task step). The `#[pymethods]` `call_soon` above
/// stays the class's own for `LoopCore` used directly.
static mut CALL_SOON_DEF: pyo3::ffi::PyMethodDef = pyo3::ffi::PyMethodDef {
    ml_name: c"call_soon".as_ptr(),
    ml_meth: pyo3::ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: fast_call_soon,
    },
    ml_flags: pyo3::ffi::METH_FASTCALL | pyo3::ffi::METH_KEYWORDS,
    ml_doc: c"call_soon($self, callback, /, *args, context=None)\n--\n\nArrange for callback(*args) to be called soon, in context.".as_ptr(),
};

unsafe extern "C" fn fast_call_soon(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls this with the GIL held, `slf` an instance of
    // LoopCore (the method descriptor checks it), `args` holding `nargs`
    // positional arguments followed by one value per name in `kwnames`.
    // The GIL token is assumed, not acquired: PyO3's acquisition (thread-local
    // counts) cost more than the rest of the argument handling.
    let py = unsafe { Python::assume_gil_acquired() };
    unsafe {
        let result = (|| -> PyResult<Py<Handle>> {
            let nargs = usize::try_from(nargs).unwrap_or(0);
            if nargs == 0 {
                return Err(PyTypeError::new_err(
                    "call_soon() missing 1 required positional argument: 'callback'",
                ));
            }
            let mut context: Option<Bound<'_, PyAny>> = None;
            if !kwnames.is_null() {
                let names = Bound::from_borrowed_ptr(py, kwnames).downcast_into::<PyTuple>()?;
                for (i, name) in names.iter().enumerate() {
                    if !is_context_name(&name)? {
                        return Err(PyTypeError::new_err(format!(
                            "call_soon() got an unexpected keyword argument '{name}'"
                        )));
                    }
                    context = Some(Bound::from_borrowed_ptr(py, *args.add(nargs + i)));
                }
            }
            // The method descriptor made for LoopCore checked `slf`'s type.
            let core = Bound::from_borrowed_ptr(py, slf).downcast_into_unchecked::<LoopCore>();
            let core = core.get();
            core.check_open()?;
            let callback = Bound::from_borrowed_ptr(py, *args);
            if !callback.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "a callable object was expected by call_soon(), got {}",
                    callback.repr()?
                )));
            }
            let context = match context {
                Some(c) if !c.is_none() => c,
                _ => copy_context(py)?.into_bound(py),
            };
            let fp = if core.systematic.load(Ordering::Relaxed) {
                // What a systematic walk needs to know the step may touch.
                let rest = PyTuple::new(
                    py,
                    (1..nargs).map(|i| Bound::from_borrowed_ptr(py, *args.add(i))),
                )?;
                footprint_of(py, &callback, &rest)?
            } else {
                Footprint::Any
            };
            let call_args = Args::from_raw(py, args.add(1), nargs - 1)?;
            let (owner, task_step) = core.owner_and_step(py, &callback)?;
            // A C task's own step: the task drops the handle it is given, so
            // the ready list holds the only reference and no cycle can run
            // through it: the handle is not tracked by the collector. Left
            // tracked, every collection while it waits walked it (about 400
            // instructions a task step; stock asyncio's handles cost the
            // collector less).
            let handle = core
                .pool
                .take(py, &callback, call_args, context.unbind(), !task_step)?;
            {
                let mut st = core.lock_or_err()?;
                let owner = owner.unwrap_or(st.current_owner);
                st.sched.push_ready_fp(owner, fp, handle.clone_ref(py));
            }
            Ok(handle)
        })();
        errors::ffi_return(py, result.map(Py::into_ptr))
    }
}

/// The first `context` keyword name a `call_*` method was given (kept alive, so the
/// address always names that string): the C Task passes the same string
/// object every time, and comparing the text cost about 100 instructions a step.
static CONTEXT_NAME: AtomicPtr<pyo3::ffi::PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// A decision tape as `(bytes per choice, its bytes)`, for `Tape.from_engine`.
fn tape_bytes<'py>(py: Python<'py>, tape: &TapeBuf) -> (u8, Bound<'py, PyBytes>) {
    match tape {
        TapeBuf::Narrow(bytes) => (1, PyBytes::new(py, bytes)),
        TapeBuf::Wide(words) => (4, le_bytes(py, words, u32::to_le_bytes)),
    }
}

/// `words` as one bytes object of little-endian words (what `Tape.from_engine` reads).
fn le_bytes<'py, W: Copy, const N: usize>(
    py: Python<'py>,
    words: &[W],
    to_le: fn(W) -> [u8; N],
) -> Bound<'py, PyBytes> {
    if words.is_empty() {
        return PyBytes::new(py, &[]); // every run but a feasible one's timing
    }
    let raw: Vec<u8> = words.iter().flat_map(|&w| to_le(w)).collect();
    PyBytes::new(py, &raw)
}

fn is_context_name(name: &Bound<'_, PyAny>) -> PyResult<bool> {
    let known = CONTEXT_NAME.load(Ordering::Relaxed);
    if name.as_ptr() == known {
        return Ok(true);
    }
    if name.extract::<&str>()? != "context" {
        return Ok(false);
    }
    if known.is_null() {
        CONTEXT_NAME.store(name.clone().into_ptr(), Ordering::Relaxed);
    }
    Ok(true)
}

/// The METH_FASTCALL `call_soon` (see `CALL_SOON_DEF`), for `SeedLoop` to install.
#[pyfunction]
fn fast_call_soon_method(py: Python<'_>) -> PyResult<PyObject> {
    method_descriptor(py, std::ptr::addr_of_mut!(CALL_SOON_DEF))
}

/// `call_later` and `call_at` as METH_FASTCALL methods of `LoopCore`,
/// installed as `SeedLoop.call_later`/`call_at` like `fast_call_soon`: the
/// callback's arguments go straight into the handle's tuple (no PyO3
/// argument parsing, no intermediate `*args` tuple). The same checks, in the
/// same order, as the `#[pymethods]` versions above.
static mut CALL_LATER_DEF: pyo3::ffi::PyMethodDef = pyo3::ffi::PyMethodDef {
    ml_name: c"call_later".as_ptr(),
    ml_meth: pyo3::ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: fast_call_later,
    },
    ml_flags: pyo3::ffi::METH_FASTCALL | pyo3::ffi::METH_KEYWORDS,
    ml_doc: c"call_later($self, delay, callback, /, *args, context=None)\n--\n\nArrange for callback(*args) to be called after delay seconds (virtual time).".as_ptr(),
};

static mut CALL_AT_DEF: pyo3::ffi::PyMethodDef = pyo3::ffi::PyMethodDef {
    ml_name: c"call_at".as_ptr(),
    ml_meth: pyo3::ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: fast_call_at,
    },
    ml_flags: pyo3::ffi::METH_FASTCALL | pyo3::ffi::METH_KEYWORDS,
    ml_doc: c"call_at($self, when, callback, /, *args, context=None)\n--\n\nArrange for callback(*args) to be called at loop time when (virtual time).".as_ptr(),
};

unsafe extern "C" fn fast_call_later(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: as `fast_call_soon`'s (CPython's METH_FASTCALL contract).
    unsafe { fast_timer(slf, args, nargs, kwnames, false) }
}

unsafe extern "C" fn fast_call_at(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: as `fast_call_soon`'s (CPython's METH_FASTCALL contract).
    unsafe { fast_timer(slf, args, nargs, kwnames, true) }
}

/// The body of `fast_call_later` (`at` false: `args[0]` is a delay) and
/// `fast_call_at` (`at` true: `args[0]` is a loop time).
///
/// SAFETY: called with the GIL held, `slf` an instance of LoopCore (the
/// method descriptor checks it), `args` holding `nargs` positional arguments
/// followed by one value per name in `kwnames`.
unsafe fn fast_timer(
    slf: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargs: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
    at: bool,
) -> *mut pyo3::ffi::PyObject {
    let (method, first) = if at {
        ("call_at", "when")
    } else {
        ("call_later", "delay")
    };
    // SAFETY: as in `fast_call_soon` (the GIL token assumed, not acquired).
    let py = unsafe { Python::assume_gil_acquired() };
    unsafe {
        errors::ffi_call(py, || -> PyResult<*mut pyo3::ffi::PyObject> {
            let nargs = usize::try_from(nargs).unwrap_or(0);
            if nargs < 2 {
                let missing = if nargs == 0 {
                    format!("2 required positional arguments: '{first}' and 'callback'")
                } else {
                    "1 required positional argument: 'callback'".to_owned()
                };
                return Err(PyTypeError::new_err(format!(
                    "{method}() missing {missing}"
                )));
            }
            let mut context: Option<Bound<'_, PyAny>> = None;
            if !kwnames.is_null() {
                let names = Bound::from_borrowed_ptr(py, kwnames).downcast_into::<PyTuple>()?;
                for (i, name) in names.iter().enumerate() {
                    if !is_context_name(&name)? {
                        return Err(PyTypeError::new_err(format!(
                            "{method}() got an unexpected keyword argument '{name}'"
                        )));
                    }
                    context = Some(Bound::from_borrowed_ptr(py, *args.add(nargs + i)));
                }
            }
            let slf = Bound::from_borrowed_ptr(py, slf).downcast_into::<LoopCore>()?;
            let given = Bound::from_borrowed_ptr(py, *args);
            let value = errors::finite_or_inf(py, &given, method, first)?;
            let when = if at {
                value
            } else {
                if value < 0.0 {
                    return Err(errors::new(
                        py,
                        Raised::InvalidDelay,
                        format!(
                            "call_later() delay must be >= 0, got {value}; use call_soon() to run as soon as possible"
                        ),
                    ));
                }
                // As stock: `self.time() + delay`, through a patched time() if any.
                let now = match LoopCore::patched_time(&slf)? {
                    Some(t) => t,
                    None => slf.get().time(),
                };
                now + value
            };
            let core = slf.get();
            core.check_open()?;
            let callback = Bound::from_borrowed_ptr(py, *args.add(1));
            if !callback.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "a callable object was expected by {method}(), got {}",
                    callback.repr()?
                )));
            }
            let context = match context {
                Some(c) if !c.is_none() => c,
                _ => copy_context(py)?.into_bound(py),
            };
            let owner = core.owner_of(py, &callback)?;
            let fp = if core.systematic.load(Ordering::Relaxed) {
                // What a systematic walk needs to know the step may touch.
                let rest = PyTuple::new(
                    py,
                    (2..nargs).map(|i| Bound::from_borrowed_ptr(py, *args.add(i))),
                )?;
                footprint_of(py, &callback, &rest)?
            } else {
                Footprint::Any
            };
            let call_args = Args::from_raw(py, args.add(2), nargs - 2)?;
            let handle = Py::new(
                py,
                Handle::new(
                    &callback,
                    call_args,
                    context.unbind(),
                    Some(when),
                    Some(core.cancelled_timers.clone()),
                ),
            )?;
            let deadline = secs_to_ns_ceil(when);
            {
                let mut st = core.lock();
                let owner = owner.unwrap_or(st.current_owner);
                st.sched
                    .push_timer_fp(deadline, owner, fp, handle.clone_ref(py));
            }
            core.maybe_purge_timers(py);
            Ok(handle.into_ptr())
        })
    }
}

/// A C-level method of `LoopCore` from its static definition.
pub(crate) fn method_descriptor(
    py: Python<'_>,
    def: *mut pyo3::ffi::PyMethodDef,
) -> PyResult<PyObject> {
    method_descriptor_of(py, LoopCore::type_object(py).as_type_ptr(), def)
}

/// A method descriptor of the type `ty` (one that lives for the process:
/// `LoopCore`, held by the module, or a static type such as `object`) from a
/// static definition never written after start-up.
pub(crate) fn method_descriptor_of(
    py: Python<'_>,
    ty: *mut pyo3::ffi::PyTypeObject,
    def: *mut pyo3::ffi::PyMethodDef,
) -> PyResult<PyObject> {
    // SAFETY: the caller's guarantee: both outlive the descriptor.
    let descr = unsafe { pyo3::ffi::PyDescr_NewMethod(ty, def) };
    if descr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new reference returned by PyDescr_NewMethod.
    Ok(unsafe { PyObject::from_owned_ptr(py, descr) })
}

/// The METH_FASTCALL `call_later` (see `CALL_LATER_DEF`), for `SeedLoop` to install.
#[pyfunction]
fn fast_call_later_method(py: Python<'_>) -> PyResult<PyObject> {
    method_descriptor(py, std::ptr::addr_of_mut!(CALL_LATER_DEF))
}

/// The METH_FASTCALL `call_at` (see `CALL_AT_DEF`), for `SeedLoop` to install.
#[pyfunction]
fn fast_call_at_method(py: Python<'_>) -> PyResult<PyObject> {
    method_descriptor(py, std::ptr::addr_of_mut!(CALL_AT_DEF))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fast_call_soon_method, m)?)?;
    m.add_function(wrap_pyfunction!(fast_call_later_method, m)?)?;
    m.add_function(wrap_pyfunction!(fast_call_at_method, m)?)?;
    m.add_class::<LoopCore>()?;
    m.add_class::<Handle>()?;
    m.add("RAN", RAN)?;
    m.add("IDLE", IDLE)?;
    m.add("STEP_BUDGET", STEP_BUDGET)?;
    m.add("TIME_BUDGET", TIME_BUDGET)?;
    m.add("TAPE_OVERRUN", TAPE_OVERRUN)?;
    m.add("WALL_BUDGET", WALL_BUDGET)?;
    m.add("WALK_STOPPED", WALK_STOPPED)?;
    // The one list of strategy names (engine/src/strategy.rs), as a tuple.
    m.add("STRATEGIES", PyTuple::new(m.py(), STRATEGIES)?)?;
    let _ = Handle::type_object(m.py());
    Ok(())
}
