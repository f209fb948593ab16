//! The Wing-Gong/Lowe search (as in Porcupine): operations sit in one list of
//! call and return entries in time order; the search linearizes a call whose
//! effect the model accepts by lifting it (and its return) out of the list,
//! and backtracks when it meets a return it has not placed. A cache of
//! (operations placed, state) pairs already explored cuts the search down
//! to what is new.

use super::model::Model;
use std::collections::HashMap;

/// One operation as the search sees it: `id` names it to the model, `call`
/// and `ret` are times (any increasing numbering, e.g. history indices).
/// `ret: None` is an operation whose outcome is unknown: it may have taken
/// effect at any point after its call, or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    pub id: usize,
    pub call: u64,
    pub ret: Option<u64>,
}

const NONE: usize = usize::MAX;

/// One entry of the list; index 0 is the head sentinel.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Position of the operation in the checked slice.
    pos: usize,
    is_call: bool,
    /// For a call: its return entry (NONE if the outcome is unknown).
    ret: usize,
    prev: usize,
    next: usize,
}

fn build(ops: &[Op]) -> Vec<Node> {
    // (time, returns after calls at the same time, position): calls at the
    // time another op returns count as concurrent with it.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
    for (pos, op) in ops.iter().enumerate() {
        events.push((op.call, false, pos));
        if let Some(ret) = op.ret {
            events.push((ret, true, pos));
        }
    }
    events.sort_unstable();
    let head = Node {
        pos: NONE,
        is_call: false,
        ret: NONE,
        prev: NONE,
        next: NONE,
    };
    let mut nodes = vec![head];
    let mut call_node = vec![NONE; ops.len()];
    for (_, is_ret, pos) in events {
        let at = nodes.len();
        nodes[at - 1].next = at;
        nodes.push(Node {
            pos,
            is_call: !is_ret,
            ret: NONE,
            prev: at - 1,
            next: NONE,
        });
        if is_ret {
            nodes[call_node[pos]].ret = at;
        } else {
            call_node[pos] = at;
        }
    }
    nodes
}

fn unlink(nodes: &mut [Node], at: usize) {
    let Node { prev, next, .. } = nodes[at];
    nodes[prev].next = next;
    if next != NONE {
        nodes[next].prev = prev;
    }
}

fn relink(nodes: &mut [Node], at: usize) {
    let Node { prev, next, .. } = nodes[at];
    nodes[prev].next = at;
    if next != NONE {
        nodes[next].prev = at;
    }
}

/// Take a call (and its return) out of the list; `unlift` undoes it (in
/// reverse order of lifting, which the search's stack guarantees).
fn lift(nodes: &mut [Node], call: usize) {
    unlink(nodes, call);
    if nodes[call].ret != NONE {
        unlink(nodes, nodes[call].ret);
    }
}

fn unlift(nodes: &mut [Node], call: usize) {
    if nodes[call].ret != NONE {
        relink(nodes, nodes[call].ret);
    }
    relink(nodes, call);
}

/// splitmix64: a well-mixed hash of a position, XORed into the set's hash.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The set of operations placed so far, with a hash kept up to date, and the
/// span of words that is neither all placed nor all unplaced.
struct Placed {
    words: Vec<u64>,
    hash: u64,
    /// The first word not full.
    lo: usize,
    /// One past the last word not empty.
    hi: usize,
}

impl Placed {
    fn new(n: usize) -> Self {
        Placed {
            words: vec![0; n.div_ceil(64)],
            hash: 0,
            lo: 0,
            hi: 0,
        }
    }

    fn flip(&mut self, pos: usize) {
        let w = pos / 64;
        self.words[w] ^= 1 << (pos % 64);
        self.hash ^= mix(pos as u64);
        if self.words[w] & (1 << (pos % 64)) != 0 {
            self.hi = self.hi.max(w + 1);
            while self.lo < self.words.len() && self.words[self.lo] == u64::MAX {
                self.lo += 1;
            }
        } else {
            self.lo = self.lo.min(w);
            while self.hi > 0 && self.words[self.hi - 1] == 0 {
                self.hi -= 1;
            }
        }
    }

