//! Strategies: how the next ready entry is chosen.
//!
//! Every strategy answers one question per step: which index, among the ready
//! entries listed oldest first, runs next. Index 0 everywhere is exactly stock
//! asyncio's order, so the recorded indices (the decision tape) replay any
//! strategy and shrink towards asyncio's own schedule.

use crate::ready_index::{Priorities, WeightIndex};
use crate::rng::Rng;
use crate::systematic::{Plan, Walk};

/// What a strategy may look at for one ready entry.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// Task ordinal the entry belongs to (0 = the loop itself).
    pub owner: u32,
    /// Non-zero when the entry was released from the timer heap; entries
    /// released together (same deadline, same release) share the value.
    pub timer_group: u64,
    /// The entry's place in ready order (increasing; names it for pct, pos
    /// and weighted, the strategies that index the ready entries; 0 for the
    /// others).
    pub stamp: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StrategySpec {
    /// Stock asyncio order (with virtual time): a deterministic baseline.
    Fifo,
    /// Per loop iteration, a seeded permutation of the ready batch.
    Shuffle,
    /// Per step, a uniformly chosen ready entry.
    Random,
    /// Probabilistic concurrency testing with bug depth `depth`: random task
    /// priorities and `depth - 1` change points, each placed at a step of one
    /// task (a uniformly chosen task, at a task-local step drawn up to
    /// `steps / tasks`, `steps` being the estimated run length).
    Pct { depth: u32, steps: u64 },
    /// Partial-order sampling: the task that just ran draws a fresh priority.
    Pos,
    /// asyncio's documented FIFO order for call_soon; only timers that become
    /// due together are reordered (schedules a real loop can also produce).
    Strict,
    /// Feasible: stock asyncio order (every decision is index 0); only
    /// timing varies, as on a real machine: each callback spends a seeded CPU
    /// time of up to `cpu_ns`, each timer fires up to `jitter_ns` late (its
    /// own amount), and a loop waiting for its next timer wakes up to
    /// `oversleep_ns` late. The timing draws are recorded and replay the run
    /// under `fifo` (see `Scheduler::timing_tape`).
    Feasible {
        cpu_ns: u64,
        jitter_ns: u64,
        oversleep_ns: u64,
    },
    /// Weighted random (a part of `auto`, no name of its own): each task
    /// draws a log-uniform weight in 1..=`spread`; each step picks a ready
    /// entry with probability proportional to its task's weight, and the
    /// task that ran redraws its weight with probability 1/`redraw`. Some
    /// tasks run far ahead of others for a while, which lockstep never does.
    Weighted { spread: u64, redraw: u64 },
    /// The default portfolio: the seed alone selects one of pos, random or
    /// weighted random for the whole run, so a seed reproduces by itself.
    Auto,
    /// Follow a recorded decision tape; past its end, index 0 (FIFO).
    Replay { tape: Vec<u32> },
    /// One run of a systematic exploration (see `systematic`): chosen by
    /// passing the explorer's plan, never by name.
    Systematic(Plan),
}

/// The strategy names a run may choose, in the order users are shown them.
/// The one list: `parse` accepts exactly these, and the extension exports it
/// as `seedloop._engine.STRATEGIES` for the Python side ("replay" is not here:
/// it is chosen by passing a tape, never by name).
pub const STRATEGIES: [&str; 8] = [
    "shuffle", "random", "pct", "pos", "strict", "auto", "feasible", "fifo",
];

