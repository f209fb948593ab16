//! Python face of the engine's linearizability checker: built-in models run
//! without the GIL; a user's Python model is called back for every step.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use seedloop_engine::check::{self, Builtin, BuiltinOp, Counterexample, Kind, Model, Op};

/// (blocked id, end time, witness ids, involved ids)
type Found = (usize, u64, Vec<usize>, Vec<usize>);

/// (linearizable: None if the budget ran out, a linearization's ids if so,
/// the counterexample if not and asked for)
type Verdict = (Option<bool>, Option<Vec<usize>>, Option<Found>);

fn spans(calls: Vec<u64>, rets: Vec<Option<u64>>) -> Vec<Op> {
    calls
        .into_iter()
        .zip(rets)
        .enumerate()
        .map(|(id, (call, ret))| Op { id, call, ret })
        .collect()
}

fn found(c: Counterexample) -> Found {
    (c.blocked, c.end, c.witness, c.involved)
}

fn verdict<M: Model>(
    model: &mut M,
    ops: &[Op],
    counterexample: bool,
    budget: Option<u64>,
) -> Result<Verdict, M::Error> {
    match check::search(model, ops, budget.unwrap_or(u64::MAX))? {
        check::Verdict::Linearizable(order) => Ok((Some(true), Some(order), None)),
        check::Verdict::Not { reached } if counterexample => Ok((
            Some(false),
            None,
            Some(found(check::shortest_failing(model, ops, reached)?)),
        )),
        check::Verdict::Not { .. } => Ok((Some(false), None, None)),
        check::Verdict::GaveUp { .. } => Ok((None, None, None)),
    }
}

/// Check one part of a history against a built-in model. `ops[i]` is
/// `(code, a, b, elements)`: 0 write a, 1 read a, 2 cas a->b, 3 add a,
/// 4 read-set elements, 5 enqueue a, 6 dequeue a; values are interned ids
/// (0 is None). `calls[i]`/`rets[i]` are its times (`None`: unknown outcome).
#[pyfunction]
#[pyo3(signature = (kind, ops, calls, rets, counterexample=true, budget=None))]
pub fn check_builtin(
    py: Python<'_>,
    kind: &str,
    ops: Vec<(u8, i64, i64, Vec<i64>)>,
    calls: Vec<u64>,
    rets: Vec<Option<u64>>,
    counterexample: bool,
    budget: Option<u64>,
) -> PyResult<Verdict> {
    let kind = match kind {
        "register" => Kind::Register,
        "set" => Kind::Set,
        "queue" => Kind::Queue,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown built-in model kind {other:?}"
            )))
        }
    };
    if ops.len() != calls.len() || ops.len() != rets.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "ops, calls and rets must have the same length",
        ));
    }
    let mut decoded = Vec::with_capacity(ops.len());
    for (code, a, b, elements) in ops {
        decoded.push(match code {
            0 => BuiltinOp::Write(a),
            1 => BuiltinOp::Read(a),
            2 => BuiltinOp::Cas { old: a, new: b },
            3 => BuiltinOp::Add(a),
            4 => BuiltinOp::ReadSet(elements),
            5 => BuiltinOp::Enqueue(a),
            6 => BuiltinOp::Dequeue(a),
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown operation code {code}"
                )))
            }
        });
    }
    let spans = spans(calls, rets);
    let mut model = Builtin::new(kind, decoded);
    let result = py.allow_threads(|| verdict(&mut model, &spans, counterexample, budget));
    match result {
        Ok(v) => Ok(v),
        Err(never) => match never {},
    }
}

/// A Python model: `adapter.init()` and `adapter.step(state, op)` returning
/// `(ok, new_state)`; `ops[i]` is `(op as known, op as unknown)`.
struct PyModel<'py> {
    adapter: Bound<'py, PyAny>,
    ops: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
}

impl<'py> Model for PyModel<'py> {
    type State = Bound<'py, PyAny>;
    type Error = PyErr;

    fn init(&mut self) -> PyResult<Self::State> {
        self.adapter.call_method0("init")
    }

    fn step(
        &mut self,
        state: &Self::State,
        op: usize,
        definite: bool,
    ) -> PyResult<Option<Self::State>> {
        let (known, unknown) = &self.ops[op];
        let arg = if definite { known } else { unknown };
        let out = self.adapter.call_method1("step", (state, arg))?;
        let pair = out.downcast::<PyTuple>()?;
        let ok: bool = pair.get_item(0)?.is_truthy()?;
        Ok(if ok { Some(pair.get_item(1)?) } else { None })
    }

    fn fingerprint(&mut self, state: &Self::State) -> PyResult<u64> {
        // An unhashable state is hashed by its repr: equal states with
        // different reprs only miss the cache, they are never confused.
        let h = match state.hash() {
            Ok(h) => h,
            Err(_) => state.repr()?.hash()?,
        };
        Ok(h as u64)
    }

    fn same(&mut self, a: &Self::State, b: &Self::State) -> PyResult<bool> {
        a.eq(b)
    }
}

/// Check one part of a history against a Python model (see [`PyModel`]).
#[pyfunction]
#[pyo3(signature = (adapter, ops, calls, rets, counterexample=true, budget=None))]
pub fn check_python<'py>(
    adapter: Bound<'py, PyAny>,
    ops: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    calls: Vec<u64>,
    rets: Vec<Option<u64>>,
    counterexample: bool,
    budget: Option<u64>,
) -> PyResult<Verdict> {
    if ops.len() != calls.len() || ops.len() != rets.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "ops, calls and rets must have the same length",
        ));
    }
    let spans = spans(calls, rets);
    verdict(
        &mut PyModel { adapter, ops },
        &spans,
        counterexample,
        budget,
    )
}
