//! CPython functions the stable ABI leaves out but every supported version
//! (3.10 to 3.13) exports with the same signature since 3.7: the context
//! calls asyncio's own C code makes for every callback, and the type
//! attribute lookup behind every `getattr`.

use std::os::raw::c_int;

use pyo3::ffi::{PyObject, PyTypeObject};

extern "C" {
    pub(crate) static mut PyContext_Type: PyTypeObject;
    pub(crate) fn PyContext_CopyCurrent() -> *mut PyObject;
    pub(crate) fn PyContext_Enter(ctx: *mut PyObject) -> c_int;
    pub(crate) fn PyContext_Exit(ctx: *mut PyObject) -> c_int;
    /// The attribute `name` of the type or a base (the type's method
    /// cache), borrowed; NULL if none, without an error set.
    pub(crate) fn _PyType_Lookup(ty: *mut PyTypeObject, name: *mut PyObject) -> *mut PyObject;
}

/// Is `op` exactly a `contextvars.Context`?
///
/// # Safety
/// `op` must be a live object (the GIL held).
pub(crate) unsafe fn is_context(op: *mut PyObject) -> bool {
    // SAFETY: the caller's guarantee; only the address of the type is taken.
    unsafe { pyo3::ffi::Py_TYPE(op) == std::ptr::addr_of_mut!(PyContext_Type) }
}
