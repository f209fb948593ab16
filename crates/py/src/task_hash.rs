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
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::loop_core::LoopCore;

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

/// The next number of the object's loop (a SeedLoop), else its address / 16.
fn next_number(py: Python<'_>, obj: &Bound<'_, PyAny>) -> u64 {
    if let Ok(lp) = obj.getattr(pyo3::intern!(py, "_loop")) {
        if let Ok(core) = lp.downcast::<LoopCore>() {
            return core.get().next_hash();
        }
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
        for (class, offset) in CLASSES.iter().zip(OFFSETS.iter()) {
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
            let number = Python::with_gil(|py| {
                let obj = Bound::from_borrowed_ptr(py, slf);
                next_number(py, &obj)
            });
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

/// A C-level `__hash__` for `cls`, whose last slot (added by
/// `__slots__ = ("_seedloop_hash",)`) holds the number; None if the class's
/// layout is not that (then the Python `__hash__` stays).
#[pyfunction]
fn creation_hash_method(py: Python<'_>, cls: &Bound<'_, PyType>) -> PyResult<Option<PyObject>> {
    let word = std::mem::size_of::<*mut ffi::PyObject>() as isize;
    let base = cls.getattr("__base__")?;
    let size: isize = cls.getattr("__basicsize__")?.extract()?;
    let base_size: isize = base.getattr("__basicsize__")?.extract()?;
    let same = |name: &str| -> PyResult<bool> {
        Ok(cls.getattr(name)?.extract::<isize>()? == base.getattr(name)?.extract::<isize>()?)
    };
    let slots = cls.getattr("__slots__")?;
    let one_slot = slots.len().ok() == Some(1)
        && slots.get_item(0)?.extract::<String>().ok().as_deref() == Some("_seedloop_hash");
    if size != base_size + word
        || !same("__dictoffset__")?
        || !same("__weakrefoffset__")?
        || !one_slot
    {
        return Ok(None);
    }
    let ty = cls.as_type_ptr();
    let mut registered = false;
    for (class, offset) in CLASSES.iter().zip(OFFSETS.iter()) {
        let current = class.load(Ordering::Acquire);
        if current == ty {
            registered = true;
            break;
        }
        if current.is_null() {
            offset.store(base_size, Ordering::Release);
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
    // SAFETY: HASH_DEF is a static method definition, never written after
    // start-up; PyBaseObject_Type is `object`.
    let descr = unsafe {
        ffi::PyDescr_NewMethod(
            ptr::addr_of_mut!(ffi::PyBaseObject_Type),
            ptr::addr_of_mut!(HASH_DEF),
        )
    };
    if descr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new reference returned by PyDescr_NewMethod.
    Ok(Some(unsafe { PyObject::from_owned_ptr(py, descr) }))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(creation_hash_method, m)?)?;
    Ok(())
}
