//! Links and partitions: per-link latency and datagram faults, and which directed host pairs are cut.

use super::{Dist, HostId, NetError, Network, PipeId};

/// Per directed link: latency and datagram faults.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkCfg {
    pub latency: Dist,
    /// Probability in `[0, 1]` that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram skips the per-link order (extra delay).
    pub reorder: f64,
}

impl LinkCfg {
    pub fn with_latency(latency: Dist) -> Self {
        LinkCfg {
            latency,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.latency.validate()?;
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability in [0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

impl Network {
    // -- configuration ----------------------------------------------------

    pub fn set_default_link(&mut self, cfg: LinkCfg) -> Result<(), NetError> {
        cfg.validate().map_err(NetError::Invalid)?;
        self.default_link = cfg;
        Ok(())
    }

    /// Configure the directed link `a -> b` (`a == b` is the host's loopback).
    pub fn set_link(&mut self, a: HostId, b: HostId, cfg: LinkCfg) -> Result<(), NetError> {
        self.host(a)?;
        self.host(b)?;
        cfg.validate().map_err(NetError::Invalid)?;
        self.links.insert((a, b), cfg);
        Ok(())
    }

    pub fn link(&self, a: HostId, b: HostId) -> &LinkCfg {
        match self.links.get(&(a, b)) {
            Some(cfg) => cfg,
            None if a == b => &self.loopback,
            None => &self.default_link,
        }
    }

    /// One latency draw for `a -> b`.
    pub fn draw_latency(&mut self, a: HostId, b: HostId) -> u64 {
        let dist = self.link(a, b).latency.clone();
        dist.draw(&mut self.rng)
    }

    // -- partitions -------------------------------------------------------

    /// Cut the directed path `a -> b` (a host never partitions from itself).
    pub fn block(&mut self, a: HostId, b: HostId) -> Result<(), NetError> {
        self.host(a)?;
        self.host(b)?;
        if a != b {
            self.blocked.insert((a, b));
        }
        Ok(())
    }

    pub fn is_blocked(&self, a: HostId, b: HostId) -> bool {
        self.blocked.contains(&(a, b))
    }

    /// Whether `a -> b` currently carries packets (both up, not blocked).
    pub fn path_open(&self, a: HostId, b: HostId) -> bool {
        let up = |h: HostId| self.hosts.get(h as usize).is_some_and(|s| s.up);
        up(a) && up(b) && !self.is_blocked(a, b)
    }

    /// Restore `a -> b`. Held segments get fresh arrival times (order kept);
    /// returns the `(pipe, at)` delivery timers to schedule.
    pub fn unblock(&mut self, a: HostId, b: HostId, now: u64) -> Vec<(PipeId, u64)> {
        if !self.blocked.remove(&(a, b)) {
            return Vec::new();
        }
        let ids: Vec<PipeId> = self
            .pipes
            .iter()
            .filter(|(_, p)| p.src == a && p.dst == b)
            .map(|(id, _)| *id)
            .collect();
        let mut wake = Vec::new();
        for id in ids {
            if let Some(at) = self.retime(id, now) {
                wake.push((id, at));
            }
        }
        wake
    }

    /// Remove every partition; returns the delivery timers to schedule.
    pub fn heal_all(&mut self, now: u64) -> Vec<(PipeId, u64)> {
        let pairs: Vec<(HostId, HostId)> = self.blocked.iter().copied().collect();
        let mut wake = Vec::new();
        for (a, b) in pairs {
            wake.extend(self.unblock(a, b, now));
        }
        wake
    }
}
