//! Sequential specifications the search checks a history against.

use std::convert::Infallible;

/// A sequential object: a state and a step function over the operations of
/// one history (named by their index, so the model owns their encoding).
///
/// `definite` is false for an operation whose outcome is unknown (Jepsen's
/// `info`, or one still pending): its output must not be checked, only its
/// effect applied. Declining such an operation is always safe, since the
/// search may also leave it out altogether (it never took effect).
pub trait Model {
    type State: Clone;
    type Error;
    fn init(&mut self) -> Result<Self::State, Self::Error>;
    /// The state after `op`, or None if `op` cannot happen in `state`.
    fn step(
        &mut self,
        state: &Self::State,
        op: usize,
        definite: bool,
    ) -> Result<Option<Self::State>, Self::Error>;
    /// A hash of `state` for the search's cache (equal states, equal hashes).
    fn fingerprint(&mut self, state: &Self::State) -> Result<u64, Self::Error>;
    fn same(&mut self, a: &Self::State, b: &Self::State) -> Result<bool, Self::Error>;
}

/// The value id of "nothing": a register before any write, an empty dequeue.
/// Values are interned to ids by the caller; only equality matters here.
pub const NIL: i64 = 0;

/// One operation of a built-in model, with its input and (if definite) output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuiltinOp {
    /// Register: set the value.
    Write(i64),
    /// Register: the value read (NIL before any write).
    Read(i64),
    /// Register: if the value is `old`, set it to `new`; a cas that did not
    /// apply is recorded as `fail` and never reaches the model.
    Cas { old: i64, new: i64 },
    /// Set: add an element.
    Add(i64),
    /// Set: the whole set read, as sorted distinct element ids.
    ReadSet(Vec<i64>),
    /// Queue: append at the back.
    Enqueue(i64),
    /// Queue: the value taken from the front (NIL: the queue was empty).
    Dequeue(i64),
}

/// Which object a [`Builtin`] model is; it decides the initial state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A register (also a cas-register, and one key of a kv): state `[value]`.
    Register,
    /// A set: state is its sorted distinct elements.
    Set,
    /// A FIFO queue: state is its elements, front first.
    Queue,
}

/// A built-in model over interned value ids; its state is a small vector.
#[derive(Clone, Debug)]
pub struct Builtin {
    pub kind: Kind,
    pub ops: Vec<BuiltinOp>,
}

impl Builtin {
    pub fn new(kind: Kind, ops: Vec<BuiltinOp>) -> Self {
        Builtin { kind, ops }
    }
}

impl Model for Builtin {
    type State = Vec<i64>;
    type Error = Infallible;

    fn init(&mut self) -> Result<Vec<i64>, Infallible> {
        Ok(match self.kind {
            Kind::Register => vec![NIL],
            Kind::Set | Kind::Queue => Vec::new(),
        })
    }

    fn step(
        &mut self,
        s: &Vec<i64>,
        op: usize,
        definite: bool,
    ) -> Result<Option<Vec<i64>>, Infallible> {
        let next = match &self.ops[op] {
            BuiltinOp::Write(v) => Some(vec![*v]),
            BuiltinOp::Read(v) => (!definite || s.first() == Some(v)).then(|| s.clone()),
            BuiltinOp::Cas { old, new } => (s.first() == Some(old)).then(|| vec![*new]),
            BuiltinOp::Add(v) => {
                let mut n = s.clone();
                if let Err(at) = n.binary_search(v) {
                    n.insert(at, *v);
                }
                Some(n)
            }
            BuiltinOp::ReadSet(seen) => (!definite || s == seen).then(|| s.clone()),
            BuiltinOp::Enqueue(v) => {
                let mut n = s.clone();
                n.push(*v);
                Some(n)
            }
            BuiltinOp::Dequeue(v) => match s.first() {
                // An unknown dequeue on a non-empty queue took the front.
                Some(front) if !definite || front == v => Some(s[1..].to_vec()),
                None if !definite || *v == NIL => Some(Vec::new()),
                _ => None,
            },
        };
        Ok(next)
    }

    fn fingerprint(&mut self, s: &Vec<i64>) -> Result<u64, Infallible> {
        // FNV-1a over the words: deterministic, and cheap for short states.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &w in s {
            h ^= w as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(h ^ s.len() as u64)
    }

    fn same(&mut self, a: &Vec<i64>, b: &Vec<i64>) -> Result<bool, Infallible> {
        Ok(a == b)
    }
}