impl StrategySpec {
    /// The strategy called `name` (pct with its default parameters), or the
    /// message to show for an unknown name, listing [`STRATEGIES`].
    pub fn parse(name: &str) -> Result<StrategySpec, String> {
        let unknown = || {
            format!(
                "unknown strategy {name:?}; choose one of: {}",
                STRATEGIES.join(", ")
            )
        };
        // The list is the gate, so a name can only be accepted once it is
        // listed (and exported); the match below builds the spec.
        if !STRATEGIES.contains(&name) {
            return Err(unknown());
        }
        Ok(match name {
            "fifo" => StrategySpec::Fifo,
            "shuffle" => StrategySpec::Shuffle,
            "random" => StrategySpec::Random,
            "pct" => StrategySpec::Pct {
                depth: 3,
                steps: 1_000,
            },
            "pos" => StrategySpec::Pos,
            "strict" => StrategySpec::Strict,
            "auto" => StrategySpec::Auto,
            "feasible" => StrategySpec::Feasible {
                cpu_ns: FEASIBLE_CPU_NS,
                jitter_ns: FEASIBLE_JITTER_NS,
                oversleep_ns: FEASIBLE_OVERSLEEP_NS,
            },
            _ => return Err(unknown()),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            StrategySpec::Fifo => "fifo",
            StrategySpec::Shuffle => "shuffle",
            StrategySpec::Random => "random",
            StrategySpec::Pct { .. } => "pct",
            StrategySpec::Pos => "pos",
            StrategySpec::Strict => "strict",
            StrategySpec::Auto => "auto",
            StrategySpec::Weighted { .. } => "weighted",
            StrategySpec::Feasible { .. } => "feasible",
            StrategySpec::Replay { .. } => "replay",
            StrategySpec::Systematic(_) => "systematic",
        }
    }
}

/// `feasible`'s default CPU time per callback: at most 200 us.
pub const FEASIBLE_CPU_NS: u64 = 200_000;
/// `feasible`'s default per-timer lateness: at most 1 ms.
pub const FEASIBLE_JITTER_NS: u64 = 1_000_000;
/// `feasible`'s default loop wake-up lateness: at most 1 ms.
pub const FEASIBLE_OVERSLEEP_NS: u64 = 1_000_000;

/// What a strategy chose: a position in the ready list, or (pct, pos and weighted,
/// which index the ready entries themselves) the stamp of the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    Index(usize),
    Stamp(u64),
}

/// One PCT change point: demote `target` when it is about to run its
/// `at`-th step (1-based). Targets are chosen by reservoir sampling over the
/// tasks as they appear, so each task is equally likely without knowing in
/// advance how many there will be.
#[derive(Debug, Clone)]
pub(crate) struct ChangePoint {
    target: Option<u32>,
    at: u64,
    fired: bool,
}

/// Task-local step for a change point, in `1..=k`: half the time uniform (a
/// late window in a long task is as likely as any), half log-uniform (early
/// steps, where most windows of short tasks are, are more likely).
fn local_step(rng: &mut Rng, k: u64) -> u64 {
    let k = k.max(1);
    if rng.below(2) == 0 {
        return 1 + rng.below(k);
    }
    let v = (rng.unit_f64() * (k as f64 + 1.0).ln()).exp().floor() as u64;
    v.clamp(1, k)
}

/// Portfolio of `auto`: (share of seeds, strategy). Chosen by measurement:
/// per-seed failure rates of each candidate on bench/corpus over seeds
/// 20000.. (not the 0..999 of the published table), and the mix minimising
/// the expected total seeds to failure (see bench/RESULTS.md). PCT parts
/// did not lower it; weighted random did.
const AUTO_PORTFOLIO: &[(u64, AutoPart)] = &[
    (1, AutoPart::Pos),
    (1, AutoPart::Random),
    (2, AutoPart::Weighted),
];

#[derive(Clone, Copy, Debug)]
enum AutoPart {
    Pos,
    Random,
    Weighted,
}

/// `auto`'s weighted random: weights spread over 1..=100, a task redraws
/// its weight after one in 8 of its steps.
const AUTO_WEIGHT_SPREAD: u64 = 100;
const AUTO_WEIGHT_REDRAW: u64 = 8;

#[derive(Debug)]
pub(crate) enum Strategy {
    Fifo,
    Shuffle {
        batch_left: usize,
    },
    Random,
    Pct {
        depth: u32,
        change_points: Vec<ChangePoint>,
        /// The estimated run length k.
        k: u64,
        /// Steps run so far by each task (by ordinal).
        local_steps: Vec<u64>,
        /// Tasks seen so far (reservoir sampling of change-point targets).
        tasks_seen: u64,
        fallback_after: u64,
        prios: Priorities,
    },
    Pos {
        prios: Priorities,
    },
    Weighted {
        spread: u64,
        redraw: u64,
        index: WeightIndex,
    },
    Strict,
    Replay {
        tape: Vec<u32>,
        /// The first step whose entry was past the ready list (clamped).
        overrun: Option<TapeOverrun>,
    },
    /// Chosen by the scheduler itself (it needs the entries' sequence
    /// numbers and footprints): see `Scheduler::step`.
    Systematic(Walk),
}

