//! Linearizability checking of recorded histories: the Wing-Gong/Lowe search
//! over operations with call and return times, against a sequential model.
//!
//! - [`model`]: the [`Model`] trait and the built-in models (register,
//!   set, queue; a cas-register and each key of a kv are registers)
//! - [`wgl`]: the search ([`check`]) and the smallest failing prefix
//!   ([`smallest_failing_prefix`]) that a counterexample is read from
//!
//! Splitting a history into independent parts (P-compositionality, e.g. one
//! part per key of a kv) is the caller's job: each part is checked alone.

pub mod model;
pub mod wgl;

pub use model::{Builtin, BuiltinOp, Kind, Model, State, NIL};
pub use wgl::{
    check, search, shortest_failing, smallest_failing_prefix, Counterexample, Op, Verdict,
};
