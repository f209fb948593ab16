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

/// One module's bindings of real objects: `(key, real, stand-in)` each.
struct Batch {
    namespace: Py<PyDict>,
    keys: Vec<PyObject>,
    reals: Vec<PyObject>,
    fakes: Vec<PyObject>,
}

/// The module bindings a run swaps, built once per scan of `sys.modules`
/// (the patch table) and walked without Python objects in between: each
/// run reads the current binding and sets the new one through CPython's
/// dict calls, nothing else.
#[pyclass(module = "seedloop._engine", frozen)]
pub struct PatchTable {
    batches: Vec<Batch>,
    /// Positions of the batches the last `patch_world` swapped (restored and cleared by `restore_world`).
    patched: std::sync::Mutex<Vec<usize>>,
}

#[pymethods]
impl PatchTable {
    /// From `(namespace, keys, reals, stand_ins)` per module.
    #[new]
    fn new(batches: &Bound<'_, PyList>) -> PyResult<Self> {
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches.iter() {
            let (namespace, keys, reals, fakes): (
                Bound<'_, PyDict>,
                Vec<PyObject>,
                Vec<PyObject>,
                Vec<PyObject>,
            ) = batch.extract()?;
            if reals.len() != keys.len() || fakes.len() != keys.len() {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "a batch's keys, real objects and stand-ins differ in length",
                ));
            }
            out.push(Batch {
                namespace: namespace.unbind(),
                keys,
                reals,
                fakes,
            });
        }
        Ok(PatchTable {
            batches: out,
            patched: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn __len__(&self) -> usize {
        self.batches.len()
    }
}

impl PatchTable {
    fn patched(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.patched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Patch the process for runs:
///
/// - every module batch of `table` whose keys are all bound to their real
///   objects (by identity) gets the stand-ins (all or nothing per module);
///   the positions of the batches left alone because a binding changed are
///   returned (the caller patches those one name at a time);
/// - for each `(target, name, value)` of `sets`: a dict target gets the item,
///   anything else the attribute (a class's through `setattr`, so its type
///   caches are invalidated); `(target, name, old, own)` is appended to
///   `undo` first (`own`: the target had its own entry, `old`).
///
/// What was done is recorded as it is done: if a call fails half-way,
/// `restore_world(undo, table)` undoes exactly the part that was done.
#[pyfunction]
fn patch_world(
    table: &Bound<'_, PatchTable>,
    sets: &Bound<'_, PyList>,
    undo: &Bound<'_, PyList>,
) -> PyResult<Vec<usize>> {
    let py = table.py();
    let table = table.get();
    let mut skipped = Vec::new();
    for (i, batch) in table.batches.iter().enumerate() {
        let ns = batch.namespace.as_ptr();
        // SAFETY: the GIL is held; every pointer is owned by the table (alive);
        // PyDict_GetItemWithError returns a borrowed reference (or NULL, with
        // an error set only on failure).
        unsafe {
            let mut intact = true;
            for (key, real) in batch.keys.iter().zip(&batch.reals) {
                let value = ffi::PyDict_GetItemWithError(ns, key.as_ptr());
                if value.is_null() {
                    if let Some(err) = PyErr::take(py) {
                        return Err(err);
                    }
                    intact = false;
                    break;
                }
                if value != real.as_ptr() {
                    intact = false;
                    break;
                }
            }
            if !intact {
                skipped.push(i);
                continue;
            }
            for (j, (key, fake)) in batch.keys.iter().zip(&batch.fakes).enumerate() {
                if ffi::PyDict_SetItem(ns, key.as_ptr(), fake.as_ptr()) < 0 {
                    // Put back the ones done, so the batch is all or nothing.
                    for (key, real) in batch.keys.iter().zip(&batch.reals).take(j) {
                        ffi::PyDict_SetItem(ns, key.as_ptr(), real.as_ptr());
                    }
                    return Err(PyErr::fetch(py));
                }
            }
        }
        table.patched().push(i);
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
/// attribute, deleted where there was none), then the real objects bound
/// back in every module batch of `table` that it patched. `undo` is emptied;
/// on an error it keeps the entries not restored yet.
#[pyfunction]
fn restore_world(undo: &Bound<'_, PyList>, table: &Bound<'_, PatchTable>) -> PyResult<()> {
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
    let table = table.get();
    let done = std::mem::take(&mut *table.patched());
    for i in done {
        let batch = &table.batches[i];
        let ns = batch.namespace.as_ptr();
        // SAFETY: the GIL is held; every pointer is owned by the table (alive).
        unsafe {
            for (key, real) in batch.keys.iter().zip(&batch.reals) {
                if ffi::PyDict_SetItem(ns, key.as_ptr(), real.as_ptr()) < 0 {
                    return Err(PyErr::fetch(py));
                }
            }
        }
    }
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PatchTable>()?;
    m.add_function(wrap_pyfunction!(patch_world, m)?)?;
    m.add_function(wrap_pyfunction!(restore_world, m)?)?;
    Ok(())
}