    /// The set, compactly: placed sets are "everything up to some point,
    /// then a few more", so the words between the first not-full one and the
    /// last non-zero one say it all (with the index of the first).
    fn compact(&self) -> (usize, &[u64]) {
        (self.lo, &self.words[self.lo..self.hi.max(self.lo)])
    }
}

/// A hasher for keys that are already well-mixed u64s.
#[derive(Default)]
struct Premixed(u64);

impl std::hash::Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The configurations explored, (placed set, state) pairs, in flat arrays
/// (a chain per hash) so a long search makes no allocation per entry.
struct Seen<S> {
    heads: HashMap<u64, usize, std::hash::BuildHasherDefault<Premixed>>,
    /// (next in chain or NONE, first word index, start in `words`, length)
    entries: Vec<(usize, usize, usize, usize)>,
    words: Vec<u64>,
    states: Vec<S>,
}

impl<S: Clone> Seen<S> {
    fn new() -> Self {
        Seen {
            heads: HashMap::default(),
            entries: Vec::new(),
            words: Vec::new(),
            states: Vec::new(),
        }
    }

    /// Record the configuration; false if it was there already.
    fn insert<M: Model<State = S>>(
        &mut self,
        model: &mut M,
        key: u64,
        placed: &Placed,
        state: &S,
    ) -> Result<bool, M::Error> {
        let (first, words) = placed.compact();
        let head = self.heads.get(&key).copied().unwrap_or(NONE);
        let mut at = head;
        while at != NONE {
            let (next, f, start, len) = self.entries[at];
            if f == first
                && self.words[start..start + len] == *words
                && model.same(&self.states[at], state)?
            {
                return Ok(false);
            }
            at = next;
        }
        self.heads.insert(key, self.entries.len());
        self.entries
            .push((head, first, self.words.len(), words.len()));
        self.words.extend_from_slice(words);
        self.states.push(state.clone());
        Ok(true)
    }
}

/// Whether `ops` are linearizable with respect to `model`: `Some(order)` (the
/// ids of the operations a linearization places, in its order; an unknown
/// operation left out never took effect) or `None`.
pub fn check<M: Model>(model: &mut M, ops: &[Op]) -> Result<Option<Vec<usize>>, M::Error> {
    Ok(match search(model, ops, u64::MAX)? {
        Verdict::Linearizable(order) => Some(order),
        Verdict::Not { .. } | Verdict::GaveUp { .. } => None,
    })
}

/// What a [`search`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Linearizable: the ids of the operations a linearization places, in order.
    Linearizable(Vec<usize>),
    /// Not linearizable. `reached` is the latest return time that was ever
    /// the first one left to place: every return before it was placed in
    /// some configuration, so the history cut just before it linearizes,
    /// and the search is complete, so (for an outcome-blind model) the cut
    /// at it does not: it ends the shortest failing prefix.
    Not { reached: u64 },
    /// More than `budget` configurations were explored without an answer.
    GaveUp { explored: u64 },
}

