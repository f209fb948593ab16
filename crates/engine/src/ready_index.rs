//! The indexes pct, pos and weighted keep of the ready entries, so that a
//! step's choice does not scan every ready callback: a heap of tasks by
//! priority (pct, pos) and a Fenwick tree of weights in ready order
//! (weighted). Both see an entry when the strategy first looks after its
//! push, and forget it when it is taken (`taken`) or the list is cleared.

use std::collections::BTreeSet;

use crate::rng::Rng;

/// No indexed entry (an owner's `oldest` when it has none ready).
pub(crate) const NONE: u64 = u64::MAX;

/// No heap node (an owner's `node` when it has none).
const NO_NODE: u32 = u32::MAX;

/// An owner's indexed ready entries: its oldest, how many more, and where
/// its heap node is.
#[derive(Clone, Copy, Debug)]
struct Held {
    oldest: u64,
    more: u32,
    node: u32,
}

/// A heap node: one owner with ready entries, keyed by `(!priority, stamp
/// of its oldest entry)`: the smallest key is the highest priority, ties to
/// the oldest entry (as a scan in ready order keeping the first strictly
/// greater priority picks). Stamps are unique, so keys are too.
#[derive(Clone, Copy, Debug)]
struct Node {
    key: (u64, u64),
    owner: u32,
}

/// Priority table keyed by task ordinal (ordinals are dense, by creation),
/// with an index of the ready entries by priority, so that pct and pos pick
/// in O(log n) per step instead of scanning every ready entry.
///
/// Ready entries are named by their stamp (`Candidate::stamp`, increasing in
/// ready order). An entry is indexed once its owner has a priority; entries
/// stamped from `since` on are new to the strategy (the next choice scans
/// them). The index is a binary heap of owners (the highest priority at the
/// root) with each owner's node position kept, so a priority change or a
/// taken entry re-keys one node. A node whose owner's last entry was taken
/// stays until the next choice (`settle`): the task that just ran usually
/// has a new entry by then, re-keyed in place (pct's top task stays at the
/// root) instead of removed from the root and added back up to it.
#[derive(Default, Debug)]
pub(crate) struct Priorities {
    values: Vec<u64>,
    pub(crate) since: u64,
    /// By owner: its indexed entries (owners never indexed may be past the end).
    held: Vec<Held>,
    /// `(owner, stamp)` of every indexed entry but its owner's oldest.
    later: BTreeSet<(u32, u64)>,
    heap: Vec<Node>,
    /// Owners whose last entry was taken since the last `settle` (their
    /// node may be empty: only `settle` may leave the heap with none).
    emptied: Vec<u32>,
}

impl Priorities {
    pub(crate) fn is_known(&self, owner: u32) -> bool {
        self.values.get(owner as usize).is_some_and(|&v| v != 0)
    }

