//! Raising seedloop's own (Python-defined) error types from Rust, with each
//! class resolved once, when the extension module is imported.
//!
//! A class is named by a [`Raised`] variant, never by a string at raise time:
//! a typo is a compile error, and a class missing from `seedloop.errors`
//! fails `import seedloop._engine` instead of a later raise turning into some
//! other error type.

use pyo3::exceptions::{PyException, PyImportError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyType;

/// The `seedloop.errors` classes Rust raises.
#[derive(Clone, Copy, Debug)]
pub enum Raised {
    InvalidDelay,
    InvalidStrategy,
}

impl Raised {
    /// Every variant, in declaration order (so `kind as usize` indexes it).
    const ALL: [Raised; 2] = [Raised::InvalidDelay, Raised::InvalidStrategy];

    fn class_name(self) -> &'static str {
        match self {
            Raised::InvalidDelay => "InvalidDelayError",
            Raised::InvalidStrategy => "InvalidStrategyError",
        }
    }
}

/// The resolved classes, indexed by `Raised as usize`; set by [`init`].
static CLASSES: GILOnceCell<Vec<Py<PyType>>> = GILOnceCell::new();

/// Fetch every class in [`Raised::ALL`] from `module` (normally
/// `seedloop.errors`). A missing name, or one that is not an exception
/// class, is an ImportError naming it.
pub fn resolve(module: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyType>>> {
    let mut classes = Vec::with_capacity(Raised::ALL.len());
    for (i, kind) in Raised::ALL.into_iter().enumerate() {
        debug_assert_eq!(kind as usize, i);
        let name = kind.class_name();
        let mismatch = |what: &str| {
            PyImportError::new_err(format!(
                "seedloop._engine raises seedloop.errors.{name}, which {what}: the compiled \
                 extension and the seedloop Python package do not match; reinstall seedloop"
            ))
        };
        let obj = module
            .getattr(name)
            .map_err(|_| mismatch("is not defined"))?;
        let cls = obj
            .downcast_into::<PyType>()
            .map_err(|_| mismatch("is not a class"))?;
        if !cls.is_subclass_of::<PyException>()? {
            return Err(mismatch("is not an Exception subclass"));
        }
        classes.push(cls.unbind());
    }
    Ok(classes)
}

/// Called from the `#[pymodule]` init: import `seedloop.errors` (plain
/// Python, it never imports the extension) and resolve every class, so that
/// a mismatch fails the import of the extension itself.
pub fn init(py: Python<'_>) -> PyResult<()> {
    let module = py.import("seedloop.errors").map_err(|e| {
        let err = PyImportError::new_err(format!(
            "seedloop._engine needs the module seedloop.errors, which failed to import: {e}"
        ));
        err.set_cause(py, Some(e));
        err
    })?;
    let classes = resolve(module.as_any())?;
    // If the module is initialised again, the first resolution stays: the
    // classes raised must be the ones `seedloop.errors` users already caught.
    let _ = CLASSES.set(py, classes);
    Ok(())
}

/// `seedloop.errors.<kind>(message)`, from the class resolved at import.
pub fn new(py: Python<'_>, kind: Raised, message: String) -> PyErr {
    match CLASSES.get(py) {
        Some(classes) => PyErr::from_type(classes[kind as usize].bind(py).clone(), (message,)),
        // Unreachable through the module (its init resolved the classes),
        // but never a panic across the FFI boundary.
        None => PyRuntimeError::new_err(format!(
            "seedloop._engine was not initialised ({}: {message})",
            kind.class_name()
        )),
    }
}

/// A time argument as f64: NaN and non-numbers are errors, +inf means never.
pub fn finite_or_inf(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    method: &str,
    what: &str,
) -> PyResult<f64> {
    let v: f64 = value.extract().map_err(|_| {
        new(
            py,
            Raised::InvalidDelay,
            format!(
                "{method}() {what} must be a number of seconds, got {}",
                value.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        )
    })?;
    if v.is_nan() {
        return Err(new(
            py,
            Raised::InvalidDelay,
            format!("{method}() {what} is NaN; pass a number of seconds"),
        ));
    }
    if v == f64::NEG_INFINITY {
        return Err(new(
            py,
            Raised::InvalidDelay,
            format!("{method}() {what} is -inf; pass a number of seconds"),
        ));
    }
    Ok(v)
}

/// Run the body of a method CPython calls directly (the hand-written
/// `METH_FASTCALL` methods, which no PyO3 trampoline wraps): its new
/// reference, or NULL with the error set. A panic in it (a broken invariant,
/// a loop re-entered from a destructor) becomes PyO3's `PanicException`, as
/// in PyO3's own methods: unwinding out of an `extern "C"` function would
/// abort the process.
pub(crate) fn ffi_call(
    py: Python<'_>,
    body: impl FnOnce() -> PyResult<*mut pyo3::ffi::PyObject>,
) -> *mut pyo3::ffi::PyObject {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(panic_error(payload.as_ref())));
    ffi_return(py, outcome)
}

/// What a method CPython calls directly returns: the new reference, or NULL
/// with the error set.
pub(crate) fn ffi_return(
    py: Python<'_>,
    outcome: PyResult<*mut pyo3::ffi::PyObject>,
) -> *mut pyo3::ffi::PyObject {
    outcome.unwrap_or_else(|err| {
        err.restore(py);
        std::ptr::null_mut()
    })
}

#[cold]
fn panic_error(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("panic from Rust code");
    pyo3::panic::PanicException::new_err(message.to_owned())
}
