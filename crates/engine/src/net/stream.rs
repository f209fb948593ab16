//! Streams: ordered, lossless byte pipes (TCP-like), one `Pipe` per direction.

use std::collections::VecDeque;

use super::{HostId, NetError, Network, PipeId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegKind {
    Open,
    Data(Vec<u8>),
    Fin,
    Rst,
}

#[derive(Debug)]
pub(super) struct Segment {
    /// Arrival time; `None` while held by a partition.
    at: Option<u64>,
    kind: SegKind,
}

/// One direction of a stream. The `pub(super)` fields are the ones a host
/// crash (in `net/mod.rs`) clears directly.
#[derive(Debug)]
pub struct Pipe {
    pub src: HostId,
    pub dst: HostId,
    pub(super) queue: VecDeque<Segment>,
    last_arrival: u64,
    /// A delivery timer is outstanding (the binding has scheduled one).
    armed: bool,
    pub(super) pending_bytes: usize,
    /// The sender queued a FIN or RST: nothing more will be sent.
    pub(super) sender_done: bool,
    /// The receiver is gone: queued and future segments are dropped.
    pub(super) dead: bool,
    /// A reset was sent: the stream is over in this direction.
    pub(super) reset: bool,
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

impl Network {
    /// Give held segments of `id` arrival times; arm it if it needs a timer.
    /// Called by `unblock` (net/link.rs) when a partition heals.
    pub(super) fn retime(&mut self, id: PipeId, now: u64) -> Option<u64> {
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

    /// Whether direction `id` still exists (it is forgotten once its sender
    /// finished and everything queued was delivered or dropped).
    pub fn has_pipe(&self, id: PipeId) -> bool {
        self.pipes.contains_key(&id)
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

    pub(super) fn gc(&mut self, id: PipeId) {
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
}
