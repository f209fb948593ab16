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
    /// Whether `op` never changes the state (a read): once it can be placed
    /// it is placed at once, with no alternative tried, since any
    /// linearization placing it later can move it here (nothing unplaced
    /// precedes it in real time, and it changes no state in between).
    fn read_only(&self, _op: usize) -> bool {
        false
    }
    /// Whether every operation either changes nothing or steps the same
    /// whether its outcome is known or not. Then the point a failed search
    /// reached ends the shortest failing prefix; otherwise (a dequeue whose
    /// value is unknown takes whatever is in front) it is checked.
    fn outcome_blind(&self) -> bool {
        false
    }
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

/// A built-in model over interned value ids.
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

/// A built-in model's state: a register's value needs no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// A register's value.
    Value(i64),
    /// A set's sorted distinct elements, or a queue's elements, front first.
    Items(Vec<i64>),
}

impl State {
    fn items(&self) -> &[i64] {
        match self {
            State::Items(items) => items,
            State::Value(_) => &[],
        }
    }
}

impl Model for Builtin {
    type State = State;
    type Error = Infallible;

    fn init(&mut self) -> Result<State, Infallible> {
        Ok(match self.kind {
            Kind::Register => State::Value(NIL),
            Kind::Set | Kind::Queue => State::Items(Vec::new()),
        })
    }

    fn step(&mut self, s: &State, op: usize, definite: bool) -> Result<Option<State>, Infallible> {
        let value = match s {
            State::Value(v) => Some(*v),
            State::Items(_) => None,
        };
        let next = match &self.ops[op] {
            BuiltinOp::Write(v) => Some(State::Value(*v)),
            BuiltinOp::Read(v) => (!definite || value == Some(*v)).then(|| s.clone()),
            BuiltinOp::Cas { old, new } => (value == Some(*old)).then_some(State::Value(*new)),
            BuiltinOp::Add(v) => {
                let mut n = s.items().to_vec();
                if let Err(at) = n.binary_search(v) {
                    n.insert(at, *v);
                }
                Some(State::Items(n))
            }
            BuiltinOp::ReadSet(seen) => {
                (!definite || s.items() == seen.as_slice()).then(|| s.clone())
            }
            BuiltinOp::Enqueue(v) => {
                let mut n = s.items().to_vec();
                n.push(*v);
                Some(State::Items(n))
            }
            BuiltinOp::Dequeue(v) => match s.items().split_first() {
                // An unknown dequeue on a non-empty queue took the front.
                Some((front, rest)) if !definite || front == v => Some(State::Items(rest.to_vec())),
                None if !definite || *v == NIL => Some(s.clone()),
                _ => None,
            },
        };
        Ok(next)
    }

    fn fingerprint(&mut self, s: &State) -> Result<u64, Infallible> {
        // FNV-1a over the words: deterministic, and cheap for short states.
        let words = match s {
            State::Value(v) => std::slice::from_ref(v),
            State::Items(items) => items.as_slice(),
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &w in words {
            h ^= w as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(h ^ words.len() as u64)
    }

    fn same(&mut self, a: &State, b: &State) -> Result<bool, Infallible> {
        Ok(a == b)
    }

    fn outcome_blind(&self) -> bool {
        self.kind != Kind::Queue
    }

    fn read_only(&self, op: usize) -> bool {
        match &self.ops[op] {
            BuiltinOp::Read(_) | BuiltinOp::ReadSet(_) => true,
            BuiltinOp::Cas { old, new } => old == new,
            _ => false,
        }
    }
}