/// A tape entry that named a ready callback that did not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapeOverrun {
    pub step: u64,
    pub choice: u32,
    pub ready: usize,
}

impl Strategy {
    pub(crate) fn new(spec: &StrategySpec, rng: &mut Rng) -> Strategy {
        match spec {
            StrategySpec::Fifo | StrategySpec::Feasible { .. } => Strategy::Fifo,
            StrategySpec::Shuffle => Strategy::Shuffle { batch_left: 0 },
            StrategySpec::Random => Strategy::Random,
            StrategySpec::Pct { depth, steps } => Strategy::pct(*depth, *steps),
            StrategySpec::Auto => {
                let total: u64 = AUTO_PORTFOLIO.iter().map(|(w, _)| w).sum();
                let mut draw = rng.below(total);
                let mut part = AUTO_PORTFOLIO[0].1;
                for (w, p) in AUTO_PORTFOLIO {
                    if draw < *w {
                        part = *p;
                        break;
                    }
                    draw -= w;
                }
                match part {
                    AutoPart::Pos => Strategy::Pos {
                        prios: Priorities::default(),
                    },
                    AutoPart::Random => Strategy::Random,
                    AutoPart::Weighted => Strategy::Weighted {
                        spread: AUTO_WEIGHT_SPREAD,
                        redraw: AUTO_WEIGHT_REDRAW,
                        index: WeightIndex::default(),
                    },
                }
            }
            StrategySpec::Pos => Strategy::Pos {
                prios: Priorities::default(),
            },
            StrategySpec::Strict => Strategy::Strict,
            StrategySpec::Weighted { spread, redraw } => Strategy::Weighted {
                spread: *spread,
                redraw: *redraw,
                index: WeightIndex::default(),
            },
            StrategySpec::Replay { tape } => Strategy::Replay {
                tape: tape.clone(),
                overrun: None,
            },
            StrategySpec::Systematic(plan) => Strategy::Systematic(Walk::new(plan.clone())),
        }
    }

    /// The first clamped tape entry, when replaying a tape.
    pub(crate) fn tape_overrun(&self) -> Option<TapeOverrun> {
        match self {
            Strategy::Replay { overrun, .. } => *overrun,
            _ => None,
        }
    }

    fn pct(depth: u32, steps: u64) -> Strategy {
        let k = steps.max(1);
        let depth = depth.max(1);
        let change_points = (1..depth)
            .map(|_| ChangePoint {
                target: None,
                at: 0,
                fired: false,
            })
            .collect();
        Strategy::Pct {
            depth,
            change_points,
            k,
            local_steps: Vec::new(),
            tasks_seen: 0,
            // Past this many steps PCT's strict priorities could starve
            // a polling loop forever: switch to random choices.
            fallback_after: k.saturating_mul(4).max(10_000),
            prios: Priorities::default(),
        }
    }

    /// With a single ready entry, may the scheduler skip asking (no state to update)?
    pub(crate) fn stateless_when_single(&self) -> bool {
        matches!(self, Strategy::Fifo | Strategy::Random | Strategy::Strict)
    }

    /// A new loop iteration starts with `n` entries ready.
    pub(crate) fn begin_iteration(&mut self, n: usize) {
        if let Strategy::Shuffle { batch_left } = self {
            *batch_left = n;
        }
    }

    /// Does `choose` look at the ready entries themselves (not just their count)?
    pub(crate) fn needs_candidates(&self) -> bool {
        matches!(self, Strategy::Strict)
    }

    /// Does it (pct, pos, weighted) index the ready entries itself, choosing
    /// through `choose_indexed`?
    pub(crate) fn indexes_ready(&self) -> bool {
        matches!(
            self,
            Strategy::Pct { .. } | Strategy::Pos { .. } | Strategy::Weighted { .. }
        )
    }

