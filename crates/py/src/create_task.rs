//! `SeedLoop.create_task` and `get_debug` as C-level methods: a task without a Python frame.
//!
//! The Python `create_task` (now `_create_task_slow` in `seedloop._loop.tasks`)
//! cost a frame, three attribute writes and an f-string per task. This
//! method does the same for the common call, `create_task(coro[, name=...]
//! [, context=...])` on an open loop outside debug mode with no task factory
//! and no creation hook: it bumps the same counters (the engine's, read in
//! Python as `_tasks_created`/`_seed_tasks_created`),
//! names the task `Task-<n>` from the same counter, builds the same
//! `SeedTask(coro, loop=self, name=name[, context=context])` and tells the
//! network about it the same way. Every other call (extra or unknown
//! arguments, a factory, a hook, debug mode, a closed loop, `context` on
//! 3.10) goes to `_create_task_slow`, which
//! keeps the Python path's checks, errors and messages.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::PyTypeInfo;

use crate::loop_core::{method_descriptor, method_descriptor_of, LoopCore};

/// The task class the fast path builds (`SeedTask`; kept alive for the process).
static TASK_CLASS: AtomicPtr<ffi::PyObject> = AtomicPtr::new(ptr::null_mut());
/// `asyncio.Task` takes `context=` (3.11+).
static TASK_TAKES_CONTEXT: AtomicBool = AtomicBool::new(false);

static mut CREATE_TASK_DEF: ffi::PyMethodDef = ffi::PyMethodDef {
    ml_name: c"create_task".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunctionFastWithKeywords: fast_create_task,
    },
    ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: c"create_task($self, coro, *, name=None, context=None, **kwargs)\n--\n\n``loop.create_task``; without a task factory the task is a SeedTask (hashed by creation order).".as_ptr(),
};

/// Is the keyword `kw` the string `name`? (By address first: keyword names
/// from code objects are interned, like `intern!`'s strings.)
fn is_keyword(kw: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> bool {
    kw.is(name)
        || kw
            .downcast::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok().map(|s| s == name.to_str().unwrap_or("")))
            .unwrap_or(false)
}

/// Is `slf.<name>` the object `expected`? (False when the lookup fails:
/// the slow path then raises what it must.) A loop's attributes are slots
/// (`SeedLoop.__slots__`), so this is the member lookup `self.<name>` makes.
///
/// SAFETY: the GIL held; `expected` a live object (only its address is compared).
unsafe fn attr_is(
    slf: &Bound<'_, PyAny>,
    name: &Bound<'_, PyString>,
    expected: *mut ffi::PyObject,
) -> bool {
    // SAFETY: the caller's guarantee; the new reference is released at once.
    unsafe {
        let value = ffi::PyObject_GetAttr(slf.as_ptr(), name.as_ptr());
        if value.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        ffi::Py_DECREF(value);
        value == expected
    }
}

/// `f"Task-{n}"`, written without a heap buffer.
fn default_name(py: Python<'_>, n: i64) -> PyResult<Bound<'_, PyAny>> {
    // Two digits at a time (a division per pair).
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut buf = [0u8; 32];
    let mut at = buf.len();
    let mut rest = n.unsigned_abs();
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + rest as u8;
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    at -= 5;
    buf[at..at + 5].copy_from_slice(b"Task-");
    let text = &buf[at..];
    // SAFETY: ASCII bytes of the given length; a new reference or NULL with an error set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_FromStringAndSize(text.as_ptr().cast(), text.len() as ffi::Py_ssize_t),
        )
    }
}