/// The search, giving up after `budget` new configurations (`u64::MAX`:
/// never). A budget keeps a pathological history from running for ever,
/// and unlike a timeout it gives the same verdict on every machine.
pub fn search<M: Model>(model: &mut M, ops: &[Op], budget: u64) -> Result<Verdict, M::Error> {
    let mut reached = 0;
    let mut explored: u64 = 0;
    let mut nodes = build(ops);
    let mut state = model.init()?;
    let mut placed = Placed::new(ops.len());
    let mut seen: Seen<M::State> = Seen::new();
    // (call entry, state before it, placed without alternatives)
    let mut stack: Vec<(usize, M::State, bool)> = Vec::new();
    // Done once every operation with a known outcome is placed: the unknown
    // ones still in the list never took effect.
    let mut remaining = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut entry = nodes[0].next;
    // At a configuration not seen before, a read that can go now goes first,
    // with no alternative tried (see Model::read_only).
    let mut fresh = true;
    while remaining > 0 {
        let mut forced = false;
        if fresh {
            fresh = false;
            let mut e = nodes[0].next;
            while e != NONE && nodes[e].is_call {
                let op = ops[nodes[e].pos];
                if model.read_only(op.id) && model.step(&state, op.id, op.ret.is_some())?.is_some()
                {
                    (entry, forced) = (e, true);
                    break;
                }
                e = nodes[e].next;
            }
        }
        if entry == NONE || !nodes[entry].is_call {
            // A return not yet placed: nothing before it can go first. Undo
            // the last choice and try the call after it.
            if entry != NONE {
                reached = reached.max(ops[nodes[entry].pos].ret.unwrap_or(0));
            }
            let Some((call, prev, was_forced)) = stack.pop() else {
                return Ok(Verdict::Not { reached });
            };
            state = prev;
            let pos = nodes[call].pos;
            placed.flip(pos);
            if ops[pos].ret.is_some() {
                remaining += 1;
            }
            unlift(&mut nodes, call);
            // A read placed at once had no alternative: what failed after it
            // fails without it too, so undo the choice before it as well.
            entry = if was_forced { NONE } else { nodes[call].next };
            continue;
        }
        let pos = nodes[entry].pos;
        let definite = ops[pos].ret.is_some();
        if let Some(next) = model.step(&state, ops[pos].id, definite)? {
            placed.flip(pos);
            let key = placed.hash ^ mix(model.fingerprint(&next)?);
            if seen.insert(model, key, &placed, &next)? {
                explored += 1;
                if explored > budget {
                    return Ok(Verdict::GaveUp { explored: budget });
                }
                stack.push((entry, std::mem::replace(&mut state, next), forced));
                if definite {
                    remaining -= 1;
                }
                lift(&mut nodes, entry);
                entry = nodes[0].next;
                fresh = true;
                continue;
            }
            placed.flip(pos);
            if forced {
                // Explored before, from this very configuration plus the
                // read: this configuration leads nowhere either.
                entry = NONE;
                continue;
            }
        }
        entry = nodes[entry].next;
    }
    Ok(Verdict::Linearizable(
        stack
            .iter()
            .map(|&(call, ..)| ops[nodes[call].pos].id)
            .collect(),
    ))
}

/// What makes a history non-linearizable, read from its shortest failing
/// prefix (the history cut at a return time; operations still pending at
/// the cut count as unknown, so a longer prefix never fixes a shorter one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The id of the operation whose return no linearization can place.
    pub blocked: usize,
    /// The time of that return: the failing prefix is everything up to it.
    pub end: u64,
    /// A linearization of the prefix just before that return (without the
    /// blocked operation): the ids in order.
    pub witness: Vec<usize>,
    /// The ids of the operations called within the failing prefix.
    pub involved: Vec<usize>,
}

/// `ops` cut at time `t`: called by then, a return after `t` unknown.
fn cut(ops: &[Op], t: u64) -> Vec<Op> {
    ops.iter()
        .filter(|op| op.call <= t)
        .map(|op| Op {
            ret: op.ret.filter(|&r| r <= t),
            ..*op
        })
        .collect()
}

/// `None` if `ops` are linearizable, else the counterexample of the
/// shortest failing prefix (read from one search: see [`search`]).
pub fn smallest_failing_prefix<M: Model>(
    model: &mut M,
    ops: &[Op],
) -> Result<Option<Counterexample>, M::Error> {
    match search(model, ops, u64::MAX)? {
        Verdict::Not { reached } => shortest_failing(model, ops, reached).map(Some),
        // (No budget: the search never gives up.)
        Verdict::Linearizable(_) | Verdict::GaveUp { .. } => Ok(None),
    }
}

/// The counterexample of a history whose [`search`] found it not
/// linearizable, having `reached` (see [`Verdict::Not`]).
pub fn shortest_failing<M: Model>(
    model: &mut M,
    ops: &[Op],
    reached: u64,
) -> Result<Counterexample, M::Error> {
    // Every cut before `reached` linearizes; with outcome-blind models the
    // cut at it does not (see Model::outcome_blind), else find the first
    // cut from it on that fails, by bisection.
    let mut rets: Vec<u64> = ops
        .iter()
        .filter_map(|op| op.ret)
        .filter(|&r| r >= reached)
        .collect();
    rets.sort_unstable();
    rets.dedup();
    let (mut lo, mut hi) = (0, rets.len().saturating_sub(1));
    if !model.outcome_blind() {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if check(model, &cut(ops, rets[mid]))?.is_some() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
    }
    let end = rets.get(lo).copied().unwrap_or(reached);
    counterexample(model, ops, end)
}

