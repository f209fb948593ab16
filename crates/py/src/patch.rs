//! Batched swaps of module globals for the deterministic world (`seedloop._world.patching`).
//!
//! A run binds stand-ins in every module that holds a real clock, random or
//! I/O function, and binds the real objects back afterwards: about 80
//! bindings in 15 modules on a plain interpreter. Done here in one call each
//! way instead of a Python loop over the modules (a lone `seedloop.run` pays
//! both directions once).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// For each `(namespace, keys, expected, replacements)` whose keys are all
/// bound to their expected objects (by identity), bind the replacements.
/// Returns the positions of the batches left alone because a binding changed
/// (the caller patches those one name at a time).
#[pyfunction]
fn swap_bindings(batches: &Bound<'_, PyList>) -> PyResult<Vec<usize>> {
    let mut skipped = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let batch = batch.downcast_into::<PyTuple>()?;
        let namespace = batch.get_item(0)?.downcast_into::<PyDict>()?;
        let keys = batch.get_item(1)?.downcast_into::<PyTuple>()?;
        let expected = batch.get_item(2)?.downcast_into::<PyTuple>()?;
        let replacements = batch.get_item(3)?.downcast_into::<PyTuple>()?;
        let mut intact = true;
        for (key, want) in keys.iter().zip(expected.iter()) {
            match namespace.get_item(&key)? {
                Some(value) if value.is(&want) => {}
                _ => {
                    intact = false;
                    break;
                }
            }
        }
        if !intact {
            skipped.push(i);
            continue;
        }
        for (key, value) in keys.iter().zip(replacements.iter()) {
            namespace.set_item(key, value)?;
        }
    }
    Ok(skipped)
}

/// For each `(namespace, keys, values)`, bind every value to its key.
#[pyfunction]
fn set_bindings(batches: &Bound<'_, PyList>) -> PyResult<()> {
    for batch in batches.iter() {
        let batch = batch.downcast_into::<PyTuple>()?;
        let namespace = batch.get_item(0)?.downcast_into::<PyDict>()?;
        let keys = batch.get_item(1)?.downcast_into::<PyTuple>()?;
        let values = batch.get_item(2)?.downcast_into::<PyTuple>()?;
        for (key, value) in keys.iter().zip(values.iter()) {
            namespace.set_item(key, value)?;
        }
    }
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(swap_bindings, m)?)?;
    m.add_function(wrap_pyfunction!(set_bindings, m)?)?;
    Ok(())
}
