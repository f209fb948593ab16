//! Latency distributions, drawn from the network's own seeded stream.

use crate::rng::Rng;

/// A delay distribution in integer nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Always `ns`.
    Fixed(u64),
    /// Uniform integer in `lo..=hi`.
    Uniform { lo: u64, hi: u64 },
    /// Normal with `mean`/`std`, clamped below at `min` (Box-Muller).
    Normal { mean: u64, std: u64, min: u64 },
    /// `offset` + exponential with mean `mean` (a long tail).
    Exponential { mean: u64, offset: u64 },
}

/// Upper bound of any single draw (one virtual hour), so a heavy tail never
/// overflows the clock.
pub const MAX_DRAW: u64 = 3_600_000_000_000;

impl Dist {
    /// Check the parameters; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Dist::Uniform { lo, hi } if lo > hi => Err(format!(
                "uniform latency needs lo <= hi, got lo={lo}ns hi={hi}ns"
            )),
            _ => Ok(()),
        }
    }

    pub fn draw(&self, rng: &mut Rng) -> u64 {
        let v = match *self {
            Dist::Fixed(ns) => ns,
            Dist::Uniform { lo, hi } => {
                if hi <= lo {
                    lo
                } else {
                    lo + rng.below(hi - lo + 1)
                }
            }
            Dist::Normal { mean, std, min } => {
                // Box-Muller; 1 - u is in (0, 1] so ln is finite.
                let u1 = 1.0 - rng.unit_f64();
                let u2 = rng.unit_f64();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let x = mean as f64 + z * std as f64;
                if x.is_finite() && x > min as f64 {
                    x.round().min(MAX_DRAW as f64) as u64
                } else {
                    min
                }
            }
            Dist::Exponential { mean, offset } => {
                let u = 1.0 - rng.unit_f64();
                let x = -u.ln() * mean as f64;
                offset.saturating_add(x.round().min(MAX_DRAW as f64) as u64)
            }
        };
        v.min(MAX_DRAW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_are_seeded() {
        let d = Dist::Uniform {
            lo: 1_000,
            hi: 5_000,
        };
        let mut a = Rng::stream(3, "net");
        let mut b = Rng::stream(3, "net");
        for _ in 0..1000 {
            let x = d.draw(&mut a);
            assert!((1_000..=5_000).contains(&x));
            assert_eq!(x, d.draw(&mut b));
        }
    }

    #[test]
    fn normal_is_clamped_and_centred() {
        let d = Dist::Normal {
            mean: 10_000,
            std: 5_000,
            min: 2_000,
        };
        let mut r = Rng::new(1);
        let xs: Vec<u64> = (0..10_000).map(|_| d.draw(&mut r)).collect();
        assert!(xs.iter().all(|&x| x >= 2_000));
        let mean = xs.iter().sum::<u64>() as f64 / xs.len() as f64;
        assert!((9_000.0..11_500.0).contains(&mean), "{mean}");
    }

    #[test]
    fn exponential_has_offset_and_mean() {
        let d = Dist::Exponential {
            mean: 1_000,
            offset: 500,
        };
        let mut r = Rng::new(2);
        let xs: Vec<u64> = (0..20_000).map(|_| d.draw(&mut r)).collect();
        assert!(xs.iter().all(|&x| x >= 500));
        let mean = xs.iter().sum::<u64>() as f64 / xs.len() as f64;
        assert!((1_400.0..1_600.0).contains(&mean), "{mean}");
    }

    #[test]
    fn bad_uniform_is_rejected() {
        assert!(Dist::Uniform { lo: 5, hi: 1 }.validate().is_err());
        assert!(Dist::Fixed(0).validate().is_ok());
    }
}
