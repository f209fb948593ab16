//! Strategies: how the next ready entry is chosen.
//!
//! Every strategy answers one question per step: which index, among the ready
//! entries listed oldest first, runs next. Index 0 everywhere is exactly stock
//! asyncio's order, so the recorded indices (the decision tape) replay any
//! strategy and shrink towards asyncio's own schedule.

use crate::rng::Rng;

/// What a strategy may look at for one ready entry.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// Task ordinal the entry belongs to (0 = the loop itself).
    pub owner: u32,
    /// Non-zero when the entry was released from the timer heap; entries
    /// released together (same deadline, same release) share the value.
    pub timer_group: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StrategySpec {
    /// Stock asyncio order (with virtual time): a deterministic baseline.
    Fifo,
    /// Per loop iteration, a seeded permutation of the ready batch.
    Shuffle,
    /// Per step, a uniformly chosen ready entry.
    Random,
    /// Probabilistic concurrency testing with bug depth `depth`; `steps` is
    /// the estimated run length used to place the `depth - 1` change points.
    Pct { depth: u32, steps: u64 },
    /// Partial-order sampling: the task that just ran draws a fresh priority.
    Pos,
    /// asyncio's documented FIFO order for call_soon; only timers that become
    /// due together are reordered (schedules a real loop can also produce).
    Strict,
    /// Follow a recorded decision tape; past its end, index 0 (FIFO).
    Replay { tape: Vec<u32> },
}

/// The strategy names a run may choose, in the order users are shown them.
/// The one list: `parse` accepts exactly these, and the extension exports it
/// as `seedloop._engine.STRATEGIES` for the Python side ("replay" is not here:
/// it is chosen by passing a tape, never by name).
pub const STRATEGIES: [&str; 6] = ["shuffle", "random", "pct", "pos", "strict", "fifo"];

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
            StrategySpec::Replay { .. } => "replay",
        }
    }
}

/// Priority table keyed by task ordinal (ordinals are dense, by creation).
#[derive(Default, Debug)]
pub(crate) struct Priorities {
    values: Vec<u64>,
}

impl Priorities {
    fn get_or_draw(&mut self, owner: u32, rng: &mut Rng, floor: u64) -> u64 {
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

    fn set(&mut self, owner: u32, value: u64) {
        let i = owner as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, 0);
        }
        self.values[i] = value;
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

#[derive(Debug)]
pub(crate) enum Strategy {
    Fifo,
    Shuffle {
        batch_left: usize,
    },
    Random,
    Pct {
        depth: u32,
        change_points: Vec<u64>,
        fallback_after: u64,
        prios: Priorities,
    },
    Pos {
        prios: Priorities,
    },
    Strict,
    Replay {
        tape: Vec<u32>,
        /// The first step whose entry was past the ready list (clamped).
        overrun: Option<TapeOverrun>,
    },
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
            StrategySpec::Fifo => Strategy::Fifo,
            StrategySpec::Shuffle => Strategy::Shuffle { batch_left: 0 },
            StrategySpec::Random => Strategy::Random,
            StrategySpec::Pct { depth, steps } => {
                let k = (*steps).max(1);
                let mut change_points: Vec<u64> =
                    (1..(*depth).max(1)).map(|_| 1 + rng.below(k)).collect();
                change_points.sort_unstable();
                Strategy::Pct {
                    depth: (*depth).max(1),
                    change_points,
                    // Past this many steps PCT's strict priorities could starve
                    // a polling loop forever: switch to random choices.
                    fallback_after: k.saturating_mul(4).max(10_000),
                    prios: Priorities::default(),
                }
            }
            StrategySpec::Pos => Strategy::Pos {
                prios: Priorities::default(),
            },
            StrategySpec::Strict => Strategy::Strict,
            StrategySpec::Replay { tape } => Strategy::Replay {
                tape: tape.clone(),
                overrun: None,
            },
        }
    }

    /// The first clamped tape entry, when replaying a tape.
    pub(crate) fn tape_overrun(&self) -> Option<TapeOverrun> {
        match self {
            Strategy::Replay { overrun, .. } => *overrun,
            _ => None,
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
        matches!(
            self,
            Strategy::Pct { .. } | Strategy::Pos { .. } | Strategy::Strict
        )
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
            Strategy::Pct {
                depth,
                change_points,
                fallback_after,
                prios,
            } => {
                if step >= *fallback_after {
                    return rng.below(n as u64) as usize;
                }
                let floor = u64::from(*depth);
                let mut pick = prios.pick(ready, rng, floor);
                if let Some(pos) = change_points.iter().position(|&c| c == step) {
                    // The i-th change point demotes the running task below
                    // every initial priority (and below earlier demotions).
                    change_points[pos] = u64::MAX;
                    let demoted = floor - 1 - pos as u64;
                    prios.set(ready[pick].owner, demoted.max(1));
                    pick = prios.pick(ready, rng, floor);
                }
                pick
            }
            Strategy::Pos { prios } => {
                let pick = prios.pick(ready, rng, 0);
                prios.set(ready[pick].owner, 1 + (rng.next_u64() >> 2));
                pick
            }
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
            "unknown strategy \"bogus\"; choose one of: shuffle, random, pct, pos, strict, fifo"
        );
    }
}
