//! PyO3 bindings of seedloop: glue between Python handles and the engine.

mod capi;
mod check;
mod create_task;
mod disk;
mod errors;
mod gil_cell;
mod handle;
mod loop_core;
mod net;
mod patch;
mod shrink;
mod systematic;
mod task_hash;
mod task_ordinal;
mod time_attr;
mod world;

use pyo3::prelude::*;

/// Derive the seed of a named, independent sub-stream of `seed`.
#[pyfunction]
fn derive_seed(seed: u64, stream: &str) -> u64 {
    seedloop_engine::rng::derive_seed(seed, stream)
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // First: a seedloop.errors class missing here fails this import.
    errors::init(m.py())?;
    loop_core::register(m)?;
    world::register(m)?;
    net::register(m)?;
    disk::register(m)?;
    systematic::register(m)?;
    patch::register(m)?;
    task_hash::register(m)?;
    task_ordinal::register(m)?;
    time_attr::register(m)?;
    create_task::register(m)?;
    m.add_function(wrap_pyfunction!(derive_seed, m)?)?;
    m.add_class::<shrink::Shrinker>()?;
    m.add_function(wrap_pyfunction!(shrink::tape_complexity, m)?)?;
    m.add_function(wrap_pyfunction!(check::check_builtin, m)?)?;
    m.add_function(wrap_pyfunction!(check::check_python, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
