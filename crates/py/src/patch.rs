//! Batched swaps of module globals and attributes for the deterministic world (`seedloop._world.patching`).
//!
//! A run binds stand-ins in every module that holds a real clock, random or
//! I/O function, sets a few class attributes and mapping entries, and puts
//! everything back afterwards: about 130 bindings in 20 modules and 17
//! attributes on a plain interpreter. Done here in one call each way
//! (`patch_world`/`restore_world`) with CPython's dict and attribute calls
//! straight, instead of a Python loop (a lone `seedloop.run` pays both
//! directions once).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

/// Borrowed item `i` of a tuple or list known to have it (checked by the caller's length).
///
/// SAFETY: `seq` is a live tuple, `i` < its length; the GIL is held.
unsafe fn tuple_item(seq: *mut ffi::PyObject, i: ffi::Py_ssize_t) -> *mut ffi::PyObject {
    ffi::PyTuple_GetItem(seq, i)
}

/// `target.__dict__`'s entry for `name` (a new reference), or None if the
/// target has no own attribute of that name.
fn own_attr<'py>(
    target: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = target.py();
    let own = target.getattr(pyo3::intern!(py, "__dict__"))?;
    if let Ok(dict) = own.downcast::<PyDict>() {
        return dict.get_item(name);
    }
    // A class's mappingproxy: ask before reading, so a missing name raises nothing.
    if own.contains(name)? {
        return Ok(Some(own.get_item(name)?));
    }
    Ok(None)
}

/// Patch the process for runs:
///
/// - for each `(namespace, keys, expected, replacements)` of `batches` whose
///   keys are all bound to their expected objects (by identity), bind the
///   replacements and append `restores[i]` (`(namespace, keys, expected)`)
///   to `patched`; the positions of the batches left alone because a binding
///   changed are returned (the caller patches those one name at a time);
/// - for each `(target, name, value)` of `sets`: a dict target gets the item,
///   anything else the attribute (a class's through `setattr`, so its type
///   caches are invalidated); `(target, name, old, own)` is appended to
///   `undo` first (`own`: the target had its own entry, `old`).
///
/// What was done is recorded as it is done: if a call fails half-way,
/// `restore_world(undo, patched)` undoes exactly the part that was done.
#[pyfunction]
fn patch_world(
    batches: &Bound<'_, PyList>,
    restores: &Bound<'_, PyList>,
    patched: &Bound<'_, PyList>,
    sets: &Bound<'_, PyList>,
    undo: &Bound<'_, PyList>,
) -> PyResult<Vec<usize>> {
    let py = batches.py();
    let mut skipped = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let batch = batch.downcast_into::<PyTuple>()?;
        if batch.len() != 4 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a batch is 4 items",
            ));
        }
        let namespace = batch.get_item(0)?.downcast_into::<PyDict>()?;
        let keys = batch.get_item(1)?.downcast_into::<PyTuple>()?;
        let expected = batch.get_item(2)?.downcast_into::<PyTuple>()?;
        let replacements = batch.get_item(3)?.downcast_into::<PyTuple>()?;
        let n = keys.len();
        if expected.len() != n || replacements.len() != n {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a batch's keys, expected objects and replacements differ in length",
            ));
        }
        let ns = namespace.as_ptr();
        let (k, e, r) = (keys.as_ptr(), expected.as_ptr(), replacements.as_ptr());
        // SAFETY: the GIL is held; the tuples are alive (bound above) and
        // indexed below their checked length; PyDict_GetItemWithError returns
        // a borrowed reference (or NULL, with an error set only on failure).
        unsafe {
            let mut intact = true;
            for j in 0..n as ffi::Py_ssize_t {
                let value = ffi::PyDict_GetItemWithError(ns, tuple_item(k, j));
                if value.is_null() {
                    if let Some(err) = PyErr::take(py) {
                        return Err(err);
                    }
                    intact = false;
                    break;
                }
                if value != tuple_item(e, j) {
                    intact = false;
                    break;
                }
            }
            if !intact {
                skipped.push(i);
                continue;
            }
            for j in 0..n as ffi::Py_ssize_t {
                if ffi::PyDict_SetItem(ns, tuple_item(k, j), tuple_item(r, j)) < 0 {
                    // Put back the ones done, so the batch is all or nothing.
                    for done in 0..j {
                        ffi::PyDict_SetItem(ns, tuple_item(k, done), tuple_item(e, done));
                    }
                    return Err(PyErr::fetch(py));
                }
            }
        }
        patched.append(restores.get_item(i)?)?;
    }
    for entry in sets.iter() {
        let entry = entry.downcast_into::<PyTuple>()?;
        let target = entry.get_item(0)?;
        let name = entry.get_item(1)?;
        let value = entry.get_item(2)?;
        if let Ok(dict) = target.downcast::<PyDict>() {
            let old = dict.get_item(&name)?;
            let own = old.is_some();
            undo.append((&target, &name, old, own))?;
            dict.set_item(&name, &value)?;
        } else {
            let old = own_attr(&target, &name)?;
            let own = old.is_some();
            undo.append((&target, &name, old, own))?;
            target.setattr(name.downcast::<PyString>()?, &value)?;
        }
    }
    Ok(skipped)
}

