//! `NetCore`: Python binding of the engine's network model (the data plane).
//!
//! All times cross this boundary as loop seconds (`float`) and are integer
//! nanoseconds inside. Delivery times come back as floats for `loop.call_at`;
//! `take(now)` accepts the loop's `time()` at that timer, with a guard of a
//! few nanoseconds so float rounding can never make a due segment look early.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use seedloop_engine::clock::{ns_to_secs, secs_to_ns_ceil};
use seedloop_engine::net::{Dist, LinkCfg, NetError, Network};

fn err(e: NetError) -> PyErr {
    match e {
        NetError::Invalid(m) => PyValueError::new_err(m),
        other => PyRuntimeError::new_err(format!("seedloop.net internal error: {other}")),
    }
}

fn ns(secs: f64, what: &str) -> PyResult<u64> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be a finite number of seconds >= 0, got {secs}"
        )));
    }
    Ok(secs_to_ns_ceil(secs))
}

/// `now` as nanoseconds, rounded so a timer at `ns_to_secs(at)` sees `at` as due.
fn now_ns(now: f64) -> u64 {
    let now = if now.is_finite() && now > 0.0 {
        now
    } else {
        0.0
    };
    let guard = (now * f64::EPSILON * 1e9).ceil() as u64 + 1;
    secs_to_ns_ceil(now).saturating_add(guard)
}

pub(crate) fn dist(kind: &str, params: &[f64]) -> PyResult<Dist> {
    let p = |i: usize, what: &str| -> PyResult<u64> {
        let v = params.get(i).copied().ok_or_else(|| {
            PyValueError::new_err(format!("{kind} latency needs a {what} parameter"))
        })?;
        ns(v, &format!("{kind} latency {what}"))
    };
    let d = match kind {
        "fixed" => Dist::Fixed(p(0, "delay")?),
        "uniform" => Dist::Uniform {
            lo: p(0, "low")?,
            hi: p(1, "high")?,
        },
        "normal" => Dist::Normal {
            mean: p(0, "mean")?,
            std: p(1, "std")?,
            min: p(2, "minimum")?,
        },
        "exponential" => Dist::Exponential {
            mean: p(0, "mean")?,
            offset: p(1, "offset")?,
        },
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown latency distribution {other:?}; use fixed, uniform, normal or exponential"
            )))
        }
    };
    d.validate().map_err(PyValueError::new_err)?;
    Ok(d)
}

fn wakeups(v: Vec<(u64, u64)>) -> Vec<(u64, f64)> {
    v.into_iter().map(|(id, at)| (id, ns_to_secs(at))).collect()
}

#[pyclass(module = "seedloop._engine", name = "NetCore")]
pub struct NetCore {
    net: Network,
}

#[pymethods]
impl NetCore {
    /// A network seeded from the `"net"` stream of `seed`.
    #[new]
    #[pyo3(signature = (seed, kind="uniform", params=vec![0.001, 0.005]))]
    fn new(seed: u64, kind: &str, params: Vec<f64>) -> PyResult<Self> {
        Ok(NetCore {
            net: Network::new(seed, dist(kind, &params)?),
        })
    }

    fn add_host(&mut self) -> u32 {
        self.net.add_host()
    }

    /// Configure `a -> b` (or the default link when `a`/`b` are None).
    #[pyo3(signature = (a, b, kind, params, loss=0.0, duplicate=0.0, reorder=0.0))]
    #[allow(clippy::too_many_arguments)]
    fn set_link(
        &mut self,
        a: Option<u32>,
        b: Option<u32>,
        kind: &str,
        params: Vec<f64>,
        loss: f64,
        duplicate: f64,
        reorder: f64,
    ) -> PyResult<()> {
        let cfg = LinkCfg {
            latency: dist(kind, &params)?,
            loss,
            duplicate,
            reorder,
        };
        match (a, b) {
            (Some(a), Some(b)) => self.net.set_link(a, b, cfg).map_err(err),
            _ => self.net.set_default_link(cfg).map_err(err),
        }
    }

    /// The current configuration of `a -> b`: (loss, duplicate, reorder).
    fn link_faults(&self, a: u32, b: u32) -> (f64, f64, f64) {
        let c = self.net.link(a, b);
        (c.loss, c.duplicate, c.reorder)
    }

    /// One latency draw for `a -> b`, in seconds.
    fn draw_latency(&mut self, a: u32, b: u32) -> f64 {
        ns_to_secs(self.net.draw_latency(a, b))
    }

    fn block(&mut self, a: u32, b: u32) -> PyResult<()> {
        self.net.block(a, b).map_err(err)
    }

