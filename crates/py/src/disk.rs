//! `DiskCore`: Python binding of the engine's simulated disks (one per run).
//!
//! Paths cross this boundary relative to the host's data directory
//! (`"wal/log"`, `""` for the directory itself); descriptors are the engine's
//! numbers (Python adds its fake-descriptor base). OS errors come back as
//! `OSError(errno, strerror)`, which Python maps to FileNotFoundError and
//! friends; configuration mistakes as ValueError.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use seedloop_engine::clock::ns_to_secs;
use seedloop_engine::disk::{errno, Disk, DiskError, Op, OpenFlags};

use crate::net::dist;

fn strerror(code: i32) -> &'static str {
    match code {
        errno::ENOENT => "No such file or directory",
        errno::EIO => "Input/output error",
        errno::EBADF => "Bad file descriptor",
        errno::EBUSY => "Device or resource busy",
        errno::EEXIST => "File exists",
        errno::ENOTDIR => "Not a directory",
        errno::EISDIR => "Is a directory",
        errno::EINVAL => "Invalid argument",
        errno::ENOSPC => "No space left on device",
        errno::ENOTEMPTY => "Directory not empty",
        _ => "Simulated disk error",
    }
}

fn err(e: DiskError) -> PyErr {
    match e {
        DiskError::Os(code) => PyOSError::new_err((code, strerror(code))),
        DiskError::Invalid(m) => PyValueError::new_err(m),
    }
}

fn op(name: &str) -> PyResult<Op> {
    Op::parse(name).map_err(err)
}

#[pyclass(module = "seedloop._engine", name = "DiskCore")]
pub struct DiskCore {
    disk: Disk,
}

#[pymethods]
impl DiskCore {
    #[new]
    fn new(seed: u64) -> Self {
        DiskCore {
            disk: Disk::new(seed),
        }
    }

    // -- configuration ------------------------------------------------------

    fn set_torn(&mut self, host: u32, on: bool) {
        self.disk.set_torn(host, on);
    }

    #[pyo3(signature = (host, capacity=None))]
    fn set_capacity(&mut self, host: u32, capacity: Option<u64>) {
        self.disk.set_capacity(host, capacity);
    }

    /// `kind` None clears the latency of `op` (every op when `op` is None).
    #[pyo3(signature = (host, op=None, kind=None, params=vec![]))]
    fn set_latency(
        &mut self,
        host: u32,
        op: Option<&str>,
        kind: Option<&str>,
        params: Vec<f64>,
    ) -> PyResult<()> {
        let op = op.map(self::op).transpose()?;
        let d = kind.map(|k| dist(k, &params)).transpose()?;
        self.disk.set_latency(host, op, d).map_err(err)
    }

    /// One latency draw for `op` on `host`, in seconds.
    fn latency(&mut self, host: u32, op: &str) -> PyResult<f64> {
        Ok(ns_to_secs(self.disk.latency(host, self::op(op)?)))
    }

    #[pyo3(signature = (host, op, prefix, code, times=None, probability=1.0))]
    fn add_fault(
        &mut self,
        host: u32,
        op: &str,
        prefix: &str,
        code: i32,
        times: Option<u64>,
        probability: f64,
    ) -> PyResult<()> {
        let op = self::op(op)?;
        self.disk
            .add_fault(host, op, prefix, code, times, probability)
            .map_err(err)
    }

    fn clear_faults(&mut self, host: u32) {
        self.disk.clear_faults(host);
    }

    // -- power --------------------------------------------------------------

    fn crash(&mut self, host: u32) {
        self.disk.crash(host);
    }

    fn restart(&mut self, host: u32) {
        self.disk.restart(host);
    }

    fn is_down(&mut self, host: u32) -> bool {
        self.disk.is_down(host)
    }

    fn is_stale(&self, fd: u64) -> bool {
        self.disk.is_stale(fd)
    }

    // -- namespace ----------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (host, path, read, write, append=false, create=false, excl=false, trunc=false, directory=false))]
    fn open(
        &mut self,
        host: u32,
        path: &str,
        read: bool,
        write: bool,
        append: bool,
        create: bool,
        excl: bool,
        trunc: bool,
        directory: bool,
    ) -> PyResult<u64> {
        let flags = OpenFlags {
            read,
            write,
            append,
            create,
            excl,
            trunc,
            directory,
        };
        self.disk.open(host, path, flags).map_err(err)
    }

    fn close(&mut self, fd: u64) -> PyResult<()> {
        self.disk.close(fd).map_err(err)
    }

    /// (is_dir, size, inode, nlink)
    fn stat(&mut self, host: u32, path: &str) -> PyResult<(bool, u64, u64, u64)> {
        let s = self.disk.stat(host, path).map_err(err)?;
        Ok((s.is_dir, s.size, s.ino, s.nlink))
    }

    fn fstat(&mut self, fd: u64) -> PyResult<(bool, u64, u64, u64)> {
        let s = self.disk.fstat(fd).map_err(err)?;
        Ok((s.is_dir, s.size, s.ino, s.nlink))
    }

    /// [(name, is_dir)] in name order.
    fn listdir(&mut self, host: u32, path: &str) -> PyResult<Vec<(String, bool)>> {
        self.disk.listdir(host, path).map_err(err)
    }

    fn mkdir(&mut self, host: u32, path: &str) -> PyResult<()> {
        self.disk.mkdir(host, path).map_err(err)
    }

    fn rmdir(&mut self, host: u32, path: &str) -> PyResult<()> {
        self.disk.rmdir(host, path).map_err(err)
    }

    fn unlink(&mut self, host: u32, path: &str) -> PyResult<()> {
        self.disk.unlink(host, path).map_err(err)
    }

    fn rename(&mut self, host: u32, src: &str, dst: &str) -> PyResult<()> {
        self.disk.rename(host, src, dst).map_err(err)
    }

    // -- data ---------------------------------------------------------------

    fn read<'py>(&mut self, py: Python<'py>, fd: u64, n: u64) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.disk.read(fd, n).map_err(err)?;
        Ok(PyBytes::new(py, &data))
    }

    fn write(&mut self, fd: u64, data: &[u8]) -> PyResult<u64> {
        self.disk.write(fd, data).map_err(err)
    }

    fn seek(&mut self, fd: u64, offset: i64, whence: i32) -> PyResult<u64> {
        self.disk.seek(fd, offset, whence).map_err(err)
    }

    fn truncate(&mut self, fd: u64, len: u64) -> PyResult<()> {
        self.disk.truncate(fd, len).map_err(err)
    }

    fn fsync(&mut self, fd: u64) -> PyResult<()> {
        self.disk.fsync(fd).map_err(err)
    }

    /// [(path, is_dir, bytes)] of every entry, in path order.
    fn snapshot<'py>(
        &mut self,
        py: Python<'py>,
        host: u32,
        durable: bool,
    ) -> Vec<(String, bool, Bound<'py, PyBytes>)> {
        self.disk
            .snapshot(host, durable)
            .into_iter()
            .map(|(p, d, b)| (p, d, PyBytes::new(py, &b)))
            .collect()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DiskCore>()
}
