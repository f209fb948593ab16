//! Python face of the engine's tape shrinker.

use pyo3::prelude::*;
use seedloop_engine::shrink::{complexity, Shrinker as EngineShrinker};
use std::sync::Mutex;

/// Proposes ever simpler decision tapes; the caller replays each one and
/// reports whether the failure persists.
#[pyclass(frozen, module = "seedloop._engine")]
pub struct Shrinker {
    inner: Mutex<EngineShrinker>,
}

#[pymethods]
impl Shrinker {
    #[new]
    #[pyo3(signature = (tape, budget=500))]
    fn new(tape: Vec<u32>, budget: u64) -> Self {
        Shrinker {
            inner: Mutex::new(EngineShrinker::new(tape, budget)),
        }
    }

    fn next_candidate(&self) -> Option<Vec<u32>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_candidate()
    }

    #[pyo3(signature = (still_fails, actual=None))]
    fn report(&self, still_fails: bool, actual: Option<Vec<u32>>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report(still_fails, actual)
    }

    fn best(&self) -> Vec<u32> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .best()
            .to_vec()
    }

    fn runs(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).runs()
    }
}

/// `(non-zero choices, length, sum)` of a tape: smaller is simpler.
#[pyfunction]
pub fn tape_complexity(tape: Vec<u32>) -> (usize, usize, u64) {
    complexity(&tape)
}