/// `class(coro, loop=slf, name=name[, context=context])`; `context` is
/// None when not given.
///
/// SAFETY: `class` a live type, `context` a live object, the GIL held.
unsafe fn new_task<'py>(
    py: Python<'py>,
    class: *mut ffi::PyObject,
    coro: &Bound<'py, PyAny>,
    slf: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
    context: *mut ffi::PyObject,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY (the block): the caller's guarantee.
    unsafe {
        let call_args = Bound::from_owned_ptr_or_err(py, ffi::PyTuple_Pack(1, coro.as_ptr()))?;
        let (loop_key, name_key) = (intern!(py, "loop"), intern!(py, "name"));
        let set =
            |dict: *mut ffi::PyObject, key: &Bound<'_, PyString>, value: *mut ffi::PyObject| {
                if ffi::PyDict_SetItem(dict, key.as_ptr(), value) < 0 {
                    return Err(PyErr::fetch(py));
                }
                Ok(())
            };
        // A new dict per call (as Python's own call builds): refilling a
        // kept one cost more than making one (the values must be let go
        // after the call, so each key is replaced twice).
        let kwargs = PyDict::new(py);
        set(kwargs.as_ptr(), loop_key, slf.as_ptr())?;
        set(kwargs.as_ptr(), name_key, name.as_ptr())?;
        if context != ffi::Py_None() {
            set(kwargs.as_ptr(), intern!(py, "context"), context)?;
        }
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyObject_Call(class, call_args.as_ptr(), kwargs.as_ptr()),
        )
    }
}

/// The fast path; Ok(None) sends the call to `_create_task_slow`.
///
/// SAFETY: as `fast_create_task`'s.
unsafe fn create_fast<'py>(
    py: Python<'py>,
    slf: &Bound<'py, PyAny>,
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let class = TASK_CLASS.load(Ordering::Acquire);
    if nargs != 1 || class.is_null() {
        return Ok(None);
    }
    // SAFETY (the block): CPython's METH_FASTCALL contract (the caller's);
    // borrowed references are used while their owners (the arguments) hold them.
    unsafe {
        let none = ffi::Py_None();
        let mut name: *mut ffi::PyObject = none;
        let mut context: *mut ffi::PyObject = none;
        if !kwnames.is_null() {
            let names = Bound::from_borrowed_ptr(py, kwnames).downcast_into_unchecked::<PyTuple>();
            for (i, kw) in names.iter().enumerate() {
                let value = *args.add(nargs + i);
                if is_keyword(&kw, intern!(py, "name")) {
                    name = value;
                } else if is_keyword(&kw, intern!(py, "context")) {
                    context = value;
                } else {
                    return Ok(None);
                }
            }
        }
        if context != none && !TASK_TAKES_CONTEXT.load(Ordering::Relaxed) {
            return Ok(None); // 3.10: the slow path raises asyncio's TypeError
        }
        let falsy = ffi::Py_False();
        // The descriptor is `object`'s (it is installed on a mixin class):
        // anything but a loop takes the slow path.
        if ffi::PyObject_TypeCheck(slf.as_ptr(), LoopCore::type_object_raw(py)) == 0 {
            return Ok(None);
        }
        let core = slf.downcast_unchecked::<LoopCore>().get();
        if !attr_is(slf, intern!(py, "_task_factory"), none)
            || !attr_is(slf, intern!(py, "_on_task_created"), none)
            || !attr_is(slf, intern!(py, "_closed"), falsy)
            || !attr_is(slf, intern!(py, "_debug"), falsy)
        {
            return Ok(None);
        }
        // As `self._tasks_created += 1` (wrapping at the end of i64, where
        // a Python int would grow: 2**63 tasks are not created).
        let n = core
            .tasks_created
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        let name = if name == none {
            default_name(py, n)?
        } else {
            Bound::from_borrowed_ptr(py, name)
        };
        let coro = Bound::from_borrowed_ptr(py, *args);
        let task = new_task(py, class, &coro, slf, &name, context)?;
        core.seed_tasks_created.fetch_add(1, Ordering::Relaxed);
        // The engine keeps every task it schedules (weakly, in creation
        // order): clean-up reads pending tasks from there. The network
        // learns which host's tasks these are.
        if !attr_is(slf, intern!(py, "_seedloop_net"), none) {
            slf.call_method1(
                intern!(py, "_track_on_host"),
                (&task, Bound::from_borrowed_ptr(py, context)),
            )?;
        }
        Ok(Some(task))
    }
}

