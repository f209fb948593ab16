//! seedloop's engine: everything that must be exact and fast, with no Python.
//!
//! - [`rng`]: the documented PRNG (xoshiro256** + splitmix64) and seed derivation
//! - [`clock`]: integer-nanosecond virtual time and the timer heap
//! - [`strategy`]: fifo, shuffle, random, pct, pos, strict, replay
//! - `ready_index`: the ready-entry indexes pct, pos and weighted choose through
//! - [`sched`]: the ready list + timers + strategy + trace, generic over payloads
//! - [`shrink`]: minimising a failing decision tape
//! - [`systematic`]: bounded depth-first enumeration of schedules with sleep sets
//! - [`trace`]: the step log, decision tape and fingerprint
//! - [`check`]: linearizability checking of recorded histories (Wing-Gong/Lowe)
//! - [`net`]: the simulated network (links, latency, partitions, streams, datagrams)
//! - [`disk`]: the simulated disks (page cache vs durable state, crashes, faults)

pub mod check;
pub mod clock;
pub mod disk;
pub mod net;
mod ready_index;
pub mod rng;
pub mod sched;
pub mod shrink;
pub mod strategy;
pub mod systematic;
pub mod trace;

pub use sched::{Begin, Entry, Scheduler};
pub use strategy::{StrategySpec, STRATEGIES};
