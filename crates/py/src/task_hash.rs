//! The creation-order hash of `SeedTask`/`SeedFuture` as a C-level `__hash__`.
//!
//! A stock task hashes by address, so sets of tasks iterate in an order that
//! changes from run to run; seedloop's hash by creation order instead (see
//! `seedloop._loop.tasks`). As a Python `__hash__` it cost a frame per task
//! (about 4,400 instructions of a 27,000-instruction task creation). Here it
//! is a method descriptor of `object` (so `slot_tp_hash` calls it with the
//! task and no binding) that reads the number from the class's
//! `_seedloop_hash` slot, or draws the loop's next number on first use.

use std::ptr;
use std::sync::atomic::{AtomicIsize, AtomicPtr, AtomicU8, Ordering};

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::PyTypeInfo;

use crate::loop_core::{method_descriptor_of, LoopCore};
use crate::task_ordinal::{first_field, loop_is_first_field, slot_offset};

/// The classes given a C-level hash and the byte offset of their slot.
const MAX_CLASSES: usize = 4;
static CLASSES: [AtomicPtr<ffi::PyTypeObject>; MAX_CLASSES] = [
    AtomicPtr::new(ptr::null_mut()),
    AtomicPtr::new(ptr::null_mut()),
    AtomicPtr::new(ptr::null_mut()),
    AtomicPtr::new(ptr::null_mut()),
];
static OFFSETS: [AtomicIsize; MAX_CLASSES] = [
    AtomicIsize::new(0),
    AtomicIsize::new(0),
    AtomicIsize::new(0),
    AtomicIsize::new(0),
];

static mut HASH_DEF: ffi::PyMethodDef = ffi::PyMethodDef {
    ml_name: c"__hash__".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: creation_hash,
    },
    ml_flags: ffi::METH_NOARGS,
    ml_doc: c"Hash by the order in which objects of the loop are first hashed.".as_ptr(),
};

/// Per registered class: is the word after the object header the
/// future's loop (`FutureObj_HEAD`'s `fut_loop`, first field of the C
/// Future and Task in CPython 3.10-3.13)? 0 not yet known, 1 yes, 2 no
/// (always `_loop`). Learnt on the first instance hashed whose `_loop` is a
/// loop, by comparing that word with the attribute: the lookup cost about
/// 150 instructions of every task and future.
static LOOP_LAYOUT: [AtomicU8; MAX_CLASSES] = [
    AtomicU8::new(0),
    AtomicU8::new(0),
    AtomicU8::new(0),
    AtomicU8::new(0),
];

/// `LoopCore`'s type object (set when the first class is registered).
static LOOP_CORE_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(ptr::null_mut());

/// The object's loop if it is a SeedLoop (a `LoopCore`), read from the
/// object where the layout was confirmed for class number `class`.
fn core_of<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    class: usize,
) -> Option<Bound<'py, LoopCore>> {
    let is_core = |lp: *mut ffi::PyObject| {
        let core_type = LOOP_CORE_TYPE.load(Ordering::Relaxed);
        // SAFETY: a live object (the GIL held).
        !core_type.is_null() && unsafe { ffi::PyType_IsSubtype(ffi::Py_TYPE(lp), core_type) } != 0
    };
    // SAFETY: the registered class's instances are at least three words
    // long (a Future's layout, checked against `_loop` before the first
    // read); the GIL is held.
    let field = || unsafe { first_field(obj.as_ptr()) };
    let from_attr = || -> Option<Bound<'py, LoopCore>> {
        let lp = obj.getattr(pyo3::intern!(py, "_loop")).ok()?;
        if !is_core(lp.as_ptr()) {
            return None;
        }
        if LOOP_LAYOUT[class].load(Ordering::Relaxed) == 0 {
            let same = loop_is_first_field(obj, &lp, OFFSETS[class].load(Ordering::Acquire));
            LOOP_LAYOUT[class].store(if same { 1 } else { 2 }, Ordering::Relaxed);
        }
        // SAFETY: checked above to be a LoopCore.
        Some(unsafe { lp.downcast_into_unchecked::<LoopCore>() })
    };
    if LOOP_LAYOUT[class].load(Ordering::Relaxed) == 1 {
        let lp = field();
        if lp.is_null() || !is_core(lp) {
            return from_attr();
        }
        // SAFETY: the object holds a strong reference to its loop, a LoopCore.
        return Some(unsafe {
            Bound::from_borrowed_ptr(py, lp).downcast_into_unchecked::<LoopCore>()
        });
    }
    from_attr()
}

