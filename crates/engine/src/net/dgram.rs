//! Datagrams (UDP-like): one-shot messages that a link may drop, duplicate or reorder.

use super::{DgramId, HostId, NetError, Network};

#[derive(Debug)]
pub(super) struct Datagram {
    dst: HostId,
    dst_incarnation: u32,
    data: Vec<u8>,
}

impl Network {
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
