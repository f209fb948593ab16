//! The simulated network's data plane: hosts, directed links, ordered byte
//! streams and datagrams, with every fault drawn from one seeded stream.
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

pub mod dist;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::rng::Rng;
pub use dist::Dist;

pub type HostId = u32;
pub type PipeId = u64;
pub type DgramId = u64;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegKind {
    Open,
    Data(Vec<u8>),
    Fin,
    Rst,
}

#[derive(Debug)]
struct Segment {
    /// Arrival time; `None` while held by a partition.
    at: Option<u64>,
    kind: SegKind,
}

/// One direction of a stream.
#[derive(Debug)]
pub struct Pipe {
    pub src: HostId,
    pub dst: HostId,
    queue: VecDeque<Segment>,
    last_arrival: u64,
    /// A delivery timer is outstanding (the binding has scheduled one).
    armed: bool,
    pending_bytes: usize,
    /// The sender queued a FIN or RST: nothing more will be sent.
    sender_done: bool,
    /// The receiver is gone: queued and future segments are dropped.
    dead: bool,
    /// A reset was sent: the stream is over in this direction.
    reset: bool,
}

/// What one delivery hands to the receiver, in this order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    pub open: bool,
    pub data: Vec<u8>,
    pub fin: bool,
    pub rst: bool,
    /// When the next segment is due (a timer must be scheduled then), if any.
    pub next_at: Option<u64>,
}