/// The counterexample of the prefix ending at return time `end` (what
/// [`search`] reached): its blocked operation, a linearization of what came
/// before, and the operations involved.
pub fn counterexample<M: Model>(
    model: &mut M,
    ops: &[Op],
    end: u64,
) -> Result<Counterexample, M::Error> {
    let prefix = cut(ops, end);
    let blocked = prefix
        .iter()
        .find(|op| op.ret == Some(end))
        .map_or(0, |op| op.id);
    let before: Vec<Op> = prefix
        .iter()
        .filter(|op| op.id != blocked)
        .copied()
        .collect();
    let witness = check(model, &before)?.unwrap_or_default();
    Ok(Counterexample {
        blocked,
        end,
        witness,
        involved: prefix.iter().map(|op| op.id).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::model::{Builtin, BuiltinOp, Kind, State, NIL};
    use crate::rng::Rng;

    fn reg(ops: &[(BuiltinOp, u64, Option<u64>)]) -> (Builtin, Vec<Op>) {
        let model = Builtin::new(Kind::Register, ops.iter().map(|o| o.0.clone()).collect());
        let spans = ops
            .iter()
            .enumerate()
            .map(|(id, o)| Op {
                id,
                call: o.1,
                ret: o.2,
            })
            .collect();
        (model, spans)
    }

    fn ok(model: &mut Builtin, ops: &[Op]) -> bool {
        let Ok(found) = check(model, ops);
        found.is_some()
    }

    use BuiltinOp::*;

    #[test]
    fn sequential_register() {
        let (mut m, ops) = reg(&[
            (Read(NIL), 0, Some(1)),
            (Write(1), 2, Some(3)),
            (Read(1), 4, Some(5)),
        ]);
        let Ok(order) = check(&mut m, &ops);
        assert_eq!(order, Some(vec![0, 1, 2]));
    }

    #[test]
    fn stale_read_after_write_returned_is_not_linearizable() {
        let (mut m, ops) = reg(&[(Write(1), 0, Some(1)), (Read(NIL), 2, Some(3))]);
        assert!(!ok(&mut m, &ops));
    }

    #[test]
    fn concurrent_read_may_see_either() {
        for seen in [NIL, 1] {
            let (mut m, ops) = reg(&[(Write(1), 0, Some(3)), (Read(seen), 1, Some(2))]);
            assert!(ok(&mut m, &ops));
        }
    }

    #[test]
    fn unknown_write_may_land_late_or_never() {
        // write 1 unknown; reads see nil, then 1, then (never again) nil.
        let (mut m, ops) = reg(&[
            (Write(1), 0, None),
            (Read(NIL), 1, Some(2)),
            (Read(1), 3, Some(4)),
        ]);
        assert!(ok(&mut m, &ops));
        let (mut m, ops) = reg(&[(Write(1), 0, None), (Read(NIL), 1, Some(2))]);
        assert!(ok(&mut m, &ops));
        let (mut m, ops) = reg(&[
            (Write(1), 0, None),
            (Read(1), 1, Some(2)),
            (Read(NIL), 3, Some(4)),
        ]);
        assert!(!ok(&mut m, &ops));
    }

    #[test]
    fn unknown_cas_that_cannot_apply_never_happened() {
        let (mut m, ops) = reg(&[(Cas { old: 5, new: 6 }, 0, None), (Read(NIL), 1, Some(2))]);
        assert!(ok(&mut m, &ops));
    }

    #[test]
    fn queue_and_set() {
        let mut q = Builtin::new(
            Kind::Queue,
            vec![Enqueue(1), Enqueue(2), Dequeue(2), Dequeue(NIL)],
        );
        let seq = |n: usize| {
            (0..n)
                .map(|i| Op {
                    id: i,
                    call: 2 * i as u64,
                    ret: Some(2 * i as u64 + 1),
                })
                .collect::<Vec<_>>()
        };
        assert!(!ok(&mut q, &seq(4)));
        let mut q = Builtin::new(
            Kind::Queue,
            vec![Enqueue(1), Enqueue(2), Dequeue(1), Dequeue(2), Dequeue(NIL)],
        );
        assert!(ok(&mut q, &seq(5)));
        let mut s = Builtin::new(Kind::Set, vec![Add(3), Add(1), ReadSet(vec![1, 3])]);
        assert!(ok(&mut s, &seq(3)));
        let mut s = Builtin::new(Kind::Set, vec![Add(3), ReadSet(vec![]), Add(1)]);
        assert!(!ok(&mut s, &seq(3)));
    }

    #[test]
    fn counterexample_is_the_shortest_failing_prefix() {
        let (mut m, ops) = reg(&[
            (Write(1), 0, Some(1)),
            (Write(2), 2, Some(5)),
            (Read(2), 3, Some(4)),
            (Read(1), 6, Some(7)), // stale: write 2 returned before
            (Read(2), 8, Some(9)),
        ]);
        let Ok(found) = smallest_failing_prefix(&mut m, &ops);
        let c = found.expect("not linearizable");
        assert_eq!((c.blocked, c.end), (3, 7));
        assert_eq!(c.witness, vec![0, 1, 2]);
        assert_eq!(c.involved, vec![0, 1, 2, 3]);
        let (mut m, ops) = reg(&[(Write(1), 0, Some(1))]);
        let Ok(found) = smallest_failing_prefix(&mut m, &ops);
        assert_eq!(found, None);
    }

    /// Every order of the operations that respects real time (an unknown op
    /// placed anywhere after its call, or left out).
    fn brute(model: &mut Builtin, ops: &[Op]) -> bool {
        fn go(model: &mut Builtin, ops: &[Op], used: &mut Vec<bool>, state: State) -> bool {
            let pending_definite: Vec<usize> = (0..ops.len())
                .filter(|&i| !used[i] && ops[i].ret.is_some())
                .collect();
            if pending_definite.is_empty() {
                return true;
            }
            let min_ret = pending_definite
                .iter()
                .map(|&i| ops[i].ret.unwrap_or(u64::MAX))
                .min()
                .unwrap_or(u64::MAX);
            for i in 0..ops.len() {
                if used[i] || ops[i].call > min_ret {
                    continue;
                }
                let Ok(Some(next)) = model.step(&state, ops[i].id, ops[i].ret.is_some()) else {
                    continue;
                };
                used[i] = true;
                let found = go(model, ops, used, next);
                used[i] = false;
                if found {
                    return true;
                }
            }
            false
        }
        let Ok(init) = model.init();
        go(model, ops, &mut vec![false; ops.len()], init)
    }

    /// The shortest failing prefix the slow way: bisection over cuts.
    fn bisect(model: &mut Builtin, ops: &[Op]) -> Option<u64> {
        let mut rets: Vec<u64> = ops.iter().filter_map(|op| op.ret).collect();
        rets.sort_unstable();
        rets.dedup();
        if rets.is_empty() || ok(model, &cut(ops, rets[rets.len() - 1])) {
            return None;
        }
        let (mut lo, mut hi) = (0, rets.len() - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ok(model, &cut(ops, rets[mid])) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Some(rets[lo])
    }

    #[test]
    fn agrees_with_brute_force_on_random_histories() {
        let mut rng = Rng::new(11);
        let mut failing = 0;
        for round in 0..3000 {
            let kind = [Kind::Register, Kind::Set, Kind::Queue][round % 3];
            let n = 1 + rng.below(6) as usize;
            let mut model_ops = Vec::new();
            let mut spans = Vec::new();
            let mut times: Vec<u64> = (0..2 * n as u64).collect();
            // shuffle times, then pair each op's two times in order
            for i in (1..times.len()).rev() {
                times.swap(i, rng.below(i as u64 + 1) as usize);
            }
            for id in 0..n {
                let v = 1 + rng.below(2) as i64;
                let read = rng.below(2) == 0;
                let op = match (kind, read) {
                    (Kind::Register, false) if rng.below(3) == 0 => Cas {
                        old: rng.below(3) as i64,
                        new: v,
                    },
                    (Kind::Register, false) => Write(v),
                    (Kind::Register, true) => Read(rng.below(3) as i64),
                    (Kind::Set, false) => Add(v),
                    (Kind::Set, true) => ReadSet(
                        [vec![], vec![1], vec![2], vec![1, 2]][rng.below(4) as usize].clone(),
                    ),
                    (Kind::Queue, false) => Enqueue(v),
                    (Kind::Queue, true) => Dequeue(rng.below(3) as i64),
                };
                let (a, b) = (
                    times[2 * id].min(times[2 * id + 1]),
                    times[2 * id].max(times[2 * id + 1]),
                );
                let ret = (rng.below(5) != 0).then_some(b);
                model_ops.push(op);
                spans.push(Op { id, call: a, ret });
            }
            let mut m = Builtin::new(kind, model_ops);
            let expect = brute(&mut m, &spans);
            failing += usize::from(!expect);
            assert_eq!(
                ok(&mut m, &spans),
                expect,
                "round {round}: {:?} {spans:?}",
                m.ops
            );
            let Ok(c) = smallest_failing_prefix(&mut m, &spans);
            assert_eq!(c.map(|c| c.end), bisect(&mut m, &spans), "round {round}");
        }
        assert!(
            failing > 300,
            "the generator makes too few failing histories: {failing}"
        );
    }

    /// A linearizable register history of `clients` busy clients: each op
    /// takes effect at a random point inside its call (as bench/check_bench.py).
    fn busy_register(clients: usize, n: usize, seed: u64) -> (Builtin, Vec<Op>) {
        let mut rng = Rng::new(seed);
        let mut unit = || rng.below(1 << 20) as f64 / f64::from(1 << 20);
        let mut clock: Vec<f64> = (0..clients).map(|_| unit()).collect();
        let mut spans = Vec::new();
        let mut effects = Vec::new();
        let mut writes = Vec::new();
        for id in 0..n {
            let c = (0..clients)
                .min_by(|&a, &b| clock[a].total_cmp(&clock[b]))
                .unwrap_or(0);
            let start = clock[c];
            let len = 0.5 + 2.5 * unit();
            effects.push((start + len * unit(), id));
            writes.push(unit() < 0.5);
            spans.push((start, start + len));
            clock[c] = start + len + 0.5 * unit();
        }
        effects.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut model_ops = vec![Read(NIL); n];
        let mut value = NIL;
        for &(_, id) in &effects {
            if writes[id] {
                value = id as i64 + 1;
                model_ops[id] = Write(value);
            } else {
                model_ops[id] = Read(value);
            }
        }
        let mut times: Vec<(f64, usize, bool)> = spans
            .iter()
            .enumerate()
            .flat_map(|(id, &(a, b))| [(a, id, false), (b, id, true)])
            .collect();
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut ops: Vec<Op> = (0..n)
            .map(|id| Op {
                id,
                call: 0,
                ret: None,
            })
            .collect();
        for (t, &(_, id, is_ret)) in times.iter().enumerate() {
            if is_ret {
                ops[id].ret = Some(t as u64);
            } else {
                ops[id].call = t as u64;
            }
        }
        (Builtin::new(Kind::Register, model_ops), ops)
    }

    #[test]
    fn busy_register_histories_check_quickly() {
        let (mut m, ops) = busy_register(10, 2000, 3);
        assert!(ok(&mut m, &ops));
        let stale = ops
            .iter()
            .rev()
            .find(|op| matches!(m.ops[op.id], Read(v) if v > 1))
            .map(|op| op.id);
        m.ops[stale.expect("a read")] = Read(1);
        assert!(!ok(&mut m, &ops));
    }

    #[test]
    fn a_budget_gives_up_the_same_way_every_time() {
        let (mut m, ops) = busy_register(10, 2000, 3);
        let Ok(v) = search(&mut m, &ops, 100);
        assert_eq!(v, Verdict::GaveUp { explored: 100 });
        let Ok(v) = search(&mut m, &ops, u64::MAX);
        assert!(matches!(v, Verdict::Linearizable(order) if order.len() == 2000));
    }

    #[test]
    #[ignore = "timing: cargo test --release -p seedloop-engine -- --ignored --nocapture"]
    fn time_busy_register() {
        for n in [1000, 10_000] {
            let (mut m, ops) = busy_register(10, n, 1);
            let t = std::time::Instant::now();
            assert!(ok(&mut m, &ops));
            eprintln!("{n} ops: {:?}", t.elapsed());
        }
    }
}
