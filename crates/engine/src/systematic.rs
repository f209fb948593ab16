//! Systematic exploration: a bounded depth-first enumeration of decision tapes, with sleep sets.
//!
//! A run is driven by a [`Walk`]: it replays a tape prefix chosen by the
//! [`Explorer`], then chooses by itself at every later step (a preemption
//! while the budget allows, else the free choice) and records each step as
//! a node (the ready entries by sequence number, what each may touch, the
//! choice, the preemptions spent before it). The explorer keeps the path of
//! nodes of the last run and backtracks over it: the next run's prefix is
//! the path up to the deepest node with a choice left, that choice
//! substituted.
//!
//! Bound: a preemption is a switch of task that stock asyncio would not
//! make. Normally the next step is index 0 (the oldest ready entry, stock
//! asyncio's pick) and any other choice is a preemption; the task it
//! switches to then keeps running, as on a preemptive scheduler, until it
//! blocks (no entry of it is ready) or has run [`RUN_AHEAD`] steps, and
//! switching away from it before that is another preemption (see
//! [`step_cost`]). So "task B runs ahead of the others" costs one
//! preemption, however many steps it runs. A run may spend at most `bound`.
//! Rounds deepen the bound (0, 1, ..., `max_bound`), so the first failure
//! found needs the fewest preemptions, and a round in which the bound never
//! stopped a choice proves the whole space explored.
//!
//! Reduction (sleep sets, Godefroid 1996): after the subtree of choice `t`
//! at node `s` has been explored, `t` sleeps in the subtrees of `s`'s later
//! choices until a step that may conflict with it runs; a node whose every
//! ready entry sleeps is not explored further (its schedules are reorderings
//! of independent steps of one already explored). Two steps are independent
//! only when their [`Footprint`]s are disjoint. Sleep sets are not sound
//! under a bound on their own (the explored reordering may need more
//! preemptions than the pruned one), so `t` is only put to sleep when no
//! choice in its subtree was cut by the bound: then every schedule of that
//! subtree was explored, whatever its cost.

/// What a step may touch. `Any` conflicts with everything (a step that runs
/// user code: it may read or write any shared Python state); `Objects` are
/// the addresses of the only objects a loop-internal step touches (a future
/// it completes, the gather it reports to). Addresses are compared only
/// between objects alive at the same time, so they identify objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Footprint {
    #[default]
    Any,
    /// Up to two object addresses; 0 is an empty slot.
    Objects([u64; 2]),
}

impl Footprint {
    /// May the two steps fail to commute?
    pub fn conflicts(&self, other: &Footprint) -> bool {
        match (self, other) {
            (Footprint::Objects(a), Footprint::Objects(b)) => {
                a.iter().any(|&x| x != 0 && b.contains(&x))
            }
            _ => true,
        }
    }
}

/// How many steps the task a preemption switched to keeps running before
/// stock order resumes. Without a cap a task polling in a loop (`while not
/// ready: await sleep(0)`) would run ahead forever. Measured on bench/corpus
/// (bugs found within 1000 runs at bound 2, total runs to failure, a miss
/// counting 1001): 4 -> 23/31, 9255; 8 and 16 -> 27/31, 5653; 32 -> 27/31,
/// 5603. (An earlier rule, where the run-ahead could stop at any step for
/// free, so each preemption also chose its length: 4 -> 22/31, 10125;
/// 8 -> 25/31, 8615; 16 -> 24/31, 8788.)
pub const RUN_AHEAD: u32 = 32;

/// The task the last preemption switched to, and how many steps it has
/// run ahead since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Favor {
    pub owner: u32,
    pub ahead: u32,
}

