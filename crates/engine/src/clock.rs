//! Virtual time and the timer heap.
//!
//! Time is an integer count of nanoseconds, so it never loses resolution the
//! way a float clock does after months of virtual time. Timers are ordered by
//! `(deadline, sequence number)`: equal deadlines keep their scheduling order,
//! and the strategy reorders them once they are ready.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A deadline that never arrives (`call_later(math.inf)`).
pub const NEVER: u64 = u64::MAX;

struct Timer<T> {
    deadline: u64,
    seq: u64,
    payload: T,
}

impl<T> PartialEq for Timer<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl<T> Eq for Timer<T> {}
impl<T> PartialOrd for Timer<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Timer<T> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

/// Convert seconds (as asyncio passes them) to a nanosecond deadline such that
/// `ns_to_secs(deadline) >= secs`: a timer never fires "early" in float terms.
pub fn secs_to_ns_ceil(secs: f64) -> u64 {
    if secs.is_nan() || secs <= 0.0 {
        return 0;
    }
    if secs >= 1.8e10 {
        return NEVER; // ~570 years: treated as never
    }
    let mut ns = (secs * 1e9).ceil() as u64;
    while ns_to_secs(ns) < secs {
        ns += 1;
    }
    // The product can round up past the exact value, and `ceil` then lands one
    // nanosecond late: `ns_to_secs(x)` would come back as `x + 1`, the same
    // deadline as a timer at `x + 1`, and the two could run in either order.
    // Take the smallest deadline that is still not early.
    while ns > 0 && ns_to_secs(ns - 1) >= secs {
        ns -= 1;
    }
    ns
}

pub fn ns_to_secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

pub struct TimerHeap<T> {
    heap: BinaryHeap<Timer<T>>,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
        }
    }
}

impl<T> TimerHeap<T> {
    pub fn push(&mut self, deadline: u64, seq: u64, payload: T) {
        self.heap.push(Timer {
            deadline,
            seq,
            payload,
        });
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Deadline of the earliest timer, if any.
    pub fn peek_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|t| t.deadline)
    }

    /// The earliest timer's payload, if any.
    pub fn peek(&self) -> Option<&T> {
        self.heap.peek().map(|t| &t.payload)
    }

    /// Pop the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, u64, T)> {
        if self.heap.peek()?.deadline <= now {
            self.heap.pop().map(|t| (t.deadline, t.seq, t.payload))
        } else {
            None
        }
    }

    /// Pop the earliest timer unconditionally.
    pub fn pop(&mut self) -> Option<(u64, u64, T)> {
        self.heap.pop().map(|t| (t.deadline, t.seq, t.payload))
    }

    /// Take out every timer for which `keep` is false (used to purge
    /// cancelled timers), returning their payloads for the caller to drop.
    pub fn remove_unless(&mut self, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
        let (kept, removed): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heap)
            .into_iter()
            .partition(|t| keep(&t.payload));
        self.heap = BinaryHeap::from(kept);
        removed.into_iter().map(|t| t.payload).collect()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.heap.drain().map(|t| t.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_by_sequence() {
        let mut h = TimerHeap::default();
        h.push(20, 0, "late");
        h.push(10, 2, "b");
        h.push(10, 1, "a");
        assert_eq!(h.pop_due(5), None);
        assert_eq!(h.pop_due(10).map(|t| t.2), Some("a"));
        assert_eq!(h.pop_due(10).map(|t| t.2), Some("b"));
        assert_eq!(h.pop_due(10), None);
        assert_eq!(h.peek_deadline(), Some(20));
    }

    #[test]
    fn conversion_never_fires_early() {
        for secs in [0.1, 0.3, 1.0 / 3.0, 12_345.678_9, 1e-9, 86400.0 * 365.0] {
            let ns = secs_to_ns_ceil(secs);
            assert!(ns_to_secs(ns) >= secs, "{secs}");
            assert!(ns_to_secs(ns) - secs < 1e-6, "{secs}");
        }
        assert_eq!(secs_to_ns_ceil(-1.0), 0);
        assert_eq!(secs_to_ns_ceil(f64::INFINITY), NEVER);
    }

    #[test]
    fn nanosecond_deadlines_survive_the_round_trip_through_seconds() {
        // Issue 9: datagrams one nanosecond apart came back with one deadline
        // and could swap. Every deadline handed out as seconds must map back.
        let mut x: u64 = 1;
        for i in 0..200_000u64 {
            for ns in [
                i,
                1_000_000_000 + i * 7_919,
                86_400_000_000_000 + i * 104_729,
                x,
            ] {
                assert_eq!(secs_to_ns_ceil(ns_to_secs(ns)), ns, "{ns}");
            }
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % (1u64 << 52);
        }
    }
}