unsafe extern "C" fn fast_create_task(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this with the GIL held, `slf` the instance (the
    // method descriptor checked its type), `args` holding `nargs` positional
    // arguments followed by one value per name in `kwnames`. The GIL token
    // is assumed, not acquired (as in `loop_core::fast_call_soon`).
    let py = unsafe { Python::assume_gil_acquired() };
    unsafe {
        crate::errors::ffi_call(py, || {
            let nargs = usize::try_from(nargs).unwrap_or(0);
            let this = Bound::from_borrowed_ptr(py, slf);
            let task = match create_fast(py, &this, args, nargs, kwnames)? {
                Some(task) => task,
                None => create_slow(py, &this, args, nargs, kwnames)?,
            };
            Ok(task.into_ptr())
        })
    }
}

/// `self._create_task_slow(*args, **kwargs)` with the call's own arguments.
///
/// SAFETY: as `fast_create_task`'s.
unsafe fn create_slow<'py>(
    py: Python<'py>,
    slf: &Bound<'py, PyAny>,
    args: *const *mut ffi::PyObject,
    nargs: usize,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: CPython's METH_FASTCALL contract (the caller's).
    unsafe {
        let positional = PyTuple::new(
            py,
            (0..nargs).map(|i| Bound::from_borrowed_ptr(py, *args.add(i))),
        )?;
        let kwargs = if kwnames.is_null() {
            None
        } else {
            let kwargs = PyDict::new(py);
            let names = Bound::from_borrowed_ptr(py, kwnames).downcast_into_unchecked::<PyTuple>();
            for (i, kw) in names.iter().enumerate() {
                kwargs.set_item(kw, Bound::from_borrowed_ptr(py, *args.add(nargs + i)))?;
            }
            Some(kwargs)
        };
        slf.call_method(
            intern!(py, "_create_task_slow"),
            positional,
            kwargs.as_ref(),
        )
    }
}

static mut GET_DEBUG_DEF: ffi::PyMethodDef = ffi::PyMethodDef {
    ml_name: c"get_debug".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: fast_get_debug,
    },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"get_debug($self, /)\n--\n\nIs the loop in debug mode? (``self._debug``.)".as_ptr(),
};

/// `BaseEventLoop.get_debug` (`return self._debug`) without its frame: the
/// C Future and Task call it in their `__init__`, so every task and future
/// paid a Python frame for it. `_debug` is a slot (`SeedLoop.__slots__`).
unsafe extern "C" fn fast_get_debug(
    slf: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this with the GIL held and `slf` an instance (the
    // method descriptor checked its type).
    unsafe {
        let py = Python::assume_gil_acquired();
        ffi::PyObject_GetAttr(slf, intern!(py, "_debug").as_ptr())
    }
}

/// The METH_NOARGS `get_debug` (see `fast_get_debug`), for `SeedLoop` to install.
#[pyfunction]
fn fast_get_debug_method(py: Python<'_>) -> PyResult<PyObject> {
    method_descriptor(py, ptr::addr_of_mut!(GET_DEBUG_DEF))
}

/// The METH_FASTCALL `create_task` building `task_class` tasks, for the
/// loop's task mixin to install.
#[pyfunction]
fn fast_create_task_method(py: Python<'_>, task_class: &Bound<'_, PyType>) -> PyResult<PyObject> {
    let takes_context = py.version_info() >= (3, 11);
    TASK_TAKES_CONTEXT.store(takes_context, Ordering::Relaxed);
    // The class must outlive every call: keep a reference for the process.
    // An earlier class stays alive too (a call may still use it).
    let _previous = TASK_CLASS.swap(task_class.clone().into_ptr(), Ordering::AcqRel);
    // `object`'s: the method is installed on a mixin, not on a LoopCore class.
    method_descriptor_of(
        py,
        ptr::addr_of_mut!(ffi::PyBaseObject_Type),
        ptr::addr_of_mut!(CREATE_TASK_DEF),
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fast_create_task_method, m)?)?;
    m.add_function(wrap_pyfunction!(fast_get_debug_method, m)?)?;
    Ok(())
}
