//! `SeedLoop.time`: a data descriptor, so the engine learns when a test
//! replaces a loop's `time()` without looking in the instance dict.
//!
//! The stock loop reads `self.time()` to decide which timers are due and to
//! compute `call_later` deadlines, and tests replace it
//! (`mock.patch.object(loop, "time", ...)`, `loop.time = lambda: ...`). The
//! engine used to look `time` up in the instance dict every iteration. On
//! CPython 3.11 and 3.12 reading `loop.__dict__` also turns the instance's
//! inline attribute values into a real dict for good, after which CPython's
//! adaptive interpreter no longer specializes any `loop.attr` access (every
//! `loop.call_soon` a callback makes). This descriptor keeps the replacement
//! in the instance dict, where stock keeps it (`vars(loop)` shows it), and a
//! flag on the loop that the engine reads instead.

use pyo3::exceptions::{PyAttributeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyDict;
use pyo3::PyTypeInfo;

use crate::loop_core::LoopCore;

/// `time()` as a METH_NOARGS method of `LoopCore`: what an unpatched
/// `loop.time` is bound to, and what `SeedLoop.time` shows on the class.
static mut TIME_DEF: pyo3::ffi::PyMethodDef = pyo3::ffi::PyMethodDef {
    ml_name: c"time".as_ptr(),
    ml_meth: pyo3::ffi::PyMethodDefPointer {
        PyCFunction: loop_time,
    },
    ml_flags: pyo3::ffi::METH_NOARGS,
    ml_doc: c"time($self, /)\n--\n\nThe loop's virtual time in seconds.".as_ptr(),
};

unsafe extern "C" fn loop_time(
    slf: *mut pyo3::ffi::PyObject,
    _args: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held and a live `slf`.
    let py = unsafe { Python::assume_gil_acquired() };
    // SAFETY: as above; borrowed for the call.
    let slf = unsafe { Bound::from_borrowed_ptr(py, slf) };
    match slf.downcast::<LoopCore>() {
        // SAFETY: the GIL is held; a new float reference.
        Ok(core) => unsafe { pyo3::ffi::PyFloat_FromDouble(core.get().time()) },
        Err(err) => {
            PyErr::from(err).restore(py);
            std::ptr::null_mut()
        }
    }
}

/// `LoopCore`'s `time` method descriptor (what `SeedLoop.time` returns).
fn method(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static METHOD: GILOnceCell<PyObject> = GILOnceCell::new();
    Ok(METHOD
        .get_or_try_init(py, || {
            let ty = LoopCore::type_object(py);
            // SAFETY: a static definition never written; the type outlives it.
            let descr = unsafe {
                pyo3::ffi::PyDescr_NewMethod(ty.as_type_ptr(), std::ptr::addr_of_mut!(TIME_DEF))
            };
            if descr.is_null() {
                return Err(PyErr::fetch(py));
            }
            // SAFETY: a new reference.
            Ok(unsafe { PyObject::from_owned_ptr(py, descr) })
        })?
        .bind(py))
}

/// Is `ty`'s `time` this module's (no class in between defines its own)?
pub(crate) fn is_engine_time(ty: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    let py = ty.py();
    Ok(ty.getattr(pyo3::intern!(py, "time"))?.is(method(py)?))
}

/// The descriptor `SeedLoop.time` is.
#[pyclass(frozen, module = "seedloop._engine", name = "TimeAttribute")]
pub struct TimeAttribute;

impl TimeAttribute {
    fn core<'a, 'py>(instance: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, LoopCore>> {
        instance.downcast::<LoopCore>().map_err(|_| {
            PyTypeError::new_err(format!(
                "descriptor 'time' for 'LoopCore' objects doesn't apply to a '{}' object",
                instance
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })
    }

    fn dict<'py>(instance: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        Ok(instance
            .getattr(pyo3::intern!(instance.py(), "__dict__"))?
            .downcast_into::<PyDict>()?)
    }

    fn no_attribute(instance: &Bound<'_, PyAny>) -> PyErr {
        let name = instance
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyAttributeError::new_err(format!("'{name}' object has no attribute 'time'"))
    }
}

#[pymethods]
impl TimeAttribute {
    /// `SeedLoop.time = TimeAttribute()`.
    #[new]
    fn new() -> Self {
        TimeAttribute
    }

    /// A replacement if one was set on the loop, else `time` bound to it.
    fn __get__<'py>(
        &self,
        py: Python<'py>,
        instance: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(instance) = instance.filter(|i| !i.is_none()) else {
            return Ok(method(py)?.clone());
        };
        let core = Self::core(instance)?;
        if core.get().time_patched() {
            if let Some(value) = Self::dict(instance)?.get_item(pyo3::intern!(py, "time"))? {
                return Ok(value);
            }
        }
        // SAFETY: a static definition never written; `instance` is live and
        // becomes the builtin method's `__self__` (a new reference).
        let bound = unsafe {
            pyo3::ffi::PyCFunction_NewEx(
                std::ptr::addr_of_mut!(TIME_DEF),
                instance.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if bound.is_null() {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: a new reference.
        Ok(unsafe { Bound::from_owned_ptr(py, bound) })
    }

    /// `loop.time = f`: kept in the instance dict, as stock keeps it.
    fn __set__(&self, instance: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let core = Self::core(instance)?;
        Self::dict(instance)?.set_item(pyo3::intern!(instance.py(), "time"), value)?;
        core.get().set_time_patched(true);
        Ok(())
    }

    /// `del loop.time`: back to the loop's own clock.
    fn __delete__(&self, instance: &Bound<'_, PyAny>) -> PyResult<()> {
        let core = Self::core(instance)?;
        if !core.get().time_patched() {
            return Err(Self::no_attribute(instance));
        }
        core.get().set_time_patched(false);
        let dict = Self::dict(instance)?;
        if dict.del_item(pyo3::intern!(instance.py(), "time")).is_err() {
            return Err(Self::no_attribute(instance));
        }
        Ok(())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TimeAttribute>()
}