/// Undo `patch_world` (and the caller's own `(target, name, old, own)`
/// entries): `undo` newest first (a dict target's item, anything else's
/// attribute, deleted where there was none), then every `(namespace, keys,
/// values)` batch of `patched` bound back. Both lists are emptied; on an
/// error, `undo` keeps the entries not restored yet (and `patched` all of its).
#[pyfunction]
fn restore_world(undo: &Bound<'_, PyList>, patched: &Bound<'_, PyList>) -> PyResult<()> {
    let py = undo.py();
    let mut left = undo.len();
    let undone = (|| -> PyResult<()> {
        while left > 0 {
            let entry = undo.get_item(left - 1)?.downcast_into::<PyTuple>()?;
            let target = entry.get_item(0)?;
            let name = entry.get_item(1)?;
            let own = entry.get_item(3)?.is_truthy()?;
            if let Ok(dict) = target.downcast::<PyDict>() {
                if own {
                    dict.set_item(&name, entry.get_item(2)?)?;
                } else {
                    dict.del_item(&name)?;
                }
            } else if own {
                target.setattr(name.downcast::<PyString>()?, entry.get_item(2)?)?;
            } else {
                target.delattr(name.downcast::<PyString>()?)?;
            }
            left -= 1;
        }
        Ok(())
    })();
    // One slice deletion instead of a pop per entry; what failed stays.
    undo.del_slice(left, usize::MAX)?;
    undone?;
    for batch in patched.iter() {
        let batch = batch.downcast_into::<PyTuple>()?;
        let namespace = batch.get_item(0)?.downcast_into::<PyDict>()?;
        let keys = batch.get_item(1)?.downcast_into::<PyTuple>()?;
        let values = batch.get_item(2)?.downcast_into::<PyTuple>()?;
        if values.len() != keys.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a batch's keys and values differ in length",
            ));
        }
        let (ns, k, v) = (namespace.as_ptr(), keys.as_ptr(), values.as_ptr());
        // SAFETY: the GIL is held; the tuples are alive and indexed below their length.
        unsafe {
            for j in 0..keys.len() as ffi::Py_ssize_t {
                if ffi::PyDict_SetItem(ns, tuple_item(k, j), tuple_item(v, j)) < 0 {
                    return Err(PyErr::fetch(py));
                }
            }
        }
    }
    patched.del_slice(0, usize::MAX)?;
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(patch_world, m)?)?;
    m.add_function(wrap_pyfunction!(restore_world, m)?)?;
    Ok(())
}
