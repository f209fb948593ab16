//! The step log of a run and its fingerprint.
//!
//! Every executed step is recorded: which entry ran (its creation sequence
//! number), on behalf of which task (creation ordinal, 0 = the loop itself),
//! at which virtual time, and which index the strategy chose among the ready
//! entries (the decision tape). The fingerprint is a fixed-key 64-bit hash
//! over all of it, so two runs agree on it exactly when they took the same
//! decisions at the same times.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepRecord {
    pub seq: u64,
    pub owner: u32,
    /// Index chosen among the ready entries, oldest first.
    pub choice: u32,
    pub now_ns: u64,
    /// The choice keeps asyncio's documented order (FIFO, or a tie between
    /// timers due together), so a real event loop can take it too.
    pub strict: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Trace {
    steps: Vec<StepRecord>,
    hash: u64,
}

const FINGERPRINT_KEY: u64 = 0x5EED_100F_5EED_100F;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Trace {
    pub fn new() -> Self {
        Trace {
            steps: Vec::new(),
            hash: FINGERPRINT_KEY,
        }
    }

    pub fn record(&mut self, step: StepRecord) {
        for word in [
            step.seq,
            u64::from(step.owner),
            u64::from(step.choice),
            step.now_ns,
        ] {
            self.hash = mix(self.hash ^ word).wrapping_add(0x9E37_79B9_7F4A_7C15);
        }
        self.steps.push(step);
    }

    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Fingerprint of everything recorded so far (includes the step count).
    pub fn fingerprint(&self) -> u64 {
        mix(self.hash ^ self.steps.len() as u64)
    }

    /// Did every decision keep asyncio's documented order?
    pub fn all_strict(&self) -> bool {
        self.steps.iter().all(|s| s.strict)
    }

    /// The decision tape: the chosen index at every step.
    pub fn tape(&self) -> Vec<u32> {
        self.steps.iter().map(|s| s.choice).collect()
    }
}

/// Index of the first step where two step logs differ, if they differ.
pub fn first_divergence(a: &[StepRecord], b: &[StepRecord]) -> Option<usize> {
    let common = a.len().min(b.len());
    (0..common)
        .find(|&i| a[i] != b[i])
        .or(if a.len() != b.len() {
            Some(common)
        } else {
            None
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(seq: u64) -> StepRecord {
        StepRecord {
            seq,
            owner: 1,
            choice: 0,
            now_ns: 0,
            strict: true,
        }
    }

    #[test]
    fn fingerprint_depends_on_order_and_length() {
        let mut a = Trace::new();
        let mut b = Trace::new();
        a.record(step(1));
        a.record(step(2));
        b.record(step(2));
        b.record(step(1));
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = Trace::new();
        c.record(step(1));
        c.record(step(2));
        assert_eq!(a.fingerprint(), c.fingerprint());
        assert_eq!(first_divergence(a.steps(), b.steps()), Some(0));
        assert_eq!(first_divergence(a.steps(), c.steps()), None);
        c.record(step(3));
        assert_eq!(first_divergence(a.steps(), c.steps()), Some(2));
    }
}
