//! The scheduler: ready entries, timers, virtual clock, strategy and trace.
//!
//! Generic over the payload `T` (the binding crate stores Python handles), so
//! every scheduling rule is testable with plain Rust values.

use std::collections::VecDeque;

use crate::clock::{TimerHeap, NEVER};
use crate::rng::Rng;
use crate::strategy::{Candidate, Strategy, StrategySpec};
use crate::trace::{StepRecord, Trace};

pub struct Entry<T> {
    pub seq: u64,
    pub owner: u32,
    pub timer_group: u64,
    pub payload: T,
}

/// What the start of a loop iteration found.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// `n` entries are ready: run `n` steps.
    Ready(usize),
    /// Nothing is ready and no live timer is pending.
    Idle,
}

pub struct Scheduler<T> {
    now_ns: u64,
    next_seq: u64,
    next_group: u64,
    ready: VecDeque<Entry<T>>,
    candidates: Vec<Candidate>,
    timers: TimerHeap<Entry<T>>,
    strategy: Strategy,
    spec: StrategySpec,
    rng: Rng,
    trace: Trace,
}

impl<T> Scheduler<T> {
    pub fn new(seed: u64, spec: StrategySpec) -> Self {
        let mut rng = Rng::stream(seed, "schedule");
        let strategy = Strategy::new(&spec, &mut rng);
        Scheduler {
            now_ns: 0,
            next_seq: 0,
            next_group: 0,
            ready: VecDeque::new(),
            candidates: Vec::new(),
            timers: TimerHeap::default(),
            strategy,
            spec,
            rng,
            trace: Trace::new(),
        }
    }

    pub fn spec(&self) -> &StrategySpec {
        &self.spec
    }

    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub fn timers_len(&self) -> usize {
        self.timers.len()
    }

    fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Schedule `payload` to run as soon as the strategy picks it. Returns its sequence number.
    pub fn push_ready(&mut self, owner: u32, payload: T) -> u64 {
        let seq = self.seq();
        self.ready.push_back(Entry {
            seq,
            owner,
            timer_group: 0,
            payload,
        });
        seq
    }

    /// Schedule `payload` at virtual time `deadline_ns` (clamped to now).
    pub fn push_timer(&mut self, deadline_ns: u64, owner: u32, payload: T) -> u64 {
        let seq = self.seq();
        let deadline = deadline_ns.max(self.now_ns);
        self.timers.push(
            deadline,
            seq,
            Entry {
                seq,
                owner,
                timer_group: 0,
                payload,
            },
        );
        seq
    }

    /// Start a loop iteration: if nothing is ready, jump the clock to the
    /// earliest live timer; then release every due timer into the ready list.
    /// `is_live` lets the caller drop cancelled timers without running them.
    /// With `may_advance == false` the clock stays put (the loop is stopping).
    pub fn begin_iteration(&mut self, may_advance: bool, is_live: impl Fn(&T) -> bool) -> Begin {
        // Cancelled timers at the top must not drag the clock forward.
        while let Some(top) = self.timers.peek() {
            if is_live(&top.payload) {
                break;
            }
            self.timers.pop();
        }
        if self.ready.is_empty() && may_advance {
            if let Some(deadline) = self.timers.peek_deadline() {
                if deadline != NEVER {
                    self.now_ns = self.now_ns.max(deadline);
                }
            }
        }
        self.release_due(&is_live);
        let n = self.ready.len();
        if n == 0 {
            return Begin::Idle;
        }
        self.strategy.begin_iteration(n);
        Begin::Ready(n)
    }

    fn release_due(&mut self, is_live: &impl Fn(&T) -> bool) {
        let mut group = 0;
        while let Some((_, _, mut e)) = self.timers.pop_due(self.now_ns) {
            if !is_live(&e.payload) {
                continue;
            }
            if group == 0 {
                self.next_group += 1;
                group = self.next_group;
            }
            e.timer_group = group;
            self.ready.push_back(e);
        }
    }

    /// Choose and remove the next entry, recording the decision.
    pub fn step(&mut self) -> Option<Entry<T>> {
        if self.ready.is_empty() {
            return None;
        }
        let index = if self.ready.len() == 1 && self.strategy.stateless_when_single() {
            0
        } else {
            self.candidates.clear();
            self.candidates.extend(self.ready.iter().map(|e| Candidate {
                owner: e.owner,
                timer_group: e.timer_group,
            }));
            let step = self.trace.len() as u64;
            self.strategy
                .choose(&self.candidates, step, &mut self.rng)
                .min(self.ready.len() - 1)
        };
        let entry = self.ready.remove(index)?;
        self.trace.record(StepRecord {
            seq: entry.seq,
            owner: entry.owner,
            choice: index as u32,
            now_ns: self.now_ns,
        });
        Some(entry)
    }

    /// Earliest pending timer deadline (live or not), for budget checks.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.peek_deadline()
    }

    /// Remove and return everything still scheduled (loop close).
    pub fn drain_all(&mut self) -> Vec<T> {
        let mut out: Vec<T> = self.ready.drain(..).map(|e| e.payload).collect();
        out.extend(self.timers.drain().map(|e| e.payload));
        out
    }

    /// Drop cancelled timers when they dominate the heap (bounded memory for
    /// code that arms and cancels timeouts in a loop).
    pub fn purge_timers(&mut self, is_live: impl Fn(&T) -> bool) {
        self.timers.retain(|e| is_live(&e.payload));
    }
}