    /// Has it (pct) stopped indexing for good, from the step after `step`?
    /// pct past its fallback draws uniformly, like `random`: the scheduler
    /// then stops stamping entries and chooses through `choose`.
    pub(crate) fn done_indexing(&self, step: u64) -> bool {
        matches!(self, Strategy::Pct { fallback_after, .. } if step >= *fallback_after)
    }

    /// The ready entry `stamp` of `owner` left the ready list (chosen by
    /// anyone: a guided search's `step_chosen` too).
    #[inline]
    pub(crate) fn taken(&mut self, owner: u32, stamp: u64) {
        match self {
            Strategy::Pct { prios, .. } | Strategy::Pos { prios } => prios.remove(owner, stamp),
            Strategy::Weighted { index, .. } => index.remove(owner, stamp),
            _ => {}
        }
    }

    /// The ready list was emptied; the next entry will be stamped `next_stamp`.
    #[inline]
    pub(crate) fn cleared(&mut self, next_stamp: u64) {
        match self {
            Strategy::Pct { prios, .. } | Strategy::Pos { prios } => prios.clear_index(next_stamp),
            Strategy::Weighted { index, .. } => index.clear(next_stamp),
            _ => {}
        }
    }

    /// pct, pos and weighted: choose among `n` ready entries at `step`, given `new`,
    /// the entries pushed since the previous call and still ready (oldest
    /// first), and `next_stamp`, the stamp the next pushed entry will get
    /// (every older entry has been in some `new`). Makes the
    /// same draws, in the same order, as a scan of the whole ready list that
    /// draws each unknown priority at its task's first entry.
    pub(crate) fn choose_indexed(
        &mut self,
        n: usize,
        new: &[Candidate],
        next_stamp: u64,
        step: u64,
        rng: &mut Rng,
    ) -> Pick {
        debug_assert!(n > 0);
        match self {
            Strategy::Pct {
                depth,
                change_points,
                k,
                local_steps,
                tasks_seen,
                fallback_after,
                prios,
            } => {
                if step >= *fallback_after {
                    // Nothing is indexed from here on (and never needed again).
                    return Pick::Index(rng.below(n as u64) as usize);
                }
                let floor = u64::from(*depth);
                // New tasks enter every change point's reservoir (in ready
                // order, which is deterministic), before any priority draw.
                // Every entry older than `new` was scanned by an earlier
                // choice, so its task is known.
                let mut loop_entry = false;
                for c in new {
                    if c.owner == 0 {
                        loop_entry = true;
                    } else if !prios.is_known(c.owner) {
                        *tasks_seen += 1;
                        for cp in change_points.iter_mut() {
                            if !cp.fired && rng.below(*tasks_seen) == 0 {
                                cp.target = Some(c.owner);
                                cp.at = 0; // drawn when the target first runs
                            }
                        }
                        prios.get_or_draw(c.owner, rng, floor);
                    }
                }
                if loop_entry {
                    // The loop's own priority is drawn after every new
                    // task's (as when the pick scan first met it).
                    prios.get_or_draw(0, rng, floor);
                }
                // The only ready entry (a callback chain, one task running
                // alone): every pick below can only return it, so it is not
                // indexed, and taking it skips the index too (as `Pos`
                // does). The draws are the same either way.
                let single = n == 1 && new.len() == 1;
                let (mut stamp, mut owner) = if single {
                    prios.settle();
                    prios.since = new[0].stamp;
                    (new[0].stamp, new[0].owner)
                } else {
                    for c in new {
                        prios.add(c.owner, c.stamp);
                    }
                    prios.since = next_stamp;
                    prios.settle();
                    prios.pick()
                };
                // A task may hit several change points at once: each demotes
                // it further, and the next pick sees every demotion.
                loop {
                    let i = owner as usize;
                    if i >= local_steps.len() {
                        local_steps.resize(i + 1, 0);
                    }
                    let next_local = local_steps[i] + 1;
                    for cp in change_points.iter_mut() {
                        if !cp.fired && cp.at == 0 && cp.target == Some(owner) {
                            // A task's expected length is k / (tasks seen by
                            // its first step): the local step is drawn in it.
                            cp.at = local_step(rng, (*k / (*tasks_seen).max(1)).max(2));
                        }
                    }
                    let hit = change_points.iter().position(|cp| {
                        !cp.fired && cp.target == Some(owner) && cp.at == next_local
                    });
                    let Some(pos) = hit else {
                        local_steps[i] = next_local;
                        break;
                    };
                    // The i-th change point to fire demotes the task below
                    // every initial priority (and below earlier demotions),
                    // whichever change point it is: any assignment of the
                    // change points to the tasks a bug needs then works.
                    let fired = change_points.iter().filter(|cp| cp.fired).count();
                    change_points[pos].fired = true;
                    let demoted = floor - 1 - fired as u64;
                    prios.set(owner, demoted.max(1));
                    if !single {
                        (stamp, owner) = prios.pick();
                    }
                }
                Pick::Stamp(stamp)
            }
            Strategy::Pos { prios } => {
                if n == 1 && new.len() == 1 {
                    // The only ready entry: what indexing, picking and taking
                    // it would draw, without the index (as weighted does).
                    let c = new[0];
                    prios.get_or_draw(c.owner, rng, 0);
                    prios.since = c.stamp;
                    prios.set(c.owner, 1 + (rng.next_u64() >> 2));
                    return Pick::Stamp(c.stamp);
                }
                // Unknown priorities are drawn in ready order, floor 0.
                for c in new {
                    prios.get_or_draw(c.owner, rng, 0);
                    prios.add(c.owner, c.stamp);
                }
                prios.since = next_stamp;
                prios.settle();
                let (stamp, owner) = prios.pick();
                prios.set(owner, 1 + (rng.next_u64() >> 2));
                Pick::Stamp(stamp)
            }
            Strategy::Weighted {
                spread,
                redraw,
                index,
            } => {
                // Unknown weights are drawn in the order of their task's
                // first ready entry. The task whose weight the previous
                // choice reset is the only one with older entries and no
                // weight: when it still has some, they come before every
                // new entry, so its weight is drawn first.
                if let Some(owner) = index.reset.take() {
                    if index.has_entries(owner) {
                        index.weight_or_draw(owner, *spread, rng);
                        index.reweigh(owner);
                    }
                }
                if n == 1 && new.len() == 1 {
                    // The only ready entry, not indexed yet: the same draws as
                    // indexing it, picking it and taking it out again (a chain
                    // of callbacks steps like this), without the index. It is
                    // taken at once, so it stays "not indexed" (since = stamp).
                    let c = new[0];
                    let w = index.weight_or_draw(c.owner, *spread, rng);
                    rng.below(w);
                    index.since = c.stamp;
                    if *redraw > 0 && rng.below(*redraw) == 0 {
                        index.weights[c.owner as usize] = 0;
                        index.reset = Some(c.owner);
                    }
                    return Pick::Stamp(c.stamp);
                }
                for c in new {
                    index.weight_or_draw(c.owner, *spread, rng);
                    index.add(c.owner, c.stamp);
                }
                index.since = next_stamp;
                let (stamp, owner) = index.find(rng.below(index.total));
                if *redraw > 0 && rng.below(*redraw) == 0 {
                    // The task that runs draws a fresh weight next time.
                    index.weights[owner as usize] = 0;
                    index.reset = Some(owner);
                }
                Pick::Stamp(stamp)
            }
            // Every other strategy chooses through `choose`; never reached.
            _ => Pick::Index(0),
        }
    }