/// The preemptions choice `i` costs (0 or 1) among ready entries owned by
/// `owners` (task ordinals, oldest first), and the favour after it. While a
/// favoured task (the one the last preemption switched to) has an entry
/// ready and has run fewer than [`RUN_AHEAD`] steps, its oldest entry is the
/// free choice and any other is a preemption; otherwise index 0 is the free
/// choice. A preemption to index > 0 favours the task it runs (none for the
/// loop's own callbacks, owner 0); one back to index 0 favours none.
pub fn step_cost(owners: &[u32], i: usize, favor: Option<Favor>) -> (u32, Option<Favor>) {
    let owner = owners[i];
    if let Some(f) = favor {
        let cont = owners.iter().position(|&o| o == f.owner);
        if let (Some(c), true) = (cont, f.ahead < RUN_AHEAD) {
            if i == c {
                let next = Favor {
                    owner,
                    ahead: f.ahead + 1,
                };
                return (0, Some(next));
            }
            let next = (i != 0 && owner != 0).then_some(Favor { owner, ahead: 0 });
            return (1, next);
        }
    }
    if i == 0 {
        return (0, None);
    }
    (1, (owner != 0).then_some(Favor { owner, ahead: 0 }))
}

/// What the explorer asks of one run.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Plan {
    /// Choices to replay first (the path to the backtracking point).
    pub prefix: Vec<u32>,
    /// Sequence numbers of the entries asleep right after the prefix.
    pub sleep: Vec<u64>,
    /// Preemptions (non-zero choices) a run may spend.
    pub bound: u32,
    /// The sequence number each prefix choice ran when it was recorded: a
    /// replay that runs another entry is not deterministic.
    pub expect: Vec<u64>,
}

/// One step past the prefix, as the run saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRec {
    /// The ready entries, oldest first, by sequence number.
    pub seqs: Vec<u64>,
    pub fps: Vec<Footprint>,
    /// Their task ordinals.
    pub owners: Vec<u32>,
    /// The index run, or None where the walk stopped.
    pub chosen: Option<u32>,
    /// Preemptions spent before this step.
    pub cost_before: u32,
    /// The task the last preemption switched to, while it keeps running.
    pub favored_before: Option<Favor>,
    /// Entries asleep at this step (never chosen here).
    pub sleep: Vec<u64>,
}

impl NodeRec {
    fn fp_of(&self, seq: u64) -> Footprint {
        self.seqs
            .iter()
            .position(|&s| s == seq)
            .map_or(Footprint::Any, |i| self.fps[i])
    }
}

/// Why a walk stopped before the scenario ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every ready entry sleeps: the rest only reorders independent steps
    /// of a schedule already explored.
    Asleep,
    /// Every awake choice would exceed the bound.
    Bound,
    /// Replaying the prefix ran another entry than the run that recorded it:
    /// the scenario depends on something outside the loop's control.
    Diverged { step: u64 },
}

/// One run of a systematic exploration: replays a prefix, then takes the
/// first awake choice within the bound, recording every step after the prefix.
#[derive(Clone, Debug)]
pub struct Walk {
    plan: Plan,
    step: usize,
    cost: u32,
    favored: Option<Favor>,
    sleep: Vec<u64>,
    owners: Vec<u32>,
    nodes: Vec<NodeRec>,
    stop: Option<Stop>,
}

