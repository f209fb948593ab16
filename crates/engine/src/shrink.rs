//! Minimising a failing decision tape, Hypothesis-style.
//!
//! A tape is the index chosen among the ready entries at each step; 0 is
//! stock asyncio's choice, so "simpler" means fewer non-zero choices, then a
//! shorter tape, then smaller choices. The shrinker proposes candidates; the
//! caller replays each and reports whether it still fails (and the tape the
//! replay actually took, which may differ once choices are clamped). It is a
//! state machine so the engine stays free of Python.

/// How simple a tape is: (non-zero choices, length without trailing zeros, sum).
pub fn complexity(tape: &[u32]) -> (usize, usize, u64) {
    let len = tape.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    let nonzero = tape[..len].iter().filter(|&&c| c != 0).count();
    let sum = tape[..len].iter().map(|&c| u64::from(c)).sum();
    (nonzero, len, sum)
}

/// Drop trailing zeros: past a tape's end the replay chooses 0 anyway.
pub fn trim(mut tape: Vec<u32>) -> Vec<u32> {
    let len = complexity(&tape).1;
    tape.truncate(len);
    tape
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Keep only a prefix (everything after it becomes FIFO).
    Truncate,
    /// Zero a run of `chunk` consecutive choices.
    ZeroChunk,
    /// Lower one choice (to 1, then by one).
    Lower,
}

pub struct Shrinker {
    best: Vec<u32>,
    pass: Pass,
    cursor: usize,
    chunk: usize,
    lower_step: u8,
    improved_this_round: bool,
    runs: u64,
    budget: u64,
    pending: Option<Vec<u32>>,
}

impl Shrinker {
    pub fn new(tape: Vec<u32>, budget: u64) -> Self {
        Shrinker {
            best: trim(tape),
            pass: Pass::Truncate,
            cursor: 0,
            chunk: 8,
            lower_step: 0,
            improved_this_round: false,
            runs: 0,
            budget,
            pending: None,
        }
    }

    pub fn best(&self) -> &[u32] {
        &self.best
    }

    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// The next tape to try, or None when done (fixpoint or budget spent).
    pub fn next_candidate(&mut self) -> Option<Vec<u32>> {
        while self.runs < self.budget {
            if let Some(candidate) = self.propose() {
                if complexity(&candidate) < complexity(&self.best) {
                    self.runs += 1;
                    self.pending = Some(candidate.clone());
                    return Some(candidate);
                }
                continue;
            }
            // This pass is exhausted: move to the next one.
            match self.pass {
                Pass::Truncate => self.start(Pass::ZeroChunk),
                Pass::ZeroChunk if self.chunk > 1 => {
                    self.chunk /= 2;
                    self.cursor = 0;
                }
                Pass::ZeroChunk => self.start(Pass::Lower),
                Pass::Lower => {
                    if !self.improved_this_round {
                        return None;
                    }
                    self.improved_this_round = false;
                    self.chunk = 8;
                    self.start(Pass::Truncate);
                }
            }
        }
        None
    }

    fn start(&mut self, pass: Pass) {
        self.pass = pass;
        self.cursor = 0;
        self.lower_step = 0;
    }

    /// Record the outcome of the last candidate. `actual` is the tape the
    /// replay really took (used when it is simpler still).
    pub fn report(&mut self, still_fails: bool, actual: Option<Vec<u32>>) {
        let Some(candidate) = self.pending.take() else {
            return;
        };
        if !still_fails {
            return;
        }
        let mut winner = trim(candidate);
        if let Some(actual) = actual {
            let actual = trim(actual);
            if complexity(&actual) <= complexity(&winner) {
                winner = actual;
            }
        }
        if complexity(&winner) < complexity(&self.best) {
            self.best = winner;
            self.improved_this_round = true;
        }
    }

    fn propose(&mut self) -> Option<Vec<u32>> {
        let n = self.best.len();
        match self.pass {
            Pass::Truncate => {
                // Prefixes of length 0, n/8, n/4, n/2, 3n/4, 7n/8.
                const FRACTIONS: [(usize, usize); 6] =
                    [(0, 1), (1, 8), (1, 4), (1, 2), (3, 4), (7, 8)];
                let (num, den) = *FRACTIONS.get(self.cursor)?;
                self.cursor += 1;
                Some(self.best[..n * num / den].to_vec())
            }
            Pass::ZeroChunk => {
                while self.cursor < n {
                    let start = self.cursor;
                    self.cursor += 1;
                    let end = (start + self.chunk).min(n);
                    if self.best[start] != 0 {
                        let mut c = self.best.clone();
                        c[start..end].iter_mut().for_each(|x| *x = 0);
                        return Some(c);
                    }
                }
                None
            }
            Pass::Lower => {
                while self.cursor < n {
                    let i = self.cursor;
                    let v = self.best[i];
                    let target = match self.lower_step {
                        0 if v > 1 => Some(1),
                        1 if v > 2 => Some(v - 1),
                        _ => None,
                    };
                    self.lower_step += 1;
                    if self.lower_step > 1 {
                        self.lower_step = 0;
                        self.cursor += 1;
                    }
                    if let Some(t) = target {
                        let mut c = self.best.clone();
                        c[i] = t;
                        return Some(c);
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive the shrinker with a failure predicate over tapes.
    fn shrink(tape: Vec<u32>, fails: impl Fn(&[u32]) -> bool) -> Vec<u32> {
        let mut s = Shrinker::new(tape, 10_000);
        while let Some(c) = s.next_candidate() {
            let f = fails(&c);
            s.report(f, None);
        }
        s.best().to_vec()
    }

    #[test]
    fn finds_the_single_essential_choice() {
        let mut tape = vec![3, 0, 2, 5, 1, 0, 4, 2, 2, 1, 3, 0, 0, 7, 1];
        tape[9] = 2;
        // Fails whenever step 9 chooses something other than FIFO.
        let best = shrink(tape, |t| t.get(9).copied().unwrap_or(0) != 0);
        assert_eq!(best, vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn keeps_every_choice_that_matters() {
        let tape = vec![2, 2, 2, 2, 2, 2];
        let best = shrink(tape, |t| {
            t.first().copied().unwrap_or(0) >= 2 && t.get(4).copied().unwrap_or(0) != 0
        });
        assert_eq!(best, vec![2, 0, 0, 0, 1]);
    }

    #[test]
    fn never_returns_a_passing_tape_and_respects_budget() {
        let mut s = Shrinker::new(vec![1; 50], 3);
        let mut n = 0;
        while let Some(_c) = s.next_candidate() {
            n += 1;
            s.report(false, None);
        }
        assert_eq!(n, 3);
        assert_eq!(s.best(), &[1; 50][..]);
    }

    #[test]
    fn complexity_orders_by_nonzero_then_length() {
        assert!(complexity(&[0, 0, 5]) < complexity(&[1, 1]));
        assert!(complexity(&[1, 0, 0]) < complexity(&[0, 0, 1]));
        assert_eq!(trim(vec![1, 0, 2, 0, 0]), vec![1, 0, 2]);
    }
}