/// The next number of the object's loop (a SeedLoop), else its address / 16.
fn next_number(py: Python<'_>, obj: &Bound<'_, PyAny>, class: usize) -> u64 {
    if let Some(core) = core_of(py, obj, class) {
        return core.get().next_hash();
    }
    (obj.as_ptr() as usize as u64) >> 4
}

unsafe extern "C" fn creation_hash(
    slf: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython with the GIL held and a valid `slf`; the slot
    // offset was checked against the class layout when it was registered,
    // and it is used only for instances of that class (or subclasses, which
    // keep the slot where it is).
    unsafe {
        let ty = ffi::Py_TYPE(slf);
        for (index, (class, offset)) in CLASSES.iter().zip(OFFSETS.iter()).enumerate() {
            let class = class.load(Ordering::Acquire);
            if class.is_null() {
                break;
            }
            if ffi::PyType_IsSubtype(ty, class) == 0 {
                continue;
            }
            let slot =
                (slf as *mut u8).offset(offset.load(Ordering::Acquire)) as *mut *mut ffi::PyObject;
            let held = *slot;
            if !held.is_null() {
                ffi::Py_INCREF(held);
                return held;
            }
            // The GIL token is assumed, not acquired (CPython holds it
            // while hashing): acquiring it cost more than the rest.
            let py = Python::assume_gil_acquired();
            let number = next_number(py, &Bound::from_borrowed_ptr(py, slf), index);
            let value = ffi::PyLong_FromUnsignedLongLong(number);
            if value.is_null() {
                return ptr::null_mut();
            }
            ffi::Py_INCREF(value);
            *slot = value;
            return value;
        }
        Python::with_gil(|py| {
            PyTypeError::new_err(
                "seedloop's creation-order __hash__ applies to its tasks and futures only",
            )
            .restore(py)
        });
        ptr::null_mut()
    }
}

/// A C-level `__hash__` for `cls`, whose slot `_seedloop_hash` (added by
/// `__slots__`) holds the number; None if the class's layout is not that
/// (then the Python `__hash__` stays).
#[pyfunction]
fn creation_hash_method(py: Python<'_>, cls: &Bound<'_, PyType>) -> PyResult<Option<PyObject>> {
    let Some(slot) = slot_offset(cls, "_seedloop_hash")? else {
        return Ok(None);
    };
    LOOP_CORE_TYPE.store(LoopCore::type_object_raw(py), Ordering::Relaxed);
    let ty = cls.as_type_ptr();
    let mut registered = false;
    for (class, offset) in CLASSES.iter().zip(OFFSETS.iter()) {
        let current = class.load(Ordering::Acquire);
        if current == ty {
            registered = true;
            break;
        }
        if current.is_null() {
            offset.store(slot, Ordering::Release);
            // The class must outlive every call: keep a reference for the process.
            std::mem::forget(cls.clone().unbind());
            class.store(ty, Ordering::Release);
            registered = true;
            break;
        }
    }
    if !registered {
        return Ok(None);
    }
    method_descriptor_of(
        py,
        ptr::addr_of_mut!(ffi::PyBaseObject_Type),
        ptr::addr_of_mut!(HASH_DEF),
    )
    .map(Some)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(creation_hash_method, m)?)?;
    Ok(())
}