    fn unblock(&mut self, a: u32, b: u32, now: f64) -> Vec<(u64, f64)> {
        wakeups(self.net.unblock(a, b, now_ns(now)))
    }

    fn heal_all(&mut self, now: f64) -> Vec<(u64, f64)> {
        wakeups(self.net.heal_all(now_ns(now)))
    }

    fn is_blocked(&self, a: u32, b: u32) -> bool {
        self.net.is_blocked(a, b)
    }

    fn path_open(&self, a: u32, b: u32) -> bool {
        self.net.path_open(a, b)
    }

    fn host_up(&self, h: u32) -> PyResult<bool> {
        self.net.host_up(h).map_err(err)
    }

    fn incarnation(&self, h: u32) -> PyResult<u32> {
        self.net.incarnation(h).map_err(err)
    }

    fn crash(&mut self, h: u32, now: f64) -> PyResult<Vec<(u64, f64)>> {
        Ok(wakeups(self.net.crash(h, now_ns(now)).map_err(err)?))
    }

    fn restart(&mut self, h: u32) -> PyResult<()> {
        self.net.restart(h).map_err(err)
    }

    /// Open `a <-> b`; the accept (an `Open` segment on `a -> b`) is due at `open_at`.
    fn open_stream(&mut self, a: u32, b: u32, open_at: f64) -> PyResult<(u64, u64)> {
        let at = ns(open_at, "open_at")?;
        self.net.open_stream(a, b, at).map_err(err)
    }

    fn send(&mut self, pipe: u64, data: &[u8], now: f64) -> PyResult<Option<f64>> {
        Ok(self
            .net
            .send(pipe, data, now_ns(now))
            .map_err(err)?
            .map(ns_to_secs))
    }

    fn send_fin(&mut self, pipe: u64, now: f64) -> PyResult<Option<f64>> {
        Ok(self
            .net
            .send_fin(pipe, now_ns(now))
            .map_err(err)?
            .map(ns_to_secs))
    }

    fn send_rst(&mut self, pipe: u64, now: f64) -> PyResult<Option<f64>> {
        Ok(self
            .net
            .send_rst(pipe, now_ns(now))
            .map_err(err)?
            .map(ns_to_secs))
    }

    /// `(open, data, fin, rst, next_at)` due on `pipe` at `now`.
    #[allow(clippy::type_complexity)]
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        pipe: u64,
        now: f64,
        max_bytes: usize,
    ) -> PyResult<(bool, Bound<'py, PyBytes>, bool, bool, Option<f64>)> {
        let t = self.net.take(pipe, now_ns(now), max_bytes).map_err(err)?;
        Ok((
            t.open,
            PyBytes::new(py, &t.data),
            t.fin,
            t.rst,
            t.next_at.map(ns_to_secs),
        ))
    }

    fn has_pipe(&self, pipe: u64) -> bool {
        self.net.has_pipe(pipe)
    }

    fn pending_bytes(&self, pipe: u64) -> usize {
        self.net.pending_bytes(pipe)
    }

    fn discard(&mut self, pipe: u64) {
        self.net.discard(pipe)
    }

    fn sender_closed(&mut self, pipe: u64) {
        self.net.sender_closed(pipe)
    }

    fn live_pipes(&self) -> usize {
        self.net.live_pipes()
    }

    fn dgram_send(
        &mut self,
        src: u32,
        dst: u32,
        data: &[u8],
        now: f64,
    ) -> PyResult<Vec<(u64, f64)>> {
        Ok(wakeups(
            self.net
                .dgram_send(src, dst, data, now_ns(now))
                .map_err(err)?,
        ))
    }

    fn dgram_take<'py>(
        &mut self,
        py: Python<'py>,
        id: u64,
        src: u32,
    ) -> Option<Bound<'py, PyBytes>> {
        self.net.dgram_take(id, src).map(|d| PyBytes::new(py, &d))
    }

    /// Counters: bytes and segments moved, resets, datagram faults.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.net.stats();
        let d = PyDict::new(py);
        d.set_item("streams_opened", s.streams_opened)?;
        d.set_item("bytes_sent", s.bytes_sent)?;
        d.set_item("bytes_delivered", s.bytes_delivered)?;
        d.set_item("segments_held", s.segments_held)?;
        d.set_item("resets", s.resets)?;
        d.set_item("datagrams_sent", s.datagrams_sent)?;
        d.set_item("datagrams_delivered", s.datagrams_delivered)?;
        d.set_item("datagrams_lost", s.datagrams_lost)?;
        d.set_item("datagrams_duplicated", s.datagrams_duplicated)?;
        d.set_item("datagrams_reordered", s.datagrams_reordered)?;
        Ok(d)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NetCore>()
}