impl Walk {
    pub fn new(plan: Plan) -> Walk {
        let sleep = if plan.prefix.is_empty() {
            plan.sleep.clone()
        } else {
            Vec::new()
        };
        Walk {
            plan,
            step: 0,
            cost: 0,
            favored: None,
            sleep,
            owners: Vec::new(),
            nodes: Vec::new(),
            stop: None,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn nodes(&self) -> &[NodeRec] {
        &self.nodes
    }

    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// The index to run among the ready entries `(seq, footprint, owner)`,
    /// oldest first (never empty). After a stop, index 0 unrecorded (the
    /// run's clean-up, which the exploration ignores).
    pub fn choose(&mut self, ready: &[(u64, Footprint, u32)]) -> usize {
        debug_assert!(!ready.is_empty());
        if self.stop.is_some() {
            return 0;
        }
        self.owners.clear();
        self.owners.extend(ready.iter().map(|r| r.2));
        let k = self.step;
        self.step += 1;
        if k < self.plan.prefix.len() {
            let i = (self.plan.prefix[k] as usize).min(ready.len() - 1);
            if self
                .plan
                .expect
                .get(k)
                .is_some_and(|&seq| seq != ready[i].0)
            {
                self.stop = Some(Stop::Diverged { step: k as u64 });
                return i;
            }
            let (cost, favored) = step_cost(&self.owners, i, self.favored);
            self.cost += cost;
            self.favored = favored;
            if k + 1 == self.plan.prefix.len() {
                self.sleep = self.plan.sleep.clone();
            }
            return i;
        }
        // A preemption while the budget allows (the oldest other task first),
        // else the free choice (the favoured task, else stock order). So the
        // first schedule of a round preempts as early as it can, and
        // depth-first backtracking then moves the preemptions later one step
        // at a time: preemption points are tried from the start of the run
        // on. Measured on bench/corpus (1000 runs, bound 2): 29/31 bugs,
        // 2593 runs to failure in total; free choice first (preemption
        // points tried from the end of the run back): 27/31, 5603.
        let continuation = self
            .favored
            .and_then(|f| self.owners.iter().position(|&o| o == f.owner));
        let order = continuation
            .into_iter()
            .chain(std::iter::once(0))
            .chain(1..ready.len());
        let mut any_awake = false;
        let mut pick = None;
        let mut free = None;
        for i in order {
            if self.sleep.contains(&ready[i].0) {
                continue;
            }
            any_awake = true;
            let (cost, favored) = step_cost(&self.owners, i, self.favored);
            if cost == 0 {
                free = free.or(Some((i, cost, favored)));
            } else if self.cost + cost <= self.plan.bound && pick.is_none() {
                pick = Some((i, cost, favored));
            }
        }
        let pick = pick.or(free);
        self.nodes.push(NodeRec {
            seqs: ready.iter().map(|r| r.0).collect(),
            fps: ready.iter().map(|r| r.1).collect(),
            owners: self.owners.clone(),
            chosen: pick.map(|p| p.0 as u32),
            cost_before: self.cost,
            favored_before: self.favored,
            sleep: self.sleep.clone(),
        });
        let Some((i, cost, favored)) = pick else {
            self.stop = Some(if any_awake { Stop::Bound } else { Stop::Asleep });
            return 0;
        };
        self.cost += cost;
        self.favored = favored;
        // Entries that may conflict with the step now run wake up: their
        // order relative to it matters.
        let ran = ready[i].1;
        self.sleep.retain(|z| {
            ready
                .iter()
                .find(|r| r.0 == *z)
                .is_some_and(|r| !r.1.conflicts(&ran))
        });
        i
    }
}

/// A node of the explorer's current path.
#[derive(Debug)]
struct Node {
    rec: NodeRec,
    /// The choice whose subtree is being explored.
    chosen: Option<u32>,
    /// Choices whose subtrees are done.
    tried: Vec<u32>,
    /// Entries (seq) whose subtree was explored with no choice cut by the bound.
    covered: Vec<u64>,
    /// A choice here was skipped for the bound.
    cut_here: bool,
    /// A choice in the current child's subtree was skipped for the bound.
    cut_below: bool,
    /// A choice in any child's subtree was skipped for the bound.
    cut_any_below: bool,
}

/// The depth-first search over decision tapes (see the module docs).
#[derive(Debug)]
pub struct Explorer {
    max_bound: Option<u32>,
    bound: u32,
    reduce: bool,
    stack: Vec<Node>,
    started: bool,
    root_cut: bool,
    done: bool,
    /// Runs asked for so far (all rounds, stopped walks included).
    pub runs: u64,
    /// Walks stopped early (asleep, or over the bound), all rounds.
    pub stopped: u64,
    /// Complete schedules run in the current round.
    pub interleavings: u64,
}

impl Explorer {
    /// `max_bound` None: one round with no bound. `reduce`: sleep sets.
    pub fn new(max_bound: Option<u32>, reduce: bool) -> Explorer {
        Explorer {
            max_bound,
            bound: if max_bound.is_some() { 0 } else { u32::MAX },
            reduce,
            stack: Vec::new(),
            started: false,
            root_cut: false,
            done: false,
            runs: 0,
            stopped: 0,
            interleavings: 0,
        }
    }

    /// The bound of the current round.
    pub fn bound(&self) -> u32 {
        self.bound
    }

    /// Has every round finished (the space within the bound is explored)?
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Did the last finished round never cut a choice for the bound (so its
    /// schedules are every schedule, whatever the bound)?
    pub fn exhaustive(&self) -> bool {
        self.done && !self.root_cut
    }

    fn first_plan(&mut self) -> Plan {
        self.started = true;
        self.runs += 1;
        self.root_cut = false;
        self.interleavings = 0;
        Plan {
            prefix: Vec::new(),
            sleep: Vec::new(),
            bound: self.bound,
            expect: Vec::new(),
        }
    }

    /// The next run's plan, or None when the exploration is over.
    pub fn next_plan(&mut self) -> Option<Plan> {
        if self.done {
            return None;
        }
        if !self.started {
            return Some(self.first_plan());
        }
        loop {
            let bound = self.bound;
            let reduce = self.reduce;
            let Some(top) = self.stack.last_mut() else {
                // The round is over: deepen the bound if it cut anything.
                if self.root_cut && self.max_bound.is_some_and(|m| self.bound < m) {
                    self.bound += 1;
                    return Some(self.first_plan());
                }
                self.done = true;
                return None;
            };
            if let Some(c) = top.chosen.take() {
                top.tried.push(c);
                if !top.cut_below {
                    top.covered.push(top.rec.seqs[c as usize]);
                }
            }
            top.cut_any_below |= top.cut_below;
            top.cut_below = false;
            let mut next = None;
            for (i, seq) in top.rec.seqs.iter().enumerate() {
                if top.tried.contains(&(i as u32)) || top.rec.sleep.contains(seq) {
                    continue;
                }
                let (cost, _) = step_cost(&top.rec.owners, i, top.rec.favored_before);
                if top.rec.cost_before.saturating_add(cost) > bound {
                    top.cut_here = true;
                    continue;
                }
                next = Some(i);
                break;
            }
            if let Some(i) = next {
                top.chosen = Some(i as u32);
                let sleep = if reduce {
                    let ran = top.rec.fps[i];
                    let rec = &top.rec;
                    rec.sleep
                        .iter()
                        .chain(top.covered.iter())
                        .copied()
                        .filter(|&z| !rec.fp_of(z).conflicts(&ran))
                        .collect()
                } else {
                    Vec::new()
                };
                let prefix: Vec<u32> = self
                    .stack
                    .iter()
                    .map(|n| n.chosen.expect("every node on the path has a choice"))
                    .collect();
                let expect = self
                    .stack
                    .iter()
                    .zip(&prefix)
                    .map(|(n, &c)| n.rec.seqs[c as usize])
                    .collect();
                self.runs += 1;
                return Some(Plan {
                    prefix,
                    sleep,
                    bound,
                    expect,
                });
            }
            let node = self.stack.pop().expect("top exists");
            let cut = node.cut_here || node.cut_any_below;
            match self.stack.last_mut() {
                Some(parent) => parent.cut_below |= cut,
                None => self.root_cut |= cut,
            }
        }
    }

    /// Take in the walk of the run planned last.
    pub fn report(&mut self, walk: &Walk) {
        self.stack.truncate(walk.plan.prefix.len());
        match walk.stop {
            Some(_) => self.stopped += 1,
            None => self.interleavings += 1,
        }
        for rec in &walk.nodes {
            let cut_here = rec.chosen.is_none() && walk.stop == Some(Stop::Bound);
            self.stack.push(Node {
                rec: rec.clone(),
                chosen: rec.chosen,
                tried: Vec::new(),
                covered: Vec::new(),
                cut_here,
                cut_below: false,
                cut_any_below: false,
            });
        }
        if let Some(last) = self.stack.last_mut() {
            if last.chosen.is_none() {
                // A stopped walk's last node has no child to explore.
                last.tried.extend(0..last.rec.seqs.len() as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A toy program: each "task" is a list of steps, a step being the
    /// object it touches (0: Any, touches everything).
    #[derive(Clone)]
    struct Toy {
        tasks: Vec<Vec<u64>>,
    }

    type Trace = Vec<((usize, usize), (usize, usize))>;

    fn fp(obj: u64) -> Footprint {
        if obj == 0 {
            Footprint::Any
        } else {
            Footprint::Objects([obj, 0])
        }
    }

    /// Run the toy under a walk; returns its Mazurkiewicz trace (the order
    /// of every conflicting pair of steps, which is what an outcome can
    /// depend on) and the tape.
    fn run_toy(toy: &Toy, walk: &mut Walk) -> (Trace, Vec<u32>) {
        // ready: (seq, task index, step index)
        let mut next_seq = 0u64;
        let mut ready: Vec<(u64, usize, usize)> = Vec::new();
        for (t, steps) in toy.tasks.iter().enumerate() {
            if !steps.is_empty() {
                ready.push((next_seq, t, 0));
                next_seq += 1;
            }
        }
        let mut log: Vec<(usize, usize)> = Vec::new();
        let mut tape = Vec::new();
        while !ready.is_empty() {
            let view: Vec<(u64, Footprint, u32)> = ready
                .iter()
                .map(|&(seq, t, s)| (seq, fp(toy.tasks[t][s]), t as u32 + 1))
                .collect();
            let i = walk.choose(&view);
            if walk.stop().is_some() {
                break;
            }
            tape.push(i as u32);
            let (_, t, s) = ready.remove(i);
            log.push((t, s));
            if s + 1 < toy.tasks[t].len() {
                ready.push((next_seq, t, s + 1));
                next_seq += 1;
            }
        }
        let mut trace = Vec::new();
        for (i, &a) in log.iter().enumerate() {
            for &b in &log[i + 1..] {
                let (fa, fb) = (fp(toy.tasks[a.0][a.1]), fp(toy.tasks[b.0][b.1]));
                if a.0 != b.0 && fa.conflicts(&fb) {
                    trace.push((a, b));
                }
            }
        }
        trace.sort();
        (trace, tape)
    }

    fn explore(toy: &Toy, bound: Option<u32>, reduce: bool) -> (BTreeSet<Trace>, u64) {
        let mut ex = Explorer::new(bound, reduce);
        let mut outcomes = BTreeSet::new();
        let mut complete = 0;
        while let Some(plan) = ex.next_plan() {
            let mut walk = Walk::new(plan);
            let (outcome, _) = run_toy(toy, &mut walk);
            if walk.stop().is_none() {
                outcomes.insert(outcome);
                complete += 1;
            }
            ex.report(&walk);
            assert!(ex.runs < 100_000);
        }
        assert!(ex.is_done());
        (outcomes, complete)
    }

    #[test]
    fn footprints_conflict_only_on_a_shared_object_or_any() {
        let a = Footprint::Objects([1, 0]);
        let b = Footprint::Objects([2, 3]);
        let c = Footprint::Objects([3, 0]);
        assert!(!a.conflicts(&b));
        assert!(b.conflicts(&c));
        assert!(a.conflicts(&Footprint::Any));
        assert!(Footprint::Any.conflicts(&a));
        assert!(!Footprint::Objects([0, 0]).conflicts(&Footprint::Objects([0, 0])));
    }

    #[test]
    fn brute_force_enumerates_every_interleaving() {
        // Two tasks of 2 steps and one of 1: 5!/(2!2!1!) = 30 interleavings.
        let toy = Toy {
            tasks: vec![vec![0, 0], vec![0, 0], vec![0]],
        };
        let (outcomes, complete) = explore(&toy, None, false);
        assert_eq!(complete, 30);
        assert_eq!(outcomes.len(), 30);
    }

    #[test]
    fn sleep_sets_keep_every_outcome_and_run_fewer_schedules() {
        let toys = [
            // Independent tasks on distinct objects: one schedule suffices.
            Toy {
                tasks: vec![vec![1, 1], vec![2, 2], vec![3]],
            },
            // Two tasks share object 1; a third is independent.
            Toy {
                tasks: vec![vec![1, 2], vec![1, 3], vec![4, 4]],
            },
            // Mixed with user-code steps (Any).
            Toy {
                tasks: vec![vec![0, 1], vec![2, 0], vec![3, 3]],
            },
        ];
        for toy in &toys {
            for bound in [None, Some(0), Some(1), Some(2)] {
                let (full, n_full) = explore(toy, bound, false);
                let (reduced, n_reduced) = explore(toy, bound, true);
                assert_eq!(full, reduced, "bound {bound:?}");
                assert!(n_reduced <= n_full);
            }
        }
        let (_, n_full) = explore(&toys[0], None, false);
        let (_, n_reduced) = explore(&toys[0], None, true);
        assert_eq!(n_full, 30);
        assert_eq!(n_reduced, 1);
        let (_, n_full) = explore(&toys[1], None, false);
        let (_, n_reduced) = explore(&toys[1], None, true);
        assert!(n_reduced < n_full, "{n_reduced} vs {n_full}");
    }

    #[test]
    fn random_programs_keep_every_trace_under_reduction() {
        let mut rng = crate::rng::Rng::stream(7, "systematic-test");
        let mut saved = 0;
        for _ in 0..150 {
            let tasks = (0..2 + rng.below(2))
                .map(|_| (0..1 + rng.below(3)).map(|_| rng.below(4)).collect())
                .collect();
            let toy = Toy { tasks };
            for bound in [None, Some(0), Some(1), Some(2)] {
                let (full, n_full) = explore(&toy, bound, false);
                let (reduced, n_reduced) = explore(&toy, bound, true);
                assert_eq!(full, reduced, "{:?} bound {bound:?}", toy.tasks);
                assert!(n_reduced <= n_full);
                saved += n_full - n_reduced;
            }
        }
        assert!(saved > 0);
    }

    #[test]
    fn a_prefix_that_runs_another_entry_stops_the_walk() {
        let mut walk = Walk::new(Plan {
            prefix: vec![1],
            sleep: vec![],
            bound: 2,
            expect: vec![7],
        });
        walk.choose(&[(3, Footprint::Any, 1), (4, Footprint::Any, 2)]);
        assert_eq!(walk.stop(), Some(Stop::Diverged { step: 0 }));
    }

    #[test]
    fn running_one_task_ahead_costs_one_preemption() {
        let fav = |owner, ahead| Some(Favor { owner, ahead });
        // Ready: task 1 at the head, task 2 behind it.
        let owners = [1, 2];
        assert_eq!(step_cost(&owners, 0, None), (0, None));
        assert_eq!(step_cost(&owners, 1, None), (1, fav(2, 0)));
        // Task 2 keeps running ahead of task 1 for free...
        assert_eq!(step_cost(&owners, 1, fav(2, 0)), (0, fav(2, 1)));
        assert_eq!(step_cost(&[2, 1], 0, fav(2, 3)), (0, fav(2, 4)));
        // ...and switching away from it while it can run is a preemption...
        assert_eq!(step_cost(&owners, 0, fav(2, 3)), (1, None));
        assert_eq!(step_cost(&[1, 2, 3], 2, fav(2, 1)), (1, fav(3, 0)));
        // ...until it has run RUN_AHEAD steps or blocks: stock order again.
        assert_eq!(step_cost(&owners, 0, fav(2, RUN_AHEAD)), (0, None));
        assert_eq!(step_cost(&owners, 1, fav(2, RUN_AHEAD)), (1, fav(2, 0)));
        assert_eq!(step_cost(&[1, 3], 0, fav(2, 3)), (0, None));
        // The loop's own callbacks are never favoured.
        assert_eq!(step_cost(&[1, 0], 1, None), (1, None));
    }

    #[test]
    fn the_bound_limits_preemptions_and_rounds_deepen_it() {
        let toy = Toy {
            tasks: vec![vec![0, 0], vec![0, 0]],
        };
        // Bound 0: the stock order only.
        let (_, n0) = explore(&toy, Some(0), false);
        assert_eq!(n0, 1);
        let mut ex = Explorer::new(Some(1), false);
        let mut tapes = Vec::new();
        while let Some(plan) = ex.next_plan() {
            let mut walk = Walk::new(plan);
            let (_, tape) = run_toy(&toy, &mut walk);
            if walk.stop().is_none() {
                let nodes = walk.nodes();
                let spent = nodes.last().map_or(0, |n| n.cost_before);
                assert!(spent <= 1, "{tape:?}");
                tapes.push(tape);
            }
            ex.report(&walk);
        }
        // The first round's schedule first, then every 1-preemption one.
        assert_eq!(tapes[0], vec![0, 0, 0, 0]);
        assert!(!ex.exhaustive());
        // A bound the space never reaches: the last round is exhaustive.
        let mut ex = Explorer::new(Some(10), false);
        while let Some(plan) = ex.next_plan() {
            let mut walk = Walk::new(plan);
            run_toy(&toy, &mut walk);
            ex.report(&walk);
        }
        assert!(ex.exhaustive());
        assert_eq!(ex.interleavings, 6);
    }
}
