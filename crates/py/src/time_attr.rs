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
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyDict;
use pyo3::PyTypeInfo;

use crate::loop_core::LoopCore;

/// `LoopCore.time`, the engine's own method descriptor (what an unpatched
/// `loop.time` is bound to and what `SeedLoop.time` shows on the class), and
/// its type's `__get__`, which binds it without a Python-level call.
struct EngineTime {
    method: PyObject,
    bind: ffi::descrgetfunc,
}

fn engine_time(py: Python<'_>) -> PyResult<&EngineTime> {
    static ENGINE_TIME: GILOnceCell<EngineTime> = GILOnceCell::new();
    ENGINE_TIME.get_or_try_init(py, || {
        let method = LoopCore::type_object(py).getattr(pyo3::intern!(py, "time"))?;
        // SAFETY: the GIL is held; a method descriptor's type is a static
        // type (readable by PyType_GetSlot since 3.10) whose `tp_descr_get`
        // slot, if set, is a `descrgetfunc`.
        let slot =
            unsafe { ffi::PyType_GetSlot(ffi::Py_TYPE(method.as_ptr()), ffi::Py_tp_descr_get) };
        if slot.is_null() {
            return Err(PyTypeError::new_err("LoopCore.time cannot be bound"));
        }
        Ok(EngineTime {
            method: method.unbind(),
            // SAFETY: see above: the slot holds a `descrgetfunc`.
            bind: unsafe { std::mem::transmute::<*mut std::ffi::c_void, ffi::descrgetfunc>(slot) },
        })
    })
}

/// Is `ty`'s `time` the engine's (no class in between defines its own)?
pub(crate) fn is_engine_time(ty: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    let py = ty.py();
    Ok(ty
        .getattr(pyo3::intern!(py, "time"))?
        .is(engine_time(py)?.method.bind(py)))
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
            return Ok(engine_time(py)?.method.bind(py).clone());
        };
        let core = Self::core(instance)?;
        if core.get().time_patched() {
            if let Some(value) = Self::dict(instance)?.get_item(pyo3::intern!(py, "time"))? {
                return Ok(value);
            }
        }
        let time = engine_time(py)?;
        // SAFETY: the method descriptor's own `__get__`, with live objects and
        // the GIL held; a new reference (the bound method) or NULL.
        let bound = unsafe {
            (time.bind)(
                time.method.as_ptr(),
                instance.as_ptr(),
                ffi::Py_TYPE(instance.as_ptr()).cast(),
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