    /// Choose the index (among `n` ready entries, oldest first) of the entry to
    /// run at `step`. `ready` describes them when `needs_candidates()`.
    pub(crate) fn choose(
        &mut self,
        n: usize,
        ready: &[Candidate],
        step: u64,
        rng: &mut Rng,
    ) -> usize {
        debug_assert!(n > 0);
        match self {
            Strategy::Fifo => 0,
            Strategy::Shuffle { batch_left } => {
                // The batch is always the oldest `batch_left` entries: picking
                // uniformly among them, one by one, is a Fisher-Yates shuffle.
                let span = (*batch_left).clamp(1, n);
                *batch_left = span - 1;
                rng.below(span as u64) as usize
            }
            Strategy::Random => rng.below(n as u64) as usize,
            // pct past its fallback (the scheduler stopped indexing): the
            // draw its `choose_indexed` makes there.
            Strategy::Pct { .. } => rng.below(n as u64) as usize,
            // They choose through `choose_indexed`; never reached.
            Strategy::Pos { .. } | Strategy::Weighted { .. } => 0,
            Strategy::Strict => {
                let group = ready[0].timer_group;
                if group == 0 {
                    return 0;
                }
                let tied = ready.iter().take_while(|c| c.timer_group == group).count();
                rng.below(tied as u64) as usize
            }
            Strategy::Replay { tape, overrun } => {
                let want = tape.get(step as usize).copied().unwrap_or(0);
                if want as usize >= n && overrun.is_none() {
                    *overrun = Some(TapeOverrun {
                        step,
                        choice: want,
                        ready: n,
                    });
                }
                (want as usize).min(n - 1)
            }
            // The scheduler asks the walk directly; never reached.
            Strategy::Systematic(_) => 0,
        }
    }
}

