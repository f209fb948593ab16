//! The scheduler: ready entries, timers, virtual clock, strategy and trace.
//!
//! Generic over the payload `T` (the binding crate stores Python handles), so
//! every scheduling rule is testable with plain Rust values.

use std::collections::VecDeque;

use crate::clock::{TimerHeap, NEVER};
use crate::rng::Rng;
use crate::strategy::{Candidate, Pick, Strategy, StrategySpec, TapeOverrun};
use crate::systematic::{Footprint, Walk};
use crate::trace::{StepRecord, Trace};

pub struct Entry<T> {
    pub seq: u64,
    pub owner: u32,
    pub timer_group: u64,
    /// What running it may touch (systematic exploration only; else Any).
    pub fp: Footprint,
    pub payload: T,
}

/// What the start of a loop iteration found.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// `n` entries are ready: run `n` steps.
    Ready(usize),
    /// Nothing is ready and no live timer is pending.
    Idle,
    /// Cancelled timers were taken off the heap: drop them
    /// (`take_discarded`) and begin again. A dropped payload's destructor
    /// may schedule a callback, which then runs before the clock moves on,
    /// as on a stock loop.
    Discarded,
}

/// Where `feasible`'s timing comes from: seeded draws, or a recorded tape.
enum TimingSource {
    Draw {
        rng: Rng,
        cpu_ns: u64,
        jitter_ns: u64,
        oversleep_ns: u64,
    },
    Tape {
        tape: Vec<u64>,
        pos: usize,
    },
}

/// Simulated CPU time per callback and timer lateness, with every value
/// used recorded in order (the timing tape).
struct Timing {
    source: TimingSource,
    used: Vec<u64>,
}

#[derive(Clone, Copy)]
enum TimingKind {
    Cpu,
    Jitter,
    Oversleep,
}

impl Timing {
    fn next(&mut self, kind: TimingKind) -> u64 {
        let v = match &mut self.source {
            TimingSource::Draw {
                rng,
                cpu_ns,
                jitter_ns,
                oversleep_ns,
            } => {
                let max = match kind {
                    TimingKind::Cpu => *cpu_ns,
                    TimingKind::Jitter => *jitter_ns,
                    TimingKind::Oversleep => *oversleep_ns,
                };
                rng.below(max.saturating_add(1))
            }
            TimingSource::Tape { tape, pos } => {
                // Past the tape's end no more time is added (stock timing).
                let v = tape.get(*pos).copied().unwrap_or(0);
                *pos += 1;
                v
            }
        };
        self.used.push(v);
        v
    }
}

/// The ready entries, in order. Strategies pick any index, so removal from
/// the middle is the common case: the order is kept as a deque of 4-byte
/// slot numbers (a removal shifts those, not the whole entries, about 2,700
/// instructions a step with 1,000 tasks ready), the entries in a slab.
/// When `stamped` (pct, pos, weighted), each entry gets a stamp, increasing in push
/// order (so in ready order): those strategies name entries by stamp, and an
/// entry's position is found by a binary search. The others skip the cost.
struct ReadyList<T> {
    order: VecDeque<u32>,
    slots: Vec<Option<Entry<T>>>,
    stamped: bool,
    /// By slot: the stamp of the entry in it (when `stamped`).
    stamps: Vec<u64>,
    next_stamp: u64,
    /// The entries pushed since the strategy last looked, still ready, in
    /// order (when `stamped`): all those strategies need to see of the list.
    fresh: Vec<Candidate>,
    free: Vec<u32>,
}