#[derive(Debug)]
struct Datagram {
    dst: HostId,
    dst_incarnation: u32,
    data: Vec<u8>,
}

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

    /// Give held segments of `id` arrival times; arm it if it needs a timer.
    fn retime(&mut self, id: PipeId, now: u64) -> Option<u64> {
        let (src, dst, held) = {
            let p = self.pipes.get(&id)?;
            (
                p.src,
                p.dst,
                p.queue.iter().filter(|s| s.at.is_none()).count(),
            )
        };
        let draws: Vec<u64> = (0..held).map(|_| self.draw_latency(src, dst)).collect();
        let p = self.pipes.get_mut(&id)?;
        let mut draws = draws.into_iter();
        let mut prev = p.last_arrival;
        for seg in p.queue.iter_mut() {
            let at = match seg.at {
                Some(t) => t,
                None => now.saturating_add(draws.next().unwrap_or(0)).max(prev),
            };
            seg.at = Some(at);
            prev = prev.max(at);
        }
        p.last_arrival = prev;
        if p.armed {
            return None;
        }
        let head = p.queue.front()?.at?;
        p.armed = true;
        Some(head)
    }

    // -- streams ----------------------------------------------------------

    /// Open a stream `a <-> b`. The `a -> b` pipe starts with an `Open`
    /// segment due at `open_at` (the server-side accept) and is armed: the
    /// caller schedules a delivery at `open_at`. Returns `(a->b, b->a)`.
    pub fn open_stream(
        &mut self,
        a: HostId,
        b: HostId,
        open_at: u64,
    ) -> Result<(PipeId, PipeId), NetError> {
        self.host(a)?;
        self.host(b)?;
        let ab = self.new_pipe(a, b);
        let ba = self.new_pipe(b, a);
        if let Some(p) = self.pipes.get_mut(&ab) {
            p.queue.push_back(Segment {
                at: Some(open_at),
                kind: SegKind::Open,
            });
            p.last_arrival = open_at;
            p.armed = true;
        }
        if let Some(p) = self.pipes.get_mut(&ba) {
            // Nothing from the server can arrive before the client saw the accept.
            p.last_arrival = open_at;
        }
        self.stats.streams_opened += 1;
        Ok((ab, ba))
    }

    fn new_pipe(&mut self, src: HostId, dst: HostId) -> PipeId {
        let id = self.next_pipe;
        self.next_pipe += 1;
        self.pipes.insert(
            id,
            Pipe {
                src,
                dst,
                queue: VecDeque::new(),
                last_arrival: 0,
                armed: false,
                pending_bytes: 0,
                sender_done: false,
                dead: false,
                reset: false,
            },
        );
        id
    }

    fn pipe(&self, id: PipeId) -> Result<&Pipe, NetError> {
        self.pipes.get(&id).ok_or(NetError::UnknownPipe(id))
    }

    /// Queue a segment; returns the time of a delivery timer to schedule, if
    /// the pipe was not already armed.
    fn push(&mut self, id: PipeId, kind: SegKind, now: u64) -> Result<Option<u64>, NetError> {
        let (src, dst, dead) = {
            let p = self.pipe(id)?;
            (p.src, p.dst, p.dead)
        };
        if dead {
            return Ok(None);
        }
        let open = self.path_open(src, dst);
        let lat = if open { self.draw_latency(src, dst) } else { 0 };
        let p = self.pipes.get_mut(&id).ok_or(NetError::UnknownPipe(id))?;
        if let SegKind::Data(d) = &kind {
            p.pending_bytes += d.len();
            self.stats.bytes_sent += d.len() as u64;
        }
        if matches!(kind, SegKind::Fin | SegKind::Rst) {
            p.sender_done = true;
        }
        let held_before = p.queue.iter().any(|s| s.at.is_none());
        if !open || held_before {
            self.stats.segments_held += 1;
            p.queue.push_back(Segment { at: None, kind });
            return Ok(None);
        }
        let at = now.saturating_add(lat).max(p.last_arrival);
        p.last_arrival = at;
        p.queue.push_back(Segment { at: Some(at), kind });
        if p.armed {
            return Ok(None);
        }
        p.armed = true;
        Ok(p.queue.front().and_then(|s| s.at))
    }

    /// Send bytes (empty writes are ignored).
    pub fn send(&mut self, id: PipeId, data: &[u8], now: u64) -> Result<Option<u64>, NetError> {
        if data.is_empty() {
            self.pipe(id)?;
            return Ok(None);
        }
        self.push(id, SegKind::Data(data.to_vec()), now)
    }

    /// Half-close: FIN after everything already queued.
    pub fn send_fin(&mut self, id: PipeId, now: u64) -> Result<Option<u64>, NetError> {
        if self.pipe(id)?.sender_done {
            return Ok(None);
        }
        self.push(id, SegKind::Fin, now)
    }

    /// Reset: unsent/undelivered bytes are discarded and the peer sees a reset.
    pub fn send_rst(&mut self, id: PipeId, now: u64) -> Result<Option<u64>, NetError> {
        let p = self.pipes.get_mut(&id).ok_or(NetError::UnknownPipe(id))?;
        if p.dead || p.reset {
            return Ok(None);
        }
        p.reset = true;
        p.queue.retain(|s| matches!(s.kind, SegKind::Open));
        p.pending_bytes = 0;
        p.sender_done = false;
        self.stats.resets += 1;
        self.push(id, SegKind::Rst, now)
    }

    /// Bytes sent on `id` and not yet handed to the receiver.
    pub fn pending_bytes(&self, id: PipeId) -> usize {
        self.pipes.get(&id).map_or(0, |p| p.pending_bytes)
    }

    /// Deliver what is due at `now`: at most `max_bytes` of data in one
    /// chunk. Disarms the pipe and re-arms it (`next_at`) if more is queued.
    /// If the path is cut at delivery time, everything queued is held.
    pub fn take(&mut self, id: PipeId, now: u64, max_bytes: usize) -> Result<Taken, NetError> {
        let (src, dst) = {
            let p = self.pipe(id)?;
            (p.src, p.dst)
        };
        // Packets already in flight arrive even if their sender died since.
        let open = self.hosts.get(dst as usize).is_some_and(|s| s.up) && !self.is_blocked(src, dst);
        let p = self.pipes.get_mut(&id).ok_or(NetError::UnknownPipe(id))?;
        p.armed = false;
        let mut out = Taken::default();
        if p.dead {
            return Ok(out);
        }
        if !open {
            let mut newly = 0;
            for seg in p.queue.iter_mut() {
                if seg.at.is_some() {
                    seg.at = None;
                    newly += 1;
                }
            }
            self.stats.segments_held += newly;
            return Ok(out);
        }
        let max_bytes = max_bytes.max(1);
        while let Some(seg) = p.queue.front_mut() {
            match seg.at {
                Some(t) if t <= now => {}
                _ => break,
            }
            match &mut seg.kind {
                SegKind::Open => {
                    // The accept is delivered on its own: what follows waits
                    // for the next timer (due at once), after the accept ran.
                    if !out.data.is_empty() {
                        break;
                    }
                    out.open = true;
                    p.queue.pop_front();
                    break;
                }
                SegKind::Data(d) => {
                    let room = max_bytes - out.data.len();
                    if d.len() > room {
                        out.data.extend(d.drain(..room));
                        break;
                    }
                    out.data.extend_from_slice(d);
                    p.queue.pop_front();
                    if out.data.len() >= max_bytes {
                        break;
                    }
                }
                SegKind::Fin => {
                    out.fin = true;
                    p.queue.pop_front();
                    break;
                }
                SegKind::Rst => {
                    out.rst = true;
                    p.queue.clear();
                    break;
                }
            }
        }
        p.pending_bytes -= out.data.len().min(p.pending_bytes);
        self.stats.bytes_delivered += out.data.len() as u64;
        if !out.rst {
            if let Some(next) = p.queue.front().and_then(|s| s.at) {
                p.armed = true;
                out.next_at = Some(next.max(now));
            }
        }
        Ok(out)
    }

    /// The receiver of `id` is gone: drop what is queued and anything sent later.
    pub fn discard(&mut self, id: PipeId) {
        if let Some(p) = self.pipes.get_mut(&id) {
            p.dead = true;
            p.queue.clear();
            p.pending_bytes = 0;
        }
        self.gc(id);
    }

    /// The sender of `id` is gone: forget the pipe once nothing is queued.
    pub fn sender_closed(&mut self, id: PipeId) {
        if let Some(p) = self.pipes.get_mut(&id) {
            p.sender_done = true;
        }
        self.gc(id);
    }

    fn gc(&mut self, id: PipeId) {
        let finished = self
            .pipes
            .get(&id)
            .is_some_and(|p| p.sender_done && (p.dead || p.queue.is_empty()));
        if finished {
            self.pipes.remove(&id);
        }
    }

    pub fn live_pipes(&self) -> usize {
        self.pipes.len()
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

    // -- datagrams --------------------------------------------------------

    /// Send a datagram `src -> dst`. Returns one `(id, at)` per copy that will
    /// arrive (none if lost or partitioned, two if duplicated).
    pub fn dgram_send(
        &mut self,
        src: HostId,
        dst: HostId,
        data: &[u8],
        now: u64,
    ) -> Result<Vec<(DgramId, u64)>, NetError> {
        self.host(src)?;
        let dst_incarnation = self.host(dst)?.incarnation;
        self.stats.datagrams_sent += 1;
        if !self.path_open(src, dst) {
            self.stats.datagrams_lost += 1;
            return Ok(Vec::new());
        }
        let cfg = self.link(src, dst).clone();
        if cfg.loss > 0.0 && self.rng.unit_f64() < cfg.loss {
            self.stats.datagrams_lost += 1;
            return Ok(Vec::new());
        }
        let copies = if cfg.duplicate > 0.0 && self.rng.unit_f64() < cfg.duplicate {
            self.stats.datagrams_duplicated += 1;
            2
        } else {
            1
        };
        let mut out = Vec::with_capacity(copies);
        for _ in 0..copies {
            let lat = cfg.latency.draw(&mut self.rng);
            let base = now.saturating_add(lat);
            let at = if cfg.reorder > 0.0 && self.rng.unit_f64() < cfg.reorder {
                self.stats.datagrams_reordered += 1;
                base.saturating_add(cfg.latency.draw(&mut self.rng).max(1))
            } else {
                // Strictly after the previous one: equal deadlines would let
                // the scheduler order them.
                let last = self.dgram_last.entry((src, dst)).or_insert(0);
                let at = base.max(last.saturating_add(1));
                *last = at;
                at
            };
            let id = self.next_dgram;
            self.next_dgram += 1;
            self.dgrams.insert(
                id,
                Datagram {
                    dst,
                    dst_incarnation,
                    data: data.to_vec(),
                },
            );
            out.push((id, at));
        }
        Ok(out)
    }

    /// The payload of datagram `id` at its arrival, or `None` if it was lost
    /// on the way (partition at arrival, receiver crashed meanwhile).
    pub fn dgram_take(&mut self, id: DgramId, src: HostId) -> Option<Vec<u8>> {
        let d = self.dgrams.remove(&id)?;
        let st = self.hosts.get(d.dst as usize)?;
        if !st.up || st.incarnation != d.dst_incarnation || self.is_blocked(src, d.dst) {
            self.stats.datagrams_lost += 1;
            return None;
        }
        self.stats.datagrams_delivered += 1;
        Some(d.data)
    }
}

#[cfg(test)]
mod tests;