    pub(crate) fn get_or_draw(&mut self, owner: u32, rng: &mut Rng, floor: u64) -> u64 {
        let i = owner as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, 0);
        }
        if self.values[i] == 0 {
            // Random, distinct with overwhelming probability, always above
            // the change-point priorities 1..floor.
            self.values[i] = floor + 1 + (rng.next_u64() >> 2);
        }
        self.values[i]
    }

    /// Give `owner` priority `value` (non-zero), re-keying its node.
    pub(crate) fn set(&mut self, owner: u32, value: u64) {
        debug_assert!(value != 0);
        let i = owner as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, 0);
        }
        self.values[i] = value;
        if let Some(&h) = self.held.get(i) {
            if h.oldest != NONE {
                self.rekey(h.node as usize, (!value, h.oldest));
            }
        }
    }

    /// Index the ready entry `stamp` of `owner` (whose priority is known).
    /// Entries are added in stamp order.
    pub(crate) fn add(&mut self, owner: u32, stamp: u64) {
        let i = owner as usize;
        if i >= self.held.len() {
            self.held.resize(
                i + 1,
                Held {
                    oldest: NONE,
                    more: 0,
                    node: NO_NODE,
                },
            );
        }
        if self.held[i].oldest != NONE {
            self.held[i].more += 1;
            self.later.insert((owner, stamp));
            return;
        }
        self.held[i].oldest = stamp;
        let key = (!self.values[i], stamp);
        let node = self.held[i].node;
        if node != NO_NODE {
            // Its node was emptied since the last choice: refill it.
            self.rekey(node as usize, key);
            return;
        }
        let at = self.heap.len();
        self.heap.push(Node { key, owner });
        self.held[i].node = at as u32;
        self.sift_up(at);
    }

    /// The ready entry `stamp` of `owner` was taken (whoever chose it).
    pub(crate) fn remove(&mut self, owner: u32, stamp: u64) {
        if stamp >= self.since {
            return; // never indexed: pushed after the last choice
        }
        let i = owner as usize;
        let h = self.held[i];
        if h.oldest != stamp {
            self.held[i].more -= 1;
            self.later.remove(&(owner, stamp));
            return;
        }
        if h.more == 0 {
            self.held[i].oldest = NONE;
            self.emptied.push(owner);
            return;
        }
        let next = self
            .later
            .range((owner, 0)..=(owner, NONE))
            .next()
            .copied()
            .expect("an owner's later entries are indexed");
        self.later.remove(&next);
        self.held[i].more -= 1;
        self.held[i].oldest = next.1;
        self.rekey(h.node as usize, (!self.values[i], next.1));
    }

    /// Forget every indexed entry (the ready list was emptied); entries
    /// stamped from `next_stamp` on are new.
    pub(crate) fn clear_index(&mut self, next_stamp: u64) {
        for n in &self.heap {
            let h = &mut self.held[n.owner as usize];
            h.oldest = NONE;
            h.node = NO_NODE;
        }
        self.emptied.clear();
        for &(owner, _) in &self.later {
            self.held[owner as usize].more = 0;
        }
        self.heap.clear();
        self.later.clear();
        self.since = next_stamp;
    }

    /// Remove the nodes left empty since the last choice (call after
    /// adding the new entries, before `pick`).
    pub(crate) fn settle(&mut self) {
        while let Some(owner) = self.emptied.pop() {
            let h = self.held[owner as usize];
            if h.oldest == NONE && h.node != NO_NODE {
                self.remove_node(h.node as usize);
                self.held[owner as usize].node = NO_NODE;
            }
        }
    }

    /// `(stamp, owner)` of the oldest ready entry of the highest-priority
    /// task among the indexed ones (there must be one; settled).
    pub(crate) fn pick(&self) -> (u64, u32) {
        debug_assert!(self.emptied.is_empty());
        let root = self.heap.first().expect("a ready entry is indexed");
        (root.key.1, root.owner)
    }

    fn place(&mut self, at: usize, node: Node) {
        self.held[node.owner as usize].node = at as u32;
        self.heap[at] = node;
    }

    fn sift_up(&mut self, mut at: usize) {
        let node = self.heap[at];
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.heap[parent].key <= node.key {
                break;
            }
            self.place(at, self.heap[parent]);
            at = parent;
        }
        self.place(at, node);
    }

    fn sift_down(&mut self, mut at: usize) {
        let node = self.heap[at];
        let len = self.heap.len();
        loop {
            let left = 2 * at + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].key < self.heap[left].key {
                right
            } else {
                left
            };
            if node.key <= self.heap[child].key {
                break;
            }
            self.place(at, self.heap[child]);
            at = child;
        }
        self.place(at, node);
    }

    fn rekey(&mut self, at: usize, key: (u64, u64)) {
        let old = self.heap[at].key;
        self.heap[at].key = key;
        if key < old {
            self.sift_up(at);
        } else {
            self.sift_down(at);
        }
    }

    fn remove_node(&mut self, at: usize) {
        let last = self.heap.pop().expect("a removed node is in the heap");
        if at == self.heap.len() {
            return;
        }
        let old = self.heap[at].key;
        self.heap[at] = last;
        if last.key < old {
            self.sift_up(at);
        } else {
            self.sift_down(at);
        }
    }
}

