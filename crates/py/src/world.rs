//! Seeded randomness for the deterministic world (`seedloop._world`).
//!
//! Inside a run `os.urandom`, `secrets`, `uuid.uuid4`, `random.SystemRandom`
//! and unseeded `random.Random()` instances draw from these generators
//! instead of the operating system. Each source has its own named stream of
//! the run's seed (`derive_seed(seed, stream)` of the engine), so a new
//! `uuid4()` call never shifts what `random.Random()` gets, and the bytes are
//! the same on every platform and interpreter version.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use seedloop_engine::rng;

/// xoshiro256** on the named sub-stream `stream` of `seed`.
#[pyclass(module = "seedloop._engine", name = "Rng")]
pub struct Rng {
    inner: rng::Rng,
}

#[pymethods]
impl Rng {
    #[new]
    fn new(seed: u64, stream: &str) -> Self {
        Rng {
            inner: rng::Rng::stream(seed, stream),
        }
    }

    /// `n` pseudo-random bytes (each call starts on a fresh 64-bit word).
    fn bytes<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        PyBytes::new_with(py, n, |buf| {
            self.inner.fill_bytes(buf);
            Ok(())
        })
    }

    /// The next 64-bit output.
    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform integer in `0..n` (unbiased); 0 when `n` is 0 or 1.
    fn below(&mut self, n: u64) -> u64 {
        self.inner.below(n)
    }

    /// Uniform float in `[0, 1)`.
    fn random(&mut self) -> f64 {
        self.inner.unit_f64()
    }
}

/// `n` bytes from the start of the named stream `stream` of `seed`.
#[pyfunction]
fn random_bytes(py: Python<'_>, seed: u64, stream: &str, n: usize) -> PyResult<Py<PyBytes>> {
    let mut r = rng::Rng::stream(seed, stream);
    Ok(PyBytes::new_with(py, n, |buf| {
        r.fill_bytes(buf);
        Ok(())
    })?
    .unbind())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Rng>()?;
    m.add_function(wrap_pyfunction!(random_bytes, m)?)?;
    Ok(())
}