impl<T> ReadyList<T> {
    fn new(stamped: bool) -> Self {
        ReadyList {
            order: VecDeque::new(),
            slots: Vec::new(),
            stamped,
            stamps: Vec::new(),
            next_stamp: 0,
            fresh: Vec::new(),
            free: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    #[inline]
    fn push_back(&mut self, entry: Entry<T>) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 ready entries")
            }
        };
        if self.stamped {
            self.stamp(slot);
        }
        self.order.push_back(slot);
    }

    /// The strategy no longer names entries by stamp: stop stamping.
    fn stop_stamping(&mut self) {
        self.stamped = false;
        self.fresh.clear();
    }

    /// Stamp the entry just put in `slot`; it is fresh. Out of line: only
    /// they pay for it.
    #[inline(never)]
    fn stamp(&mut self, slot: u32) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let i = slot as usize;
        if i == self.stamps.len() {
            self.stamps.push(0);
        }
        self.stamps[i] = stamp;
        let e = self.entry(slot);
        let c = Candidate {
            owner: e.owner,
            timer_group: e.timer_group,
            stamp,
        };
        self.fresh.push(c);
    }

    /// The stamp of the entry at position `index` (stamped lists only).
    fn stamp_at(&self, index: usize) -> u64 {
        self.stamps[self.order[index] as usize]
    }

    /// The entry stamped `stamp` leaves the list: drop it from `fresh`.
    fn unfresh(&mut self, stamp: u64) {
        if self.fresh.first().is_some_and(|c| c.stamp <= stamp) {
            if let Ok(i) = self.fresh.binary_search_by_key(&stamp, |c| c.stamp) {
                self.fresh.remove(i);
            }
        }
    }

    /// The position of the entry stamped `stamp` (which must be ready).
    fn position_of(&self, stamp: u64) -> usize {
        // pct mostly runs one task on and on: its entry is the newest.
        let last = self.order.len() - 1;
        if self.stamps[self.order[last] as usize] == stamp {
            return last;
        }
        self.order
            .binary_search_by_key(&stamp, |&slot| self.stamps[slot as usize])
            .expect("a stamp a strategy picked is ready")
    }

    fn entry(&self, slot: u32) -> &Entry<T> {
        self.slots[slot as usize]
            .as_ref()
            .expect("a listed slot holds an entry")
    }

    /// The entry at position `index` (which must be in range).
    fn get(&self, index: usize) -> &Entry<T> {
        self.entry(self.order[index])
    }

    fn iter(&self) -> impl Iterator<Item = &Entry<T>> {
        self.order.iter().map(|&slot| self.entry(slot))
    }

    fn remove(&mut self, index: usize) -> Option<Entry<T>> {
        // The ends are the common picks (a lone entry, FIFO order): the
        // general removal's bookkeeping cost more than the rest of a take.
        let slot = if index == 0 {
            self.order.pop_front()?
        } else {
            self.order.remove(index)?
        };
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// Every entry, in order, leaving the list empty.
    fn drain_all(&mut self) -> impl Iterator<Item = Entry<T>> + '_ {
        self.free.clear();
        let slots = &mut self.slots;
        let out: Vec<Entry<T>> = self
            .order
            .drain(..)
            .map(|slot| {
                slots[slot as usize]
                    .take()
                    .expect("a listed slot holds an entry")
            })
            .collect();
        slots.clear();
        self.stamps.clear();
        self.fresh.clear();
        out.into_iter()
    }
}

pub struct Scheduler<T> {
    now_ns: u64,
    timing: Option<Timing>,
    /// A callback has run since the last CPU-time charge.
    ran_since_charge: bool,
    next_seq: u64,
    next_group: u64,
    ready: ReadyList<T>,
    /// The strategy (pct, pos, weighted) keeps its own index of the ready entries.
    indexed: bool,
    candidates: Vec<Candidate>,
    /// `(seq, footprint, owner)` of the ready entries, for a systematic walk.
    walk_view: Vec<(u64, Footprint, u32)>,
    timers: TimerHeap<Entry<T>>,
    strategy: Strategy,
    spec: StrategySpec,
    rng: Rng,
    trace: Trace,
    /// Cancelled timers taken off the heap, for the caller to drop after its
    /// critical section: dropping a payload may run code that calls back.
    discarded: Vec<T>,
}

impl<T> Scheduler<T> {
    pub fn new(seed: u64, spec: StrategySpec) -> Self {
        let mut rng = Rng::stream(seed, "schedule");
        let strategy = Strategy::new(&spec, &mut rng);
        let indexed = strategy.indexes_ready();
        let timing = match spec {
            StrategySpec::Feasible {
                cpu_ns,
                jitter_ns,
                oversleep_ns,
            } => Some(Timing {
                // Its own stream: timing draws never perturb other choices.
                source: TimingSource::Draw {
                    rng: Rng::stream(seed, "timing"),
                    cpu_ns,
                    jitter_ns,
                    oversleep_ns,
                },
                used: Vec::new(),
            }),
            _ => None,
        };
        Scheduler {
            now_ns: 0,
            timing,
            ran_since_charge: false,
            next_seq: 0,
            next_group: 0,
            ready: ReadyList::new(indexed),
            indexed,
            candidates: Vec::new(),
            walk_view: Vec::new(),
            timers: TimerHeap::default(),
            strategy,
            spec,
            rng,
            trace: Trace::new(),
            discarded: Vec::new(),
        }
    }

    /// Replay recorded timing (a `feasible` run's `timing_tape`) under this
    /// scheduler's strategy, normally `fifo`. Call before the first step.
    pub fn set_timing_tape(&mut self, tape: Vec<u64>) {
        self.timing = Some(Timing {
            source: TimingSource::Tape { tape, pos: 0 },
            used: Vec::new(),
        });
    }