/// Weighted random's table of weights by task ordinal, with an index of the
/// ready entries, so that a choice costs O(log n) instead of a scan of every
/// ready entry summing weights.
///
/// Indexed entries sit at increasing places (added in stamp order, so places
/// follow ready order); a Fenwick tree over the places holds each entry's
/// weight (its task's; 0 once gone), so the pick, the first entry at which
/// the running sum in ready order passes the draw, is a descent of the tree.
/// When the places run out, the entries still ready are packed to the front
/// (amortized O(1) per entry: at least as many free places as entries follow).
#[derive(Default, Debug)]
pub(crate) struct WeightIndex {
    /// By owner: its weight (0 = drawn at its next appearance).
    pub(crate) weights: Vec<u64>,
    /// Entries stamped from here on are not indexed yet.
    pub(crate) since: u64,
    /// The owner whose weight the last choice reset.
    pub(crate) reset: Option<u32>,
    /// By owner: `(stamp, place)` of its indexed entries, oldest first.
    held: Vec<Vec<(u64, u32)>>,
    /// By place: the entry's weight (0 once gone), stamp and owner.
    vals: Vec<u64>,
    stamps: Vec<u64>,
    owners: Vec<u32>,
    /// Fenwick tree over `vals` (1-based; its length - 1 is the capacity).
    tree: Vec<u64>,
    /// Sum of `vals`; entries indexed.
    pub(crate) total: u64,
    live: usize,
}

impl WeightIndex {
    /// `owner`'s weight, drawn log-uniform in 1..=`spread` if it has none.
    pub(crate) fn weight_or_draw(&mut self, owner: u32, spread: u64, rng: &mut Rng) -> u64 {
        let i = owner as usize;
        if i >= self.weights.len() {
            self.weights.resize(i + 1, 0);
        }
        if self.weights[i] == 0 {
            let s = spread.max(1) as f64;
            self.weights[i] = ((rng.unit_f64() * s.ln()).exp() as u64).max(1);
        }
        self.weights[i]
    }

    pub(crate) fn has_entries(&self, owner: u32) -> bool {
        self.held.get(owner as usize).is_some_and(|h| !h.is_empty())
    }

