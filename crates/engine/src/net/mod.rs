//! The simulated network's data plane: the `Network` that owns hosts (crash,
//! restart) and ties links, streams and datagrams to one seeded fault stream.
//!
//! One module per mechanism, each adding its part of `Network`'s methods:
//! `link` (link configuration, latency draws, partitions), `stream`
//! (ordered byte pipes), `dgram` (datagrams), [`dist`] (latency
//! distributions). Their public types are re-exported here, so paths such as
//! `net::LinkCfg` are unchanged.
//!
//! Nothing here knows about Python or sockets. The binding layer turns the
//! returned arrival times into loop timers (`call_at`) and asks [`Network::take`]
//! for what is due when a timer fires, so every delivery is a step the seeded
//! scheduler orders and the trace records.
//!
//! Model:
//! - A *stream* is two [`Pipe`]s, one per direction. A pipe is a FIFO of
//!   segments (`Open`, `Data`, `Fin`, `Rst`). Each segment's arrival time is
//!   `max(previous arrival, now + latency draw)`, so bytes are never reordered,
//!   and nothing is ever lost unless the stream is reset.
//! - A partition blocks a directed pair of hosts. Segments sent across a
//!   blocked pair, and segments still in flight when the partition is seen at
//!   delivery time, are *held*; [`Network::unblock`] re-times them (fresh
//!   latency draws, order kept), like TCP retransmission after the path heals.
//! - A datagram is delivered 0, 1 or 2 times (loss, duplication), in order per
//!   link unless picked for reordering (then it gets an extra latency draw and
//!   may be overtaken). Datagrams across a partition are dropped.
//! - A crashed host drops everything queued to or from it; each stream it had
//!   sends a reset to the peer (subject to latency and partitions).
//!
//! Iteration is over `BTreeMap`s and `Vec`s only, so results never depend on
//! hashing or addresses.

mod dgram;
pub mod dist;
mod link;
mod stream;

use std::collections::{BTreeMap, BTreeSet};

use crate::rng::Rng;
use dgram::Datagram;
pub use dist::Dist;
pub use link::LinkCfg;
pub use stream::{Pipe, SegKind, Taken};

pub type HostId = u32;
pub type PipeId = u64;
pub type DgramId = u64;

#[derive(Clone, Debug)]
struct HostState {
    up: bool,
    incarnation: u32,
}

/// Counters for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub streams_opened: u64,
    pub bytes_sent: u64,
    pub bytes_delivered: u64,
    pub segments_held: u64,
    pub resets: u64,
    pub datagrams_sent: u64,
    pub datagrams_delivered: u64,
    pub datagrams_lost: u64,
    pub datagrams_duplicated: u64,
    pub datagrams_reordered: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum NetError {
    UnknownHost(HostId),
    UnknownPipe(PipeId),
    Invalid(String),
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::UnknownHost(h) => write!(f, "unknown host id {h}"),
            NetError::UnknownPipe(p) => write!(f, "unknown or finished stream direction {p}"),
            NetError::Invalid(m) => f.write_str(m),
        }
    }
}

pub struct Network {
    rng: Rng,
    hosts: Vec<HostState>,
    default_link: LinkCfg,
    loopback: LinkCfg,
    links: BTreeMap<(HostId, HostId), LinkCfg>,
    blocked: BTreeSet<(HostId, HostId)>,
    pipes: BTreeMap<PipeId, Pipe>,
    next_pipe: PipeId,
    dgrams: BTreeMap<DgramId, Datagram>,
    dgram_last: BTreeMap<(HostId, HostId), u64>,
    next_dgram: DgramId,
    stats: NetStats,
}

impl Network {
    /// A network whose faults come from the `"net"` stream of `seed`: drawing
    /// latencies never perturbs the scheduler's choices.
    pub fn new(seed: u64, default_latency: Dist) -> Self {
        Network {
            rng: Rng::stream(seed, "net"),
            hosts: Vec::new(),
            default_link: LinkCfg::with_latency(default_latency),
            loopback: LinkCfg::with_latency(Dist::Fixed(10_000)),
            links: BTreeMap::new(),
            blocked: BTreeSet::new(),
            pipes: BTreeMap::new(),
            next_pipe: 1,
            dgrams: BTreeMap::new(),
            dgram_last: BTreeMap::new(),
            next_dgram: 1,
            stats: NetStats::default(),
        }
    }

    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    pub fn add_host(&mut self) -> HostId {
        self.hosts.push(HostState {
            up: true,
            incarnation: 0,
        });
        (self.hosts.len() - 1) as HostId
    }

    fn host(&self, h: HostId) -> Result<&HostState, NetError> {
        self.hosts.get(h as usize).ok_or(NetError::UnknownHost(h))
    }

    pub fn host_up(&self, h: HostId) -> Result<bool, NetError> {
        Ok(self.host(h)?.up)
    }

    pub fn incarnation(&self, h: HostId) -> Result<u32, NetError> {
        Ok(self.host(h)?.incarnation)
    }

    // -- crash / restart --------------------------------------------------

    /// Power off `h`: everything queued to or from it is dropped and each of
    /// its streams sends a reset to the peer. Returns delivery timers.
    pub fn crash(&mut self, h: HostId, now: u64) -> Result<Vec<(PipeId, u64)>, NetError> {
        self.host(h)?;
        let ids: Vec<PipeId> = self
            .pipes
            .iter()
            .filter(|(_, p)| p.src == h || p.dst == h)
            .map(|(id, _)| *id)
            .collect();
        // Reset first (while the host still counts as up for the path check
        // of its own outgoing resets), then mark it down.
        let mut resets = Vec::new();
        for id in &ids {
            let Some(p) = self.pipes.get(id) else {
                continue;
            };
            if p.src == h && p.dst != h && !p.dead && !p.reset {
                resets.push(*id);
            }
        }
        let mut wake = Vec::new();
        for id in resets {
            if let Some(at) = self.send_rst(id, now)? {
                wake.push((id, at));
            }
            if let Some(p) = self.pipes.get_mut(&id) {
                p.sender_done = true;
            }
        }
        for id in ids {
            let Some(p) = self.pipes.get_mut(&id) else {
                continue;
            };
            if p.dst == h {
                // The (live) sender may still write: its bytes go nowhere.
                p.dead = true;
                p.queue.clear();
                p.pending_bytes = 0;
                if p.src == h {
                    p.sender_done = true;
                    self.gc(id);
                }
            }
        }
        let st = &mut self.hosts[h as usize];
        st.up = false;
        st.incarnation += 1;
        // Resets already in flight stay scheduled: they left before the crash.
        Ok(wake)
    }

    pub fn restart(&mut self, h: HostId) -> Result<(), NetError> {
        self.host(h)?;
        self.hosts[h as usize].up = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
