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

/// The decision tape, a byte per step while every choice fits in one (almost
/// always: most choices are 0, and a ready list rarely holds 256 entries),
/// four bytes per step after the first choice that does not.
#[derive(Clone, Debug)]
pub enum TapeBuf {
    Narrow(Vec<u8>),
    Wide(Vec<u32>),
}

impl Default for TapeBuf {
    fn default() -> Self {
        TapeBuf::Narrow(Vec::new())
    }
}

impl TapeBuf {
    fn push(&mut self, choice: u32) {
        match self {
            TapeBuf::Narrow(bytes) => match u8::try_from(choice) {
                Ok(b) => bytes.push(b),
                Err(_) => {
                    let mut wide: Vec<u32> = bytes.iter().map(|&b| u32::from(b)).collect();
                    wide.push(choice);
                    *self = TapeBuf::Wide(wide);
                }
            },
            TapeBuf::Wide(words) => words.push(choice),
        }
    }

    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TapeBuf::Narrow(bytes) => bytes.iter().map(|&b| u32::from(b)).collect(),
            TapeBuf::Wide(words) => words.clone(),
        }
    }
}

/// What a run remembers of its steps: the fingerprint, the compact tape and
/// whether every choice was strict always; the full step log only when asked
/// for (`keep_steps`), since it costs 32 bytes a step.
#[derive(Clone, Debug)]
pub struct Trace {
    steps: Option<Vec<StepRecord>>,
    tape: TapeBuf,
    len: usize,
    all_strict: bool,
    hash: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace::new()
    }
}

const FINGERPRINT_KEY: u64 = 0x5EED_100F_5EED_100F;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Trace {
    /// A trace that keeps the tape and fingerprint, not the step log.
    pub fn new() -> Self {
        Trace {
            steps: None,
            tape: TapeBuf::default(),
            len: 0,
            all_strict: true,
            hash: FINGERPRINT_KEY,
        }
    }

    /// A trace that also keeps every step record.
    pub fn with_steps() -> Self {
        Trace {
            steps: Some(Vec::new()),
            ..Trace::new()
        }
    }

    /// Start (or stop) keeping the step log; only steps recorded from now on are kept.
    pub fn keep_steps(&mut self, keep: bool) {
        if keep && self.steps.is_none() {
            self.steps = Some(Vec::new());
        } else if !keep {
            self.steps = None;
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
        self.tape.push(step.choice);
        self.len += 1;
        self.all_strict &= step.strict;
        if let Some(steps) = &mut self.steps {
            steps.push(step);
        }
    }

    /// The step log: every step when kept from the start, else empty.
    pub fn steps(&self) -> &[StepRecord] {
        self.steps.as_deref().unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fingerprint of everything recorded so far (includes the step count).
    pub fn fingerprint(&self) -> u64 {
        mix(self.hash ^ self.len as u64)
    }

    /// Did every decision keep asyncio's documented order?
    pub fn all_strict(&self) -> bool {
        self.all_strict
    }

    /// The decision tape: the chosen index at every step.
    pub fn tape(&self) -> Vec<u32> {
        self.tape.to_vec()
    }

    /// The decision tape as stored: one byte or four per step.
    pub fn tape_buf(&self) -> &TapeBuf {
        &self.tape
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
        let mut a = Trace::with_steps();
        let mut b = Trace::new();
        a.record(step(1));
        a.record(step(2));
        b.record(step(2));
        b.record(step(1));
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = Trace::with_steps();
        c.record(step(1));
        c.record(step(2));
        assert_eq!(a.fingerprint(), c.fingerprint());
        let mut b = Trace::with_steps();
        b.record(step(2));
        b.record(step(1));
        assert_eq!(first_divergence(a.steps(), b.steps()), Some(0));
        assert_eq!(first_divergence(a.steps(), c.steps()), None);
        c.record(step(3));
        assert_eq!(first_divergence(a.steps(), c.steps()), Some(2));
    }

    #[test]
    fn the_tape_widens_when_a_choice_needs_it_and_the_log_is_optional() {
        let mut t = Trace::new();
        for choice in [0, 3, 255, 256, 1] {
            t.record(StepRecord { choice, ..step(7) });
        }
        assert_eq!(t.tape(), vec![0, 3, 255, 256, 1]);
        assert!(matches!(t.tape_buf(), TapeBuf::Wide(_)));
        assert!(t.steps().is_empty());
        assert_eq!(t.len(), 5);
        let mut kept = Trace::with_steps();
        for choice in [0, 3, 255, 256, 1] {
            kept.record(StepRecord { choice, ..step(7) });
        }
        assert_eq!(kept.steps().len(), 5);
        assert_eq!(kept.fingerprint(), t.fingerprint());
        assert!(t.all_strict());
        t.record(StepRecord {
            strict: false,
            ..step(8)
        });
        assert!(!t.all_strict());
    }
}