/// The pct, pos and weighted choice as first written: a scan of every ready
/// entry per step, drawing unknown priorities (weights) as it meets them. Tests check
/// the indexed choice against it, decision by decision and draw by draw.
#[cfg(test)]
pub(crate) mod scan_reference {
    use super::{local_step, Candidate, ChangePoint, Strategy};
    use crate::rng::Rng;

    #[derive(Default)]
    pub(crate) struct Prios(Vec<u64>);

    impl Prios {
        fn is_known(&self, owner: u32) -> bool {
            self.0.get(owner as usize).is_some_and(|&v| v != 0)
        }

        fn get_or_draw(&mut self, owner: u32, rng: &mut Rng, floor: u64) -> u64 {
            let i = owner as usize;
            if i >= self.0.len() {
                self.0.resize(i + 1, 0);
            }
            if self.0[i] == 0 {
                self.0[i] = floor + 1 + (rng.next_u64() >> 2);
            }
            self.0[i]
        }

        fn set(&mut self, owner: u32, value: u64) {
            let i = owner as usize;
            if i >= self.0.len() {
                self.0.resize(i + 1, 0);
            }
            self.0[i] = value;
        }

        /// Index of the oldest ready entry of the highest-priority task.
        fn pick(&mut self, ready: &[Candidate], rng: &mut Rng, floor: u64) -> usize {
            let mut best = 0;
            let mut best_prio = 0;
            for (i, c) in ready.iter().enumerate() {
                let p = self.get_or_draw(c.owner, rng, floor);
                if p > best_prio {
                    best_prio = p;
                    best = i;
                }
            }
            best
        }
    }

    pub(crate) enum Scan {
        Pct {
            depth: u32,
            change_points: Vec<ChangePoint>,
            k: u64,
            local_steps: Vec<u64>,
            tasks_seen: u64,
            fallback_after: u64,
            prios: Prios,
        },
        Pos {
            prios: Prios,
        },
        Weighted {
            spread: u64,
            redraw: u64,
            weights: Vec<u64>,
        },
    }

    impl Scan {
        /// The reference for a freshly built pct or pos strategy (None for others).
        pub(crate) fn of(strategy: &Strategy) -> Option<Scan> {
            match strategy {
                Strategy::Pct {
                    depth,
                    change_points,
                    k,
                    fallback_after,
                    ..
                } => Some(Scan::Pct {
                    depth: *depth,
                    change_points: change_points.clone(),
                    k: *k,
                    local_steps: Vec::new(),
                    tasks_seen: 0,
                    fallback_after: *fallback_after,
                    prios: Prios::default(),
                }),
                Strategy::Pos { .. } => Some(Scan::Pos {
                    prios: Prios::default(),
                }),
                Strategy::Weighted { spread, redraw, .. } => Some(Scan::Weighted {
                    spread: *spread,
                    redraw: *redraw,
                    weights: Vec::new(),
                }),
                _ => None,
            }
        }