    /// Add `delta` (wrapping: a decrease is a wrapped negative) at `place`.
    fn bump(&mut self, place: usize, delta: u64) {
        self.total = self.total.wrapping_add(delta);
        let mut i = place + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].wrapping_add(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Index the ready entry `stamp` of `owner` (whose weight is known).
    /// Entries are added in stamp order.
    pub(crate) fn add(&mut self, owner: u32, stamp: u64) {
        if self.vals.len() + 1 >= self.tree.len() {
            self.compact();
        }
        let w = self.weights[owner as usize];
        let place = self.vals.len();
        self.vals.push(w);
        self.stamps.push(stamp);
        self.owners.push(owner);
        self.bump(place, w);
        let i = owner as usize;
        if i >= self.held.len() {
            self.held.resize_with(i + 1, Vec::new);
        }
        self.held[i].push((stamp, place as u32));
        self.live += 1;
    }

    /// The ready entry `stamp` of `owner` was taken (whoever chose it).
    pub(crate) fn remove(&mut self, owner: u32, stamp: u64) {
        if stamp >= self.since {
            return; // never indexed: pushed after the last choice
        }
        let held = &mut self.held[owner as usize];
        let at = if held[0].0 == stamp {
            0
        } else {
            held.binary_search_by_key(&stamp, |e| e.0)
                .expect("a taken entry is indexed")
        };
        let place = held.remove(at).1 as usize;
        let w = self.vals[place];
        self.vals[place] = 0;
        self.bump(place, w.wrapping_neg());
        self.live -= 1;
    }

    /// Give `owner`'s indexed entries its current weight.
    pub(crate) fn reweigh(&mut self, owner: u32) {
        let w = self.weights[owner as usize];
        for k in 0..self.held[owner as usize].len() {
            let place = self.held[owner as usize][k].1 as usize;
            let old = self.vals[place];
            self.vals[place] = w;
            self.bump(place, w.wrapping_sub(old));
        }
    }

    /// `(stamp, owner)` of the first indexed entry, in ready order, at which
    /// the running sum of weights exceeds `draw` (< `total`).
    pub(crate) fn find(&self, draw: u64) -> (u64, u32) {
        let cap = self.tree.len() - 1;
        let mut at = 0;
        let mut rest = draw;
        let mut step = 1 << (usize::BITS - 1 - cap.leading_zeros());
        while step > 0 {
            let next = at + step;
            if next <= cap && self.tree[next] <= rest {
                at = next;
                rest -= self.tree[next];
            }
            step >>= 1;
        }
        // `at` entries sum to at most `draw`: the pick is the next place.
        debug_assert!(self.vals[at] > rest);
        (self.stamps[at], self.owners[at])
    }

    /// Pack the entries still indexed to the front, with room for as many
    /// again, and rebuild the tree.
    #[inline(never)]
    fn compact(&mut self) {
        let mut k = 0;
        for place in 0..self.vals.len() {
            if self.vals[place] == 0 {
                continue;
            }
            self.vals[k] = self.vals[place];
            self.stamps[k] = self.stamps[place];
            self.owners[k] = self.owners[place];
            k += 1;
        }
        debug_assert_eq!(k, self.live);
        self.vals.truncate(k);
        self.stamps.truncate(k);
        self.owners.truncate(k);
        for &owner in &self.owners {
            self.held[owner as usize].clear();
        }
        for (place, (&owner, &stamp)) in self.owners.iter().zip(&self.stamps).enumerate() {
            self.held[owner as usize].push((stamp, place as u32));
        }
        let cap = (2 * k).max(64);
        self.tree.clear();
        self.tree.resize(cap + 1, 0);
        for (place, &w) in self.vals.iter().enumerate() {
            self.tree[place + 1] = w;
        }
        for i in 1..=cap {
            let j = i + (i & i.wrapping_neg());
            if j <= cap {
                self.tree[j] = self.tree[j].wrapping_add(self.tree[i]);
            }
        }
    }

    /// Forget every indexed entry (the ready list was emptied); entries
    /// stamped from `next_stamp` on are new. Weights are kept.
    pub(crate) fn clear(&mut self, next_stamp: u64) {
        for &owner in &self.owners {
            self.held[owner as usize].clear();
        }
        self.vals.clear();
        self.stamps.clear();
        self.owners.clear();
        self.tree.iter_mut().for_each(|t| *t = 0);
        self.total = 0;
        self.live = 0;
        self.since = next_stamp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first entry, in ready order, with a strictly greater priority.
    fn scan_pick(ready: &[(u64, u32)], prios: &Priorities) -> (u64, u32) {
        let mut best = ready[0];
        for &(stamp, owner) in ready {
            if prios.values[owner as usize] > prios.values[best.1 as usize] {
                best = (stamp, owner);
            }
        }
        best
    }

    #[test]
    fn the_priority_index_picks_as_a_scan_of_the_ready_list() {
        // Priorities from a small range, so equal priorities (broken by the
        // oldest entry) and re-keyed owners are common; owners with several
        // entries; entries taken from anywhere, as step_chosen can.
        let mut rng = Rng::new(7);
        for round in 0..200 {
            let owners = 1 + rng.below(if round % 2 == 0 { 6 } else { 60 }) as u32;
            let mut p = Priorities {
                since: NONE,
                ..Priorities::default()
            };
            let mut ready: Vec<(u64, u32)> = Vec::new();
            let mut next_stamp = 0;
            for _ in 0..300 {
                match rng.below(10) {
                    0..=3 => {
                        let owner = rng.below(u64::from(owners)) as u32;
                        p.get_or_draw(owner, &mut rng, 0);
                        if rng.below(2) == 0 {
                            p.set(owner, 1 + rng.below(4));
                        }
                        p.add(owner, next_stamp);
                        ready.push((next_stamp, owner));
                        next_stamp += 1;
                    }
                    4..=6 if !ready.is_empty() => {
                        let i = rng.below(ready.len() as u64) as usize;
                        let (stamp, owner) = ready.remove(i);
                        p.remove(owner, stamp);
                    }
                    7 | 8 if !ready.is_empty() => {
                        // The picked one, as pct and pos take it.
                        p.settle();
                        let (stamp, owner) = p.pick();
                        p.remove(owner, stamp);
                        ready.retain(|&e| e != (stamp, owner));
                    }
                    9 => {
                        let owner = rng.below(u64::from(owners)) as u32;
                        p.set(owner, 1 + rng.below(4));
                    }
                    _ => {}
                }
                if rng.below(100) == 0 {
                    ready.clear();
                    p.clear_index(next_stamp);
                    p.since = NONE;
                }
                if rng.below(3) == 0 {
                    // Not after every step: emptied nodes may pile up.
                    continue;
                }
                p.settle();
                if !ready.is_empty() {
                    assert_eq!(p.pick(), scan_pick(&ready, &p), "round {round}");
                }
                assert_eq!(p.heap.len(), {
                    let mut o: Vec<u32> = ready.iter().map(|e| e.1).collect();
                    o.sort_unstable();
                    o.dedup();
                    o.len()
                });
            }
        }
    }
}
