//! Raising seedloop's own (Python-defined) error types from Rust.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Build `seedloop.errors.<name>(message)`, falling back to ValueError if the
/// Python package is not importable (the extension used on its own).
pub fn new(py: Python<'_>, name: &str, message: String) -> PyErr {
    match py
        .import("seedloop.errors")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1((message.clone(),)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyValueError::new_err(message),
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
            "InvalidDelayError",
            format!(
                "{method}() {what} must be a number of seconds, got {}",
                value.repr().map(|r| r.to_string()).unwrap_or_default()
            ),
        )
    })?;
    if v.is_nan() {
        return Err(new(
            py,
            "InvalidDelayError",
            format!("{method}() {what} is NaN; pass a number of seconds"),
        ));
    }
    if v == f64::NEG_INFINITY {
        return Err(new(
            py,
            "InvalidDelayError",
            format!("{method}() {what} is -inf; pass a number of seconds"),
        ));
    }
    Ok(v)
}