        /// The index (in `ready`, every ready entry oldest first) to run at `step`.
        pub(crate) fn choose(&mut self, ready: &[Candidate], step: u64, rng: &mut Rng) -> usize {
            let n = ready.len();
            match self {
                Scan::Pct {
                    depth,
                    change_points,
                    k,
                    local_steps,
                    tasks_seen,
                    fallback_after,
                    prios,
                } => {
                    if step >= *fallback_after {
                        return rng.below(n as u64) as usize;
                    }
                    let floor = u64::from(*depth);
                    // New tasks enter every change point's reservoir (in ready
                    // order, which is deterministic), before any priority draw.
                    for c in ready {
                        if c.owner != 0 && !prios.is_known(c.owner) {
                            *tasks_seen += 1;
                            for cp in change_points.iter_mut() {
                                if !cp.fired && rng.below(*tasks_seen) == 0 {
                                    cp.target = Some(c.owner);
                                    cp.at = 0; // drawn when the target first runs
                                }
                            }
                            prios.get_or_draw(c.owner, rng, floor);
                        }
                    }
                    let mut pick = prios.pick(ready, rng, floor);
                    // A task may hit several change points at once: each demotes
                    // it further, and the next pick sees every demotion.
                    loop {
                        let owner = ready[pick].owner;
                        let i = owner as usize;
                        if i >= local_steps.len() {
                            local_steps.resize(i + 1, 0);
                        }
                        let next_local = local_steps[i] + 1;
                        for cp in change_points.iter_mut() {
                            if !cp.fired && cp.at == 0 && cp.target == Some(owner) {
                                // A task's expected length is k / (tasks seen by
                                // its first step): the local step is drawn in it.
                                cp.at = local_step(rng, (*k / (*tasks_seen).max(1)).max(2));
                            }
                        }
                        let hit = change_points.iter().position(|cp| {
                            !cp.fired && cp.target == Some(owner) && cp.at == next_local
                        });
                        let Some(pos) = hit else {
                            local_steps[i] = next_local;
                            break;
                        };
                        // The i-th change point to fire demotes the task below
                        // every initial priority (and below earlier demotions),
                        // whichever change point it is: any assignment of the
                        // change points to the tasks a bug needs then works.
                        let fired = change_points.iter().filter(|cp| cp.fired).count();
                        change_points[pos].fired = true;
                        let demoted = floor - 1 - fired as u64;
                        prios.set(owner, demoted.max(1));
                        pick = prios.pick(ready, rng, floor);
                    }
                    pick
                }
                Scan::Pos { prios } => {
                    let pick = prios.pick(ready, rng, 0);
                    prios.set(ready[pick].owner, 1 + (rng.next_u64() >> 2));
                    pick
                }
                Scan::Weighted {
                    spread,
                    redraw,
                    weights,
                } => {
                    let mut total = 0u64;
                    for c in ready {
                        let i = c.owner as usize;
                        if i >= weights.len() {
                            weights.resize(i + 1, 0);
                        }
                        if weights[i] == 0 {
                            let s = (*spread).max(1) as f64;
                            weights[i] = ((rng.unit_f64() * s.ln()).exp() as u64).max(1);
                        }
                        total += weights[i];
                    }
                    let mut draw = rng.below(total);
                    let mut pick = n - 1;
                    for (i, c) in ready.iter().enumerate() {
                        let w = weights[c.owner as usize];
                        if draw < w {
                            pick = i;
                            break;
                        }
                        draw -= w;
                    }
                    if *redraw > 0 && rng.below(*redraw) == 0 {
                        // The task that runs draws a fresh weight next time.
                        weights[ready[pick].owner as usize] = 0;
                    }
                    pick
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_exactly_the_listed_names() {
        for name in STRATEGIES {
            let spec = StrategySpec::parse(name).unwrap();
            assert_eq!(spec.name(), name);
        }
        for name in ["replay", "FIFO", "", "shuffle "] {
            assert!(StrategySpec::parse(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn unknown_name_message_lists_every_strategy() {
        assert_eq!(
            StrategySpec::parse("bogus").unwrap_err(),
            "unknown strategy \"bogus\"; choose one of: shuffle, random, pct, pos, strict, auto, feasible, fifo"
        );
    }
}