    /// Every timing value used so far, in order (empty without timing).
    /// Given to `set_timing_tape` under `fifo`, it replays the run.
    pub fn timing_tape(&self) -> &[u64] {
        self.timing.as_ref().map_or(&[], |t| &t.used)
    }

    /// Charge the CPU time of the callback that just ran (timing only).
    fn charge_cpu(&mut self) {
        if !self.ran_since_charge {
            return;
        }
        self.ran_since_charge = false;
        if let Some(t) = self.timing.as_mut() {
            let ns = t.next(TimingKind::Cpu);
            self.now_ns = self.now_ns.saturating_add(ns).min(NEVER - 1);
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

    /// Keep the full step log (32 bytes a step) as well as the compact tape.
    pub fn keep_steps(&mut self, keep: bool) {
        self.trace.keep_steps(keep);
    }

    /// The first replayed tape entry that was past the ready list (and clamped).
    pub fn tape_overrun(&self) -> Option<TapeOverrun> {
        self.strategy.tape_overrun()
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
        self.push_ready_fp(owner, Footprint::Any, payload)
    }

    /// `push_ready` with what running the entry may touch (systematic exploration).
    pub fn push_ready_fp(&mut self, owner: u32, fp: Footprint, payload: T) -> u64 {
        let seq = self.seq();
        self.ready.push_back(Entry {
            seq,
            owner,
            timer_group: 0,
            fp,
            payload,
        });
        seq
    }

    /// Schedule `payload` at virtual time `deadline_ns` (clamped to now).
    pub fn push_timer(&mut self, deadline_ns: u64, owner: u32, payload: T) -> u64 {
        self.push_timer_fp(deadline_ns, owner, Footprint::Any, payload)
    }

    /// `push_timer` with what running the entry may touch (systematic exploration).
    pub fn push_timer_fp(
        &mut self,
        deadline_ns: u64,
        owner: u32,
        fp: Footprint,
        payload: T,
    ) -> u64 {
        let seq = self.seq();
        let mut deadline = deadline_ns.max(self.now_ns);
        if deadline != NEVER {
            if let Some(t) = self.timing.as_mut() {
                // Each timer fires up to the tolerance late (a sleep lasts a
                // little longer, by its own amount): near-ties break either way.
                deadline = deadline
                    .saturating_add(t.next(TimingKind::Jitter))
                    .min(NEVER - 1);
            }
        }
        self.timers.push(
            deadline,
            seq,
            Entry {
                seq,
                owner,
                timer_group: 0,
                fp,
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
        self.charge_cpu();
        // Cancelled timers at the top must not drag the clock forward.
        while let Some(top) = self.timers.peek() {
            if is_live(&top.payload) {
                break;
            }
            if let Some((_, _, dead)) = self.timers.pop() {
                self.discarded.push(dead.payload);
            }
        }
        if self.ready.is_empty() && may_advance {
            if !self.discarded.is_empty() {
                return Begin::Discarded;
            }
            if let Some(deadline) = self.timers.peek_deadline() {
                if deadline != NEVER && deadline > self.now_ns {
                    // A real loop's wait for its next timer returns late by
                    // a varying amount; timers still run in deadline order.
                    let late = match self.timing.as_mut() {
                        Some(t) => t.next(TimingKind::Oversleep),
                        None => 0,
                    };
                    self.now_ns = deadline.saturating_add(late).min(NEVER - 1);
                }
            }
        }
        self.release_due(&is_live);
        if !self.discarded.is_empty() {
            return Begin::Discarded;
        }
        let n = self.ready.len();
        if n == 0 {
            return Begin::Idle;
        }
        self.strategy.begin_iteration(n);
        Begin::Ready(n)
    }

    fn release_due(&mut self, is_live: &impl Fn(&T) -> bool) {
        self.release_due_at(self.now_ns, is_live);
    }

    /// Release every live timer due by `at_ns` into the ready list without
    /// moving the clock: a loop whose `time()` is patched (tests freezing or
    /// moving the clock by hand) decides which timers are due by that time,
    /// as the stock loop does. Call before `begin_iteration`.
    pub fn release_due_at(&mut self, at_ns: u64, is_live: &impl Fn(&T) -> bool) {
        // Only timers with the same deadline share a group: timers released
        // together but due at different instants keep their deadline order.
        let mut group = 0;
        let mut group_deadline = NEVER;
        while let Some((deadline, _, mut e)) = self.timers.pop_due(at_ns) {
            if !is_live(&e.payload) {
                self.discarded.push(e.payload);
                continue;
            }
            if group == 0 || deadline != group_deadline {
                self.next_group += 1;
                group = self.next_group;
                group_deadline = deadline;
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
        // The previous callback's CPU time has passed before this one starts.
        self.charge_cpu();
        let index = if self.indexed {
            self.choose_indexed()
        } else {
            self.choose()
        };
        self.take(index)
    }

    /// Remove the ready entry at `index` (a choice made outside the engine:
    /// a guided search's learnt policy), recording it as the step's decision.
    /// An index past the ready list takes the newest entry.
    pub fn step_chosen(&mut self, index: usize) -> Option<Entry<T>> {
        if self.ready.is_empty() {
            return None;
        }
        self.charge_cpu();
        let index = index.min(self.ready.len() - 1);
        if self.indexed {
            self.unindex(index);
        }
        self.take(index)
    }

    /// The payloads ready to run, in ready-list order (what a choice indexes).
    pub fn ready_payloads(&self) -> impl Iterator<Item = &T> {
        self.ready.iter().map(|e| &e.payload)
    }

    /// The strategy's choice among the (non-empty) ready list.
    fn choose(&mut self) -> usize {
        if let Strategy::Systematic(walk) = &mut self.strategy {
            self.walk_view.clear();
            self.walk_view
                .extend(self.ready.iter().map(|e| (e.seq, e.fp, e.owner)));
            walk.choose(&self.walk_view)
        } else if self.ready.len() == 1 && self.strategy.stateless_when_single() {
            0
        } else {
            self.candidates.clear();
            if self.strategy.needs_candidates() {
                self.candidates.extend(self.ready.iter().map(|e| Candidate {
                    owner: e.owner,
                    timer_group: e.timer_group,
                    stamp: 0, // only the indexed strategies use stamps
                }));
            }
            let step = self.trace.len() as u64;
            self.strategy
                .choose(self.ready.len(), &self.candidates, step, &mut self.rng)
                .min(self.ready.len() - 1)
        }
    }

    /// pct, pos and weighted (instead of `choose`) keep their own index of the ready
    /// entries: they only need to see the entries pushed since their last
    /// choice; the chosen entry leaves the index. Out of line, so the other
    /// strategies' path through `step` stays as lean as before.
    #[inline(never)]
    fn choose_indexed(&mut self) -> usize {
        let step = self.trace.len() as u64;
        let n = self.ready.len();
        let pick = self.strategy.choose_indexed(
            n,
            &self.ready.fresh,
            self.ready.next_stamp,
            step,
            &mut self.rng,
        );
        self.ready.fresh.clear();
        let index = match pick {
            Pick::Index(i) => i.min(n - 1),
            Pick::Stamp(stamp) => self.ready.position_of(stamp),
        };
        self.unindex(index);
        if self.strategy.done_indexing(step) {
            // No stamps or index from here on (about 150 instructions a step).
            self.indexed = false;
            self.ready.stop_stamping();
        }
        index
    }

    /// The entry at `index` is about to leave the ready list: the indexed strategies
    /// drop it from their index. Out of line: only they pay for it.
    #[inline(never)]
    fn unindex(&mut self, index: usize) {
        if index < self.ready.len() {
            let stamp = self.ready.stamp_at(index);
            self.ready.unfresh(stamp);
            self.strategy.taken(self.ready.get(index).owner, stamp);
        }
    }

    /// Remove the entry at `index` and record the step (the previous
    /// callback's CPU time already charged).
    fn take(&mut self, index: usize) -> Option<Entry<T>> {
        self.ran_since_charge = self.timing.is_some();
        let strict = index == 0 || {
            let group = self.ready.get(0).timer_group;
            group != 0
                && self
                    .ready
                    .iter()
                    .take(index + 1)
                    .all(|e| e.timer_group == group)
        };
        let entry = self.ready.remove(index)?;
        self.trace.record(StepRecord {
            seq: entry.seq,
            owner: entry.owner,
            choice: index as u32,
            now_ns: self.now_ns,
            strict,
        });
        Some(entry)
    }

    /// Did the systematic walk of this run stop (its schedule need not be
    /// explored further)? Steps after that are clean-up.
    pub fn walk_stopped(&self) -> bool {
        matches!(&self.strategy, Strategy::Systematic(w) if w.stop().is_some())
    }

    /// The systematic walk of this run (once), for the explorer.
    pub fn take_walk(&mut self) -> Option<Walk> {
        match std::mem::replace(&mut self.strategy, Strategy::Fifo) {
            Strategy::Systematic(walk) => Some(walk),
            other => {
                self.strategy = other;
                None
            }
        }
    }

    /// Move the clock forward by `ns` without running anything: virtual time
    /// that passed while a callback blocked (`time.sleep` inside a run). Due
    /// timers are released at the next iteration, in their usual order.
    pub fn advance(&mut self, ns: u64) {
        self.now_ns = self.now_ns.saturating_add(ns).min(NEVER - 1);
    }

    /// Earliest pending timer deadline (live or not), for budget checks.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.peek_deadline()
    }

    /// Remove and return everything still scheduled (loop close).
    pub fn drain_all(&mut self) -> Vec<T> {
        let mut out: Vec<T> = self.ready.drain_all().map(|e| e.payload).collect();
        self.strategy.cleared(self.ready.next_stamp);
        out.extend(self.timers.drain().map(|e| e.payload));
        out.append(&mut self.discarded);
        out
    }

    /// Drop cancelled timers when they dominate the heap (bounded memory for
    /// code that arms and cancels timeouts in a loop).
    pub fn purge_timers(&mut self, is_live: impl Fn(&T) -> bool) {
        let dead = self.timers.remove_unless(|e| is_live(&e.payload));
        self.discarded.extend(dead.into_iter().map(|e| e.payload));
    }

    /// The cancelled timers taken off the heap since the last call (see
    /// `begin_iteration`, `release_due_at`, `purge_timers`): drop them once
    /// nothing of the scheduler is borrowed.
    pub fn take_discarded(&mut self) -> Vec<T> {
        std::mem::take(&mut self.discarded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a loop of "tasks" that each re-schedule themselves `rounds` times;
    /// return the order of (task, round) steps.
    fn simulate(
        spec: StrategySpec,
        seed: u64,
        tasks: u32,
        rounds: u32,
    ) -> (Vec<(u32, u32)>, Vec<u32>) {
        let mut s: Scheduler<(u32, u32)> = Scheduler::new(seed, spec);
        for t in 1..=tasks {
            s.push_ready(t, (t, 0));
        }
        let mut order = Vec::new();
        while let Begin::Ready(n) = s.begin_iteration(true, |_| true) {
            for _ in 0..n {
                let e = s.step().unwrap();
                let (t, r) = e.payload;
                order.push((t, r));
                if r + 1 < rounds {
                    s.push_ready(t, (t, r + 1));
                }
            }
        }
        (order, s.trace().tape())
    }

    #[test]
    fn release_due_at_a_later_time_keeps_the_clock() {
        let mut s: Scheduler<&str> = Scheduler::new(0, StrategySpec::Fifo);
        s.push_timer(5_000, 1, "at5");
        s.push_timer(9_000, 1, "at9");
        s.push_ready(2, "busy");
        s.release_due_at(6_000, &|_| true);
        assert_eq!(s.begin_iteration(true, |_| true), Begin::Ready(2));
        assert_eq!(s.now_ns(), 0);
        assert_eq!(s.step().unwrap().payload, "busy");
        assert_eq!(s.step().unwrap().payload, "at5");
        assert_eq!(s.timers_len(), 1);
    }

    #[test]
    fn fifo_is_round_robin_like_asyncio() {
        let (order, tape) = simulate(StrategySpec::Fifo, 1, 3, 2);
        assert_eq!(order, vec![(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1)]);
        assert!(tape.iter().all(|&c| c == 0));
    }

    #[test]
    fn shuffle_permutes_each_batch_and_is_seeded() {
        let (a, _) = simulate(StrategySpec::Shuffle, 7, 5, 3);
        let (b, _) = simulate(StrategySpec::Shuffle, 7, 5, 3);
        assert_eq!(a, b);
        // Batches never mix: every round-0 step precedes every round-1 step.
        let first_r1 = a.iter().position(|&(_, r)| r == 1).unwrap();
        assert!(a[..first_r1].iter().all(|&(_, r)| r == 0));
        assert_eq!(first_r1, 5);
        let distinct: std::collections::BTreeSet<Vec<(u32, u32)>> = (0..50)
            .map(|seed| simulate(StrategySpec::Shuffle, seed, 5, 3).0)
            .collect();
        assert!(distinct.len() > 40, "{}", distinct.len());
    }

    #[test]
    fn replaying_a_tape_reproduces_any_strategy() {
        for spec in [
            StrategySpec::Shuffle,
            StrategySpec::Random,
            StrategySpec::Pos,
            StrategySpec::Pct {
                depth: 3,
                steps: 20,
            },
            StrategySpec::Auto,
            StrategySpec::Weighted {
                spread: 100,
                redraw: 8,
            },
        ] {
            let (order, tape) = simulate(spec.clone(), 3, 4, 5);
            let (again, _) = simulate(StrategySpec::Replay { tape }, 999, 4, 5);
            assert_eq!(order, again, "{spec:?}");
        }
    }

    #[test]
    fn a_tape_entry_past_the_ready_list_is_clamped_and_reported() {
        let mut s: Scheduler<u32> = Scheduler::new(0, StrategySpec::Replay { tape: vec![1, 5] });
        for i in 0..2 {
            s.push_ready(1, i);
        }
        assert_eq!(s.begin_iteration(true, |_| true), Begin::Ready(2));
        assert_eq!(s.step().map(|e| e.payload), Some(1));
        assert_eq!(s.tape_overrun(), None);
        assert_eq!(s.step().map(|e| e.payload), Some(0)); // 5 of 1 ready: clamped
        assert_eq!(
            s.tape_overrun(),
            Some(TapeOverrun {
                step: 1,
                choice: 5,
                ready: 1
            })
        );
        assert_eq!(s.trace().tape(), vec![1, 0]);
    }

    #[test]
    fn empty_tape_replays_fifo() {
        let fifo = simulate(StrategySpec::Fifo, 0, 3, 3).0;
        assert_eq!(
            simulate(StrategySpec::Replay { tape: vec![] }, 0, 3, 3).0,
            fifo
        );
    }

    #[test]
    fn clock_jumps_to_the_earliest_live_timer_and_ties_keep_order() {
        let mut s: Scheduler<(&str, bool)> = Scheduler::new(0, StrategySpec::Fifo);
        s.push_timer(5_000, 1, ("cancelled", false));
        s.push_timer(10_000, 1, ("a", true));
        s.push_timer(10_000, 2, ("b", true));
        // The cancelled timer first comes off, before the clock moves.
        assert_eq!(s.begin_iteration(true, |p| p.1), Begin::Discarded);
        assert_eq!(s.now_ns(), 0);
        assert_eq!(s.take_discarded(), vec![("cancelled", false)]);
        assert_eq!(s.begin_iteration(true, |p| p.1), Begin::Ready(2));
        assert_eq!(s.now_ns(), 10_000);
        assert_eq!(s.step().unwrap().payload.0, "a");
        assert_eq!(s.step().unwrap().payload.0, "b");
        assert_eq!(s.begin_iteration(true, |p| p.1), Begin::Idle);
    }

    #[test]
    fn strict_only_reorders_timers_due_together() {
        for seed in 0..20 {
            let mut s: Scheduler<&str> = Scheduler::new(seed, StrategySpec::Strict);
            s.push_ready(1, "soon1");
            s.push_ready(2, "soon2");
            assert_eq!(s.begin_iteration(true, |_| true), Begin::Ready(2));
            assert_eq!(s.step().unwrap().payload, "soon1");
            assert_eq!(s.step().unwrap().payload, "soon2");
            s.push_timer(100, 1, "t1");
            s.push_timer(100, 2, "t2");
            s.push_timer(100, 3, "t3");
            assert_eq!(s.begin_iteration(true, |_| true), Begin::Ready(3));
            for _ in 0..3 {
                s.step().unwrap();
            }
            assert!(s.trace().all_strict());
        }
        // ...and across seeds the timer ties do get reordered.
        let firsts: std::collections::BTreeSet<&str> = (0..30)
            .map(|seed| {
                let mut s: Scheduler<&str> = Scheduler::new(seed, StrategySpec::Strict);
                s.push_timer(100, 1, "t1");
                s.push_timer(100, 2, "t2");
                s.begin_iteration(true, |_| true);
                s.step().unwrap().payload
            })
            .collect();
        assert_eq!(firsts.len(), 2);
    }

    #[test]
    fn pct_runs_the_highest_priority_task_until_a_change_point() {
        // With depth 1 (no change points), one task runs all its steps first.
        let (order, _) = simulate(
            StrategySpec::Pct {
                depth: 1,
                steps: 100,
            },
            4,
            3,
            4,
        );
        let first = order[0].0;
        assert!(order[..4].iter().all(|&(t, _)| t == first), "{order:?}");
        // With change points, across seeds, preemptions do happen.
        let preempted = (0..20).any(|seed| {
            let (o, _) = simulate(
                StrategySpec::Pct {
                    depth: 3,
                    steps: 12,
                },
                seed,
                3,
                4,
            );
            o[..4].iter().any(|&(t, _)| t != o[0].0)
        });
        assert!(preempted);
    }

    #[test]
    fn advance_moves_the_clock_and_releases_due_timers() {
        let mut s: Scheduler<u32> = Scheduler::new(1, StrategySpec::Fifo);
        s.push_timer(5_000, 0, 7);
        s.advance(3_000);
        assert_eq!(s.now_ns(), 3_000);
        s.advance(4_000);
        assert_eq!(s.begin_iteration(true, |_| true), Begin::Ready(1));
        assert_eq!(s.now_ns(), 7_000, "a late timer runs at the advanced time");
        assert_eq!(s.step().map(|e| e.payload), Some(7));
        s.advance(u64::MAX);
        assert_eq!(s.now_ns(), NEVER - 1);
    }

    /// Tasks that alternate a timer sleep and a few ready steps; returns the
    /// (task, round, now) of every step and the scheduler's timing tape.
    fn timed(
        spec: StrategySpec,
        seed: u64,
        tape: Option<Vec<u64>>,
    ) -> (Vec<(u32, u32, u64)>, Vec<u64>) {
        let mut s: Scheduler<(u32, u32)> = Scheduler::new(seed, spec);
        if let Some(tape) = tape {
            s.set_timing_tape(tape);
        }
        for t in 1..=3 {
            s.push_ready(t, (t, 0));
        }
        let mut out = Vec::new();
        while let Begin::Ready(n) = s.begin_iteration(true, |_| true) {
            for _ in 0..n {
                let (t, r) = s.step().unwrap().payload;
                out.push((t, r, s.now_ns()));
                if r < 12 {
                    if r % 3 == 2 {
                        let at = s.now_ns() + 1_000_000 * u64::from(t);
                        s.push_timer(at, t, (t, r + 1));
                    } else {
                        s.push_ready(t, (t, r + 1));
                    }
                }
            }
        }
        (out, s.timing_tape().to_vec())
    }

    #[test]
    fn feasible_keeps_stock_order_and_varies_only_time() {
        let spec = StrategySpec::parse("feasible").unwrap();
        let (fifo, _) = timed(StrategySpec::Fifo, 0, None);
        let mut orders = std::collections::BTreeSet::new();
        for seed in 0..30 {
            let mut s: Scheduler<u32> = Scheduler::new(seed, spec.clone());
            s.push_ready(1, 1);
            s.push_ready(2, 2);
            // Deadlines further apart than the jitter tolerance.
            s.push_timer(10_000_000, 3, 3);
            s.push_timer(20_000_000, 4, 4);
            let mut ran = Vec::new();
            while let Begin::Ready(n) = s.begin_iteration(true, |_| true) {
                for _ in 0..n {
                    ran.push(s.step().unwrap().payload);
                }
            }
            // call_soon FIFO, timers in deadline order, whatever the timing.
            assert_eq!(ran, vec![1, 2, 3, 4]);
            assert!(s.trace().all_strict());
            let (run, _) = timed(spec.clone(), seed, None);
            assert!(
                run.iter().zip(&fifo).all(|(a, b)| a.2 >= b.2),
                "time only moves later"
            );
            orders.insert(run.iter().map(|&(t, r, _)| (t, r)).collect::<Vec<_>>());
        }
        // CPU time and lateness shift later deadlines: interleavings vary.
        assert!(orders.len() > 1, "{}", orders.len());
    }

    #[test]
    fn a_feasible_run_replays_under_fifo_from_its_timing_tape() {
        let spec = StrategySpec::parse("feasible").unwrap();
        for seed in 0..20 {
            let (run, tape) = timed(spec.clone(), seed, None);
            assert!(!tape.is_empty());
            let (again, used) = timed(StrategySpec::Fifo, 12_345, Some(tape.clone()));
            assert_eq!(run, again, "seed {seed}");
            assert_eq!(used, tape);
        }
    }

    #[test]
    fn timers_released_together_keep_deadline_order_under_strict() {
        for seed in 0..20 {
            let mut s: Scheduler<&str> = Scheduler::new(seed, StrategySpec::Strict);
            s.push_timer(100, 1, "early");
            s.push_timer(200, 2, "late");
            s.advance(500);
            assert_eq!(s.begin_iteration(true, |_| true), Begin::Ready(2));
            assert_eq!(s.step().unwrap().payload, "early");
        }
    }

    #[test]
    fn auto_is_a_function_of_the_seed_and_lets_tasks_run_ahead() {
        for seed in 0..20 {
            assert_eq!(
                simulate(StrategySpec::Auto, seed, 4, 6),
                simulate(StrategySpec::Auto, seed, 4, 6)
            );
        }
        // Some seed runs one task two steps ahead of another (lockstep never does).
        let ahead = (0..50).any(|seed| {
            let (order, _) = simulate(StrategySpec::Auto, seed, 3, 6);
            order.windows(2).any(|w| w[0].0 == w[1].0)
        });
        assert!(ahead);
    }

    /// Random pushes (ready and timers, several entries per task, the loop's
    /// own entries), steps, `step_chosen` takes and clears under `spec`;
    /// every step's choice and the draws must match a scan of the whole ready
    /// list. Returns the steps run, None when the strategy indexes nothing
    /// (auto's random part).
    fn indexed_matches_a_scan(
        spec: &StrategySpec,
        seed: u64,
        owners: u64,
        ops: usize,
    ) -> Option<usize> {
        use crate::strategy::scan_reference::Scan;
        let mut s: Scheduler<(u32, u32)> = Scheduler::new(seed, spec.clone());
        let mut ref_rng = Rng::stream(seed, "schedule");
        let mut scan = Scan::of(&Strategy::new(spec, &mut ref_rng))?;
        let mut dice = Rng::new(seed ^ 0xfeed);
        let mut id = 0;
        let mut push = |s: &mut Scheduler<(u32, u32)>, dice: &mut Rng, owner: u32| {
            id += 1;
            if dice.below(4) == 0 {
                let at = s.now_ns() + dice.below(3) * 1_000;
                s.push_timer(at, owner, (id, owner));
            } else {
                s.push_ready(owner, (id, owner));
            }
        };
        for _ in 0..dice.below(40) {
            let owner = dice.below(owners) as u32;
            push(&mut s, &mut dice, owner);
        }
        for _ in 0..ops {
            match dice.below(20) {
                0..=5 => {
                    let owner = dice.below(owners) as u32;
                    push(&mut s, &mut dice, owner);
                }
                6 => {
                    let owner = dice.below(owners) as u32;
                    for _ in 0..3 {
                        push(&mut s, &mut dice, owner);
                    }
                }
                7..=16 if s.ready_len() > 0 => {
                    let ready: Vec<(u32, u32)> = s.ready_payloads().copied().collect();
                    let cands: Vec<Candidate> = ready
                        .iter()
                        .map(|&(_, owner)| Candidate {
                            owner,
                            timer_group: 0,
                            stamp: 0,
                        })
                        .collect();
                    let step = s.trace().len() as u64;
                    let want = scan.choose(&cands, step, &mut ref_rng);
                    assert_eq!(
                        s.step().unwrap().payload,
                        ready[want],
                        "{spec:?} seed {seed}"
                    );
                }
                17 | 18 if s.ready_len() > 0 => {
                    let i = dice.below(s.ready_len() as u64) as usize;
                    s.step_chosen(i);
                }
                19 => {
                    let _ = s.begin_iteration(true, |_| true);
                }
                _ => {}
            }
            if dice.below(500) == 0 {
                s.drain_all();
            }
        }
        assert_eq!(s.rng.next_u64(), ref_rng.next_u64(), "{spec:?} seed {seed}");
        Some(s.trace().len())
    }

    #[test]
    fn pct_pos_and_weighted_choose_and_draw_as_a_scan_of_the_ready_list() {
        let specs = [
            // auto's weighted part, resets after one in 2 steps (several
            // owners redrawn while they still have entries) and at every
            // step, narrow spreads (equal weights) and weights of 1 only.
            StrategySpec::Weighted {
                spread: 100,
                redraw: 8,
            },
            StrategySpec::Weighted {
                spread: 3,
                redraw: 2,
            },
            StrategySpec::Weighted {
                spread: 1_000,
                redraw: 1,
            },
            StrategySpec::Weighted {
                spread: 1,
                redraw: 0,
            },
            StrategySpec::Pos,
            StrategySpec::Auto,
            StrategySpec::parse("pct").unwrap(),
            StrategySpec::Pct {
                depth: 1,
                steps: 50,
            },
            StrategySpec::Pct {
                depth: 5,
                steps: 40,
            },
            StrategySpec::Pct {
                depth: 10,
                steps: 8,
            },
        ];
        let mut checked = 0;
        for spec in &specs {
            for seed in 0..40 {
                let owners = [2, 5, 30][seed as usize % 3];
                checked += usize::from(indexed_matches_a_scan(spec, seed, owners, 600).is_some());
            }
        }
        assert!(checked > 330, "{checked}");
        // Past pct's fallback (10,000 steps) choices are uniform.
        let pct = StrategySpec::Pct {
            depth: 3,
            steps: 100,
        };
        assert!(indexed_matches_a_scan(&pct, 1, 8, 30_000).unwrap() > 10_000);
        // Many entries ready at once, long runs: the weighted index packs its
        // places many times over.
        let weighted = StrategySpec::Weighted {
            spread: 100,
            redraw: 8,
        };
        for seed in 0..4 {
            assert!(indexed_matches_a_scan(&weighted, seed, 300, 20_000).unwrap() > 5_000);
        }
    }
}
