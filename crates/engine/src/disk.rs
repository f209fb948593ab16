//! The simulated disk: per host, files and directories with a volatile (page
//! cache) view that every read sees and a durable view that survives a crash.
//!
//! The model is the strict POSIX promise, the one a program can rely on:
//!
//! - `write`/`truncate` change a file's volatile bytes at once and queue the
//!   change; `fsync` (or `fdatasync`, the same here) applies the queued changes
//!   of that file to its durable bytes.
//! - `create`/`mkdir`/`rename`/`unlink`/`rmdir` change a directory's volatile
//!   entries at once; they become durable when *that directory* is fsynced
//!   (its entries are copied to the durable entries).
//! - `crash` keeps only the durable view: directories get their durable
//!   entries back, files their durable bytes, and everything no longer
//!   reachable from the root is gone. With torn writes on, a seeded prefix of
//!   each surviving file's queued changes is applied first, the last of them
//!   possibly cut at a seeded byte (the kernel wrote some dirty pages back
//!   before the power went).
//! - A failed fsync (an injected fault) drops the file's queued changes, as
//!   Linux does since the 2018 "fsyncgate": reads still see the bytes, a later
//!   fsync reports success, and a crash loses them.
//!
//! Every random choice (fault probability, torn boundary, latency) comes from
//! per-host seeded streams, so one host's faults never shift another's.

use std::collections::{BTreeMap, BTreeSet};

use crate::net::Dist;
use crate::rng::Rng;

/// errno values (Linux numbering; Python turns them into OSError subclasses).
pub mod errno {
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EBADF: i32 = 9;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const ENOTEMPTY: i32 = 39;
}
use errno::*;

/// What failed: an OS error for the program, or a misuse of the model.
#[derive(Debug, Clone, PartialEq)]
pub enum DiskError {
    /// An errno the program sees as OSError.
    Os(i32),
    /// A bad configuration value (the message says what is wrong).
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, DiskError>;

fn os<T>(code: i32) -> Result<T> {
    Err(DiskError::Os(code))
}

/// Operation kinds, for faults and latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Open = 0,
    Read = 1,
    Write = 2,
    Fsync = 3,
    /// stat, listdir, mkdir, rename, unlink, rmdir.
    Meta = 4,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Open, Op::Read, Op::Write, Op::Fsync, Op::Meta];

    pub fn parse(name: &str) -> Result<Op> {
        Ok(match name {
            "open" => Op::Open,
            "read" => Op::Read,
            "write" => Op::Write,
            "fsync" => Op::Fsync,
            "meta" => Op::Meta,
            other => {
                return Err(DiskError::Invalid(format!(
                    "unknown disk operation {other:?}; use open, read, write, fsync or meta"
                )))
            }
        })
    }
}

/// A queued, not yet durable change to a file's bytes.
#[derive(Clone, Debug)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

fn apply(bytes: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Write { offset, data } => write_at(bytes, *offset, data),
        Change::Truncate { len } => bytes.resize(*len as usize, 0),
    }
}

fn write_at(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let off = offset as usize;
    let end = off + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[off..end].copy_from_slice(data);
}

#[derive(Clone, Debug, Default)]
struct Inode {
    is_dir: bool,
    data: Vec<u8>,
    durable: Vec<u8>,
    queued: Vec<Change>,
    entries: BTreeMap<String, u64>,
    durable_entries: BTreeMap<String, u64>,
}

impl Inode {
    fn dir() -> Self {
        Inode {
            is_dir: true,
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug)]
struct Fd {
    host: u32,
    ino: u64,
    pos: u64,
    readable: bool,
    writable: bool,
    append: bool,
    /// The path it was opened by (faults match paths).
    path: String,
}

/// A fault rule: `op` on paths under `prefix` fails with `code`.
#[derive(Clone, Debug)]
struct Fault {
    op: Op,
    prefix: String,
    code: i32,
    remaining: Option<u64>,
    probability: f64,
}

fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.len() > prefix.len()
            && path.starts_with(prefix)
            && path.as_bytes()[prefix.len()] == b'/')
}

/// What `stat` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    pub size: u64,
    pub ino: u64,
    pub nlink: u64,
}

/// Open flags, already decoded from `os.O_*`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub create: bool,
    pub excl: bool,
    pub trunc: bool,
    pub directory: bool,
}

const ROOT: u64 = 0;

/// One host's filesystem.
#[derive(Clone, Debug)]
struct HostFs {
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    down: bool,
    torn: bool,
    capacity: Option<u64>,
    faults: Vec<Fault>,
    latency: [Option<Dist>; 5],
    fault_rng: Rng,
    crash_rng: Rng,
    latency_rng: Rng,
}

impl HostFs {
    fn new(seed: u64, host: u32) -> Self {
        let mut inodes = BTreeMap::new();
        inodes.insert(ROOT, Inode::dir());
        HostFs {
            inodes,
            next_ino: 1,
            down: false,
            torn: false,
            capacity: None,
            faults: Vec::new(),
            latency: [None, None, None, None, None],
            fault_rng: Rng::stream(seed, &format!("disk/{host}/faults")),
            crash_rng: Rng::stream(seed, &format!("disk/{host}/crash")),
            latency_rng: Rng::stream(seed, &format!("disk/{host}/latency")),
        }
    }

    fn node(&self, ino: u64) -> &Inode {
        &self.inodes[&ino]
    }

    fn node_mut(&mut self, ino: u64) -> &mut Inode {
        self.inodes.get_mut(&ino).expect("live inode")
    }

    /// The inode at `path` in the volatile view.
    fn lookup(&self, path: &str) -> Result<u64> {
        let mut ino = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let node = self.node(ino);
            if !node.is_dir {
                return os(ENOTDIR);
            }
            match node.entries.get(part) {
                Some(&child) => ino = child,
                None => return os(ENOENT),
            }
        }
        Ok(ino)
    }

    /// (parent directory inode, last component) of `path`.
    fn parent<'a>(&self, path: &'a str) -> Result<(u64, &'a str)> {
        let trimmed = path.trim_matches('/');
        let (dir, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        if name.is_empty() {
            return os(EBUSY); // the data directory itself
        }
        let p = self.lookup(dir)?;
        if !self.node(p).is_dir {
            return os(ENOTDIR);
        }
        Ok((p, name))
    }

    fn check_fault(&mut self, op: Op, path: &str) -> Result<()> {
        let mut hit = None;
        for (i, f) in self.faults.iter().enumerate() {
            if f.op == op && under(path, &f.prefix) {
                if f.probability < 1.0 && self.fault_rng.unit_f64() >= f.probability {
                    continue;
                }
                hit = Some(i);
                break;
            }
        }
        let Some(i) = hit else { return Ok(()) };
        let code = self.faults[i].code;
        if let Some(n) = self.faults[i].remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                self.faults.remove(i);
            }
        }
        os(code)
    }

    fn alloc(&mut self, node: Inode) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, node);
        ino
    }

    /// Bytes used by every file reachable in the volatile view or open.
    fn used(&self, open: &BTreeSet<u64>) -> u64 {
        let mut seen = BTreeSet::new();
        let mut stack = vec![ROOT];
        stack.extend(open.iter().copied());
        let mut total = 0;
        while let Some(ino) = stack.pop() {
            if !seen.insert(ino) {
                continue;
            }
            let Some(node) = self.inodes.get(&ino) else {
                continue;
            };
            total += node.data.len() as u64;
            stack.extend(node.entries.values().copied());
        }
        total
    }

    /// Drop inodes reachable from neither view nor an open descriptor.
    fn collect(&mut self, open: &BTreeSet<u64>) {
        let mut seen = BTreeSet::new();
        let mut stack = vec![ROOT];
        stack.extend(open.iter().copied());
        while let Some(ino) = stack.pop() {
            if !seen.insert(ino) {
                continue;
            }
            if let Some(node) = self.inodes.get(&ino) {
                stack.extend(node.entries.values().copied());
                stack.extend(node.durable_entries.values().copied());
            }
        }
        self.inodes.retain(|ino, _| seen.contains(ino));
    }
}

/// The disks of every host of one run.
#[derive(Clone, Debug)]
pub struct Disk {
    seed: u64,
    hosts: BTreeMap<u32, HostFs>,
    fds: BTreeMap<u64, Fd>,
    /// Descriptors a crash closed: using them is a silent no-op (the process
    /// that held them is gone), not EBADF.
    stale: BTreeSet<u64>,
    next_fd: u64,
}

impl Disk {
    pub fn new(seed: u64) -> Self {
        Disk {
            seed,
            hosts: BTreeMap::new(),
            fds: BTreeMap::new(),
            stale: BTreeSet::new(),
            next_fd: 1,
        }
    }

    fn host(&mut self, host: u32) -> &mut HostFs {
        let seed = self.seed;
        self.hosts
            .entry(host)
            .or_insert_with(|| HostFs::new(seed, host))
    }

    fn open_inodes(&self, host: u32) -> BTreeSet<u64> {
        self.fds
            .values()
            .filter(|f| f.host == host)
            .map(|f| f.ino)
            .collect()
    }

    fn up(&mut self, host: u32) -> Result<&mut HostFs> {
        let h = self.host(host);
        if h.down {
            return os(EIO);
        }
        Ok(h)
    }

    /// Whether `fd` was closed by a crash (its operations are no-ops).
    pub fn is_stale(&self, fd: u64) -> bool {
        self.stale.contains(&fd)
    }

    fn fd(&self, fd: u64) -> Result<&Fd> {
        self.fds.get(&fd).map_or_else(|| os(EBADF), Ok)
    }

    // -- configuration ------------------------------------------------------

    pub fn set_torn(&mut self, host: u32, on: bool) {
        self.host(host).torn = on;
    }

    pub fn set_capacity(&mut self, host: u32, capacity: Option<u64>) {
        self.host(host).capacity = capacity;
    }

    pub fn set_latency(&mut self, host: u32, op: Option<Op>, dist: Option<Dist>) -> Result<()> {
        if let Some(d) = &dist {
            d.validate().map_err(DiskError::Invalid)?;
        }
        let h = self.host(host);
        match op {
            Some(op) => h.latency[op as usize] = dist,
            None => h.latency = [dist.clone(), dist.clone(), dist.clone(), dist.clone(), dist],
        }
        Ok(())
    }

    /// A latency draw for `op` on `host`, in nanoseconds (0 when none is set).
    pub fn latency(&mut self, host: u32, op: Op) -> u64 {
        let h = self.host(host);
        match &h.latency[op as usize] {
            Some(d) => d.clone().draw(&mut h.latency_rng),
            None => 0,
        }
    }

    pub fn add_fault(
        &mut self,
        host: u32,
        op: Op,
        prefix: &str,
        code: i32,
        times: Option<u64>,
        probability: f64,
    ) -> Result<()> {
        if !(0.0..=1.0).contains(&probability) || probability.is_nan() {
            return Err(DiskError::Invalid(format!(
                "probability must be in [0, 1], got {probability}"
            )));
        }
        if times == Some(0) {
            return Err(DiskError::Invalid(
                "times must be at least 1 (or None for every time)".into(),
            ));
        }
        self.host(host).faults.push(Fault {
            op,
            prefix: prefix.trim_matches('/').to_string(),
            code,
            remaining: times,
            probability,
        });
        Ok(())
    }

    pub fn clear_faults(&mut self, host: u32) {
        self.host(host).faults.clear();
    }

    // -- power --------------------------------------------------------------

    /// Power cut: keep only the durable view (plus torn prefixes), close every descriptor.
    pub fn crash(&mut self, host: u32) {
        let dead: Vec<u64> = self
            .fds
            .iter()
            .filter(|(_, f)| f.host == host)
            .map(|(&n, _)| n)
            .collect();
        for n in dead {
            self.fds.remove(&n);
            self.stale.insert(n);
        }
        let h = self.host(host);
        h.down = true;
        // Walk the durable tree in inode order: the draws are deterministic.
        let mut keep = BTreeSet::new();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if keep.insert(ino) {
                stack.extend(h.node(ino).durable_entries.values().copied());
            }
        }
        h.inodes.retain(|ino, _| keep.contains(ino));
        let torn = h.torn;
        let HostFs {
            inodes, crash_rng, ..
        } = h;
        for node in inodes.values_mut() {
            if node.is_dir {
                node.entries = node.durable_entries.clone();
                continue;
            }
            let queued = std::mem::take(&mut node.queued);
            if torn && !queued.is_empty() {
                let whole = crash_rng.below(queued.len() as u64 + 1) as usize;
                for change in &queued[..whole] {
                    apply(&mut node.durable, change);
                }
                if let Some(Change::Write { offset, data }) = queued.get(whole) {
                    let cut = crash_rng.below(data.len() as u64 + 1) as usize;
                    write_at(&mut node.durable, *offset, &data[..cut]);
                }
            }
            node.data = node.durable.clone();
        }
    }

    pub fn restart(&mut self, host: u32) {
        self.host(host).down = false;
    }

    pub fn is_down(&mut self, host: u32) -> bool {
        self.host(host).down
    }

    // -- namespace ----------------------------------------------------------

    pub fn open(&mut self, host: u32, path: &str, flags: OpenFlags) -> Result<u64> {
        let h = self.up(host)?;
        h.check_fault(Op::Open, path)?;
        let ino = match h.lookup(path) {
            Ok(ino) => {
                if flags.create && flags.excl {
                    return os(EEXIST);
                }
                let node = h.node(ino);
                if node.is_dir && (flags.write || flags.trunc) {
                    return os(EISDIR);
                }
                if flags.directory && !node.is_dir {
                    return os(ENOTDIR);
                }
                if flags.trunc && !node.data.is_empty() {
                    let node = h.node_mut(ino);
                    node.data.clear();
                    node.queued.push(Change::Truncate { len: 0 });
                }
                ino
            }
            Err(DiskError::Os(ENOENT)) if flags.create && !flags.directory => {
                let (parent, name) = h.parent(path)?;
                let name = name.to_string();
                let ino = h.alloc(Inode::default());
                h.node_mut(parent).entries.insert(name, ino);
                ino
            }
            Err(e) => return Err(e),
        };
        let n = self.next_fd;
        self.next_fd += 1;
        self.fds.insert(
            n,
            Fd {
                host,
                ino,
                pos: 0,
                readable: flags.read,
                writable: flags.write,
                append: flags.append,
                path: path.trim_matches('/').to_string(),
            },
        );
        Ok(n)
    }

    pub fn close(&mut self, fd: u64) -> Result<()> {
        if self.stale.contains(&fd) {
            return Ok(());
        }
        let f = self.fds.remove(&fd).map_or_else(|| os(EBADF), Ok)?;
        let open = self.open_inodes(f.host);
        let h = self.host(f.host);
        if !h.inodes.get(&f.ino).is_some_and(|n| n.is_dir) && !open.contains(&f.ino) {
            // An unlinked file's last descriptor: its bytes may go (the
            // durable view may still name it until its directory is synced).
            h.collect(&open);
        }
        Ok(())
    }

    pub fn stat(&mut self, host: u32, path: &str) -> Result<Stat> {
        let h = self.up(host)?;
        h.check_fault(Op::Meta, path)?;
        let ino = h.lookup(path)?;
        Ok(stat_of(h, ino))
    }

    pub fn fstat(&mut self, fd: u64) -> Result<Stat> {
        let f = self.fd(fd)?.clone();
        let h = self.host(f.host);
        Ok(stat_of(h, f.ino))
    }

    pub fn listdir(&mut self, host: u32, path: &str) -> Result<Vec<(String, bool)>> {
        let h = self.up(host)?;
        h.check_fault(Op::Meta, path)?;
        let ino = h.lookup(path)?;
        let node = h.node(ino);
        if !node.is_dir {
            return os(ENOTDIR);
        }
        Ok(node
            .entries
            .iter()
            .map(|(name, child)| (name.clone(), h.node(*child).is_dir))
            .collect())
    }

    pub fn mkdir(&mut self, host: u32, path: &str) -> Result<()> {
        let h = self.up(host)?;
        h.check_fault(Op::Meta, path)?;
        if h.lookup(path).is_ok() {
            return os(EEXIST);
        }
        let (parent, name) = h.parent(path)?;
        let name = name.to_string();
        let ino = h.alloc(Inode::dir());
        h.node_mut(parent).entries.insert(name, ino);
        Ok(())
    }

    pub fn rmdir(&mut self, host: u32, path: &str) -> Result<()> {
        let h = self.up(host)?;
        h.check_fault(Op::Meta, path)?;
        let ino = h.lookup(path)?;
        let (parent, name) = h.parent(path)?;
        let node = h.node(ino);
        if !node.is_dir {
            return os(ENOTDIR);
        }
        if !node.entries.is_empty() {
            return os(ENOTEMPTY);
        }
        let name = name.to_string();
        h.node_mut(parent).entries.remove(&name);
        Ok(())
    }

    pub fn unlink(&mut self, host: u32, path: &str) -> Result<()> {
        let h = self.up(host)?;
        h.check_fault(Op::Meta, path)?;
        let ino = h.lookup(path)?;
        if h.node(ino).is_dir {
            return os(EISDIR);
        }
        let (parent, name) = h.parent(path)?;
        let name = name.to_string();
        h.node_mut(parent).entries.remove(&name);
        Ok(())
    }

    /// `rename(2)`: replaces a file (or an empty directory) at `dst`.
    pub fn rename(&mut self, host: u32, src: &str, dst: &str) -> Result<()> {
        let h = self.up(host)?;
        h.check_fault(Op::Meta, src)?;
        // Linux resolves both parent directories before the source entry:
        // a bad destination path wins over a missing source.
        let (sp, sname) = h.parent(src)?;
        let (dp, dname) = h.parent(dst)?;
        let (sname, dname) = (sname.to_string(), dname.to_string());
        let Some(&ino) = h.node(sp).entries.get(&sname) else {
            return os(ENOENT);
        };
        let src_dir = h.node(ino).is_dir;
        let (s, d) = (src.trim_matches('/'), dst.trim_matches('/'));
        let inside = |a: &str, b: &str| {
            a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'/'
        };
        // As Linux checks them: the source may not be an ancestor of the
        // destination, nor the destination an ancestor of the source.
        if inside(d, s) {
            return os(EINVAL);
        }
        if inside(s, d) {
            return os(ENOTEMPTY);
        }
        if let Some(&existing) = h.node(dp).entries.get(&dname) {
            if existing == ino {
                return Ok(());
            }
            let target = h.node(existing);
            match (src_dir, target.is_dir) {
                (false, true) => return os(EISDIR),
                (true, false) => return os(ENOTDIR),
                (true, true) if !target.entries.is_empty() => return os(ENOTEMPTY),
                _ => {}
            }
        }
        h.node_mut(sp).entries.remove(&sname);
        h.node_mut(dp).entries.insert(dname, ino);
        Ok(())
    }

    // -- data ---------------------------------------------------------------

    pub fn read(&mut self, fd: u64, n: u64) -> Result<Vec<u8>> {
        if self.stale.contains(&fd) {
            return Ok(Vec::new());
        }
        let f = self.fd(fd)?.clone();
        if !f.readable {
            return os(EBADF);
        }
        let h = self.up(f.host)?;
        if h.node(f.ino).is_dir {
            return os(EISDIR);
        }
        h.check_fault(Op::Read, &f.path)?;
        let data = &h.node(f.ino).data;
        let start = (f.pos as usize).min(data.len());
        let end = start.saturating_add(n as usize).min(data.len());
        let out = data[start..end].to_vec();
        self.fds.get_mut(&fd).expect("open fd").pos = end.max(f.pos as usize) as u64;
        Ok(out)
    }

    /// Write at the descriptor's position (or the end with O_APPEND); a
    /// full disk writes what fits, and fails with ENOSPC when nothing does.
    pub fn write(&mut self, fd: u64, data: &[u8]) -> Result<u64> {
        if self.stale.contains(&fd) {
            return Ok(data.len() as u64);
        }
        let f = self.fd(fd)?.clone();
        if !f.writable {
            return os(EBADF);
        }
        let open = self.open_inodes(f.host);
        let h = self.up(f.host)?;
        h.check_fault(Op::Write, &f.path)?;
        let len = h.node(f.ino).data.len() as u64;
        let offset = if f.append { len } else { f.pos };
        let mut take = data.len() as u64;
        if let Some(cap) = h.capacity {
            let growth = (offset + take).saturating_sub(len);
            let free = cap.saturating_sub(h.used(&open));
            if growth > free {
                take -= growth - free;
                if take == 0 && !data.is_empty() {
                    return os(ENOSPC);
                }
            }
        }
        let chunk = data[..take as usize].to_vec();
        let node = h.node_mut(f.ino);
        write_at(&mut node.data, offset, &chunk);
        node.queued.push(Change::Write {
            offset,
            data: chunk,
        });
        self.fds.get_mut(&fd).expect("open fd").pos = offset + take;
        Ok(take)
    }

    pub fn seek(&mut self, fd: u64, offset: i64, whence: i32) -> Result<u64> {
        if self.stale.contains(&fd) {
            return Ok(0);
        }
        let f = self.fd(fd)?.clone();
        let len = self.host(f.host).node(f.ino).data.len() as i64;
        let base = match whence {
            0 => 0,
            1 => f.pos as i64,
            2 => len,
            _ => return os(EINVAL),
        };
        let pos = base.checked_add(offset).filter(|p| *p >= 0);
        let Some(pos) = pos else { return os(EINVAL) };
        self.fds.get_mut(&fd).expect("open fd").pos = pos as u64;
        Ok(pos as u64)
    }

    pub fn truncate(&mut self, fd: u64, len: u64) -> Result<()> {
        if self.stale.contains(&fd) {
            return Ok(());
        }
        let f = self.fd(fd)?.clone();
        if !f.writable {
            return os(EINVAL);
        }
        let open = self.open_inodes(f.host);
        let h = self.up(f.host)?;
        h.check_fault(Op::Write, &f.path)?;
        let cur = h.node(f.ino).data.len() as u64;
        if let Some(cap) = h.capacity {
            if len > cur && len - cur > cap.saturating_sub(h.used(&open)) {
                return os(ENOSPC);
            }
        }
        let node = h.node_mut(f.ino);
        node.data.resize(len as usize, 0);
        node.queued.push(Change::Truncate { len });
        Ok(())
    }

    /// `fsync`/`fdatasync`: a file's queued changes, or a directory's
    /// entries, become durable. An injected failure loses the file's queue.
    pub fn fsync(&mut self, fd: u64) -> Result<()> {
        if self.stale.contains(&fd) {
            return Ok(());
        }
        let f = self.fd(fd)?.clone();
        let h = self.up(f.host)?;
        let failed = h.check_fault(Op::Fsync, &f.path);
        let node = h.node_mut(f.ino);
        if let Err(e) = failed {
            node.queued.clear(); // fsyncgate: marked clean, never written
            return Err(e);
        }
        if node.is_dir {
            node.durable_entries = node.entries.clone();
            // Names dropped from both views may free their files now.
            let open = self.open_inodes(f.host);
            self.host(f.host).collect(&open);
        } else {
            let queued = std::mem::take(&mut node.queued);
            for change in &queued {
                apply(&mut node.durable, change);
            }
        }
        Ok(())
    }

    // -- inspection ---------------------------------------------------------

    /// Every file and directory of `host` (paths relative to its root, in
    /// order), with file bytes, from the volatile or the durable view.
    pub fn snapshot(&mut self, host: u32, durable: bool) -> Vec<(String, bool, Vec<u8>)> {
        let h = self.host(host);
        let mut out = Vec::new();
        let mut stack = vec![(String::new(), ROOT)];
        while let Some((path, ino)) = stack.pop() {
            let node = h.node(ino);
            let entries = if durable {
                &node.durable_entries
            } else {
                &node.entries
            };
            for (name, child) in entries.iter().rev() {
                let p = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                let c = h.node(*child);
                if c.is_dir {
                    out.push((p.clone(), true, Vec::new()));
                    stack.push((p, *child));
                } else {
                    let bytes = if durable { &c.durable } else { &c.data };
                    out.push((p, false, bytes.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn stat_of(h: &HostFs, ino: u64) -> Stat {
    let node = h.node(ino);
    Stat {
        is_dir: node.is_dir,
        size: if node.is_dir {
            4096
        } else {
            node.data.len() as u64
        },
        ino: ino + 1,
        nlink: if node.is_dir { 2 } else { 1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: OpenFlags = OpenFlags {
        read: true,
        write: true,
        append: false,
        create: true,
        excl: false,
        trunc: false,
        directory: false,
    };
    const DIR: OpenFlags = OpenFlags {
        read: true,
        write: false,
        append: false,
        create: false,
        excl: false,
        trunc: false,
        directory: true,
    };

    fn files(d: &mut Disk, durable: bool) -> Vec<(String, Vec<u8>)> {
        d.snapshot(0, durable)
            .into_iter()
            .filter(|e| !e.1)
            .map(|e| (e.0, e.2))
            .collect()
    }

    #[test]
    fn unsynced_data_and_names_are_lost() {
        let mut d = Disk::new(1);
        let fd = d.open(0, "log", RW).unwrap();
        d.write(fd, b"abc").unwrap();
        assert_eq!(files(&mut d, false), vec![("log".into(), b"abc".to_vec())]);
        d.fsync(fd).unwrap();
        // The data is durable, the name is not: the file is gone after a crash.
        assert!(files(&mut d, true).is_empty());
        d.crash(0);
        d.restart(0);
        assert!(d.stat(0, "log").is_err());
    }

    #[test]
    fn file_and_dir_fsync_make_it_survive() {
        let mut d = Disk::new(1);
        let fd = d.open(0, "log", RW).unwrap();
        d.write(fd, b"abc").unwrap();
        d.fsync(fd).unwrap();
        let dir = d.open(0, "", DIR).unwrap();
        d.fsync(dir).unwrap();
        d.write(fd, b"def").unwrap();
        d.crash(0);
        d.restart(0);
        assert_eq!(files(&mut d, false), vec![("log".into(), b"abc".to_vec())]);
        // The crashed descriptor is a silent no-op, not a new file's.
        assert_eq!(d.write(fd, b"x").unwrap(), 1);
        assert_eq!(files(&mut d, false), vec![("log".into(), b"abc".to_vec())]);
    }

    #[test]
    fn rename_needs_a_dir_fsync() {
        let mut d = Disk::new(1);
        let fd = d.open(0, "a", RW).unwrap();
        d.write(fd, b"1").unwrap();
        d.fsync(fd).unwrap();
        let dir = d.open(0, "", DIR).unwrap();
        d.fsync(dir).unwrap();
        d.rename(0, "a", "b").unwrap();
        let mut copy = d.clone();
        copy.crash(0);
        assert_eq!(files(&mut copy, false), vec![("a".into(), b"1".to_vec())]);
        d.fsync(dir).unwrap();
        d.crash(0);
        assert_eq!(files(&mut d, false), vec![("b".into(), b"1".to_vec())]);
    }

    #[test]
    fn failed_fsync_loses_the_data_for_good() {
        let mut d = Disk::new(1);
        let fd = d.open(0, "f", RW).unwrap();
        let dir = d.open(0, "", DIR).unwrap();
        d.fsync(dir).unwrap();
        d.write(fd, b"lost").unwrap();
        d.add_fault(0, Op::Fsync, "f", EIO, Some(1), 1.0).unwrap();
        assert_eq!(d.fsync(fd), Err(DiskError::Os(EIO)));
        assert_eq!(d.fsync(fd), Ok(()));
        d.write(fd, b"!").unwrap();
        d.fsync(fd).unwrap();
        d.crash(0);
        assert_eq!(
            files(&mut d, false),
            vec![("f".into(), b"\0\0\0\0!".to_vec())]
        );
    }

    #[test]
    fn capacity_writes_what_fits() {
        let mut d = Disk::new(1);
        d.set_capacity(0, Some(5));
        let fd = d.open(0, "f", RW).unwrap();
        assert_eq!(d.write(fd, b"abcd").unwrap(), 4);
        assert_eq!(d.write(fd, b"efgh").unwrap(), 1);
        assert_eq!(d.write(fd, b"i"), Err(DiskError::Os(ENOSPC)));
    }

    #[test]
    fn namespace_errors_match_linux() {
        let mut d = Disk::new(1);
        d.mkdir(0, "a").unwrap();
        d.mkdir(0, "a/b").unwrap();
        assert_eq!(d.mkdir(0, "a"), Err(DiskError::Os(EEXIST)));
        assert_eq!(d.mkdir(0, "x/y"), Err(DiskError::Os(ENOENT)));
        assert_eq!(d.rmdir(0, "a"), Err(DiskError::Os(ENOTEMPTY)));
        assert_eq!(d.unlink(0, "a"), Err(DiskError::Os(EISDIR)));
        assert_eq!(d.rename(0, "a", "a/b/c"), Err(DiskError::Os(EINVAL)));
        assert_eq!(d.rmdir(0, ""), Err(DiskError::Os(EBUSY)));
        let fd = d.open(0, "a/f", RW).unwrap();
        let excl = OpenFlags { excl: true, ..RW };
        assert_eq!(d.open(0, "a/f", excl), Err(DiskError::Os(EEXIST)));
        assert_eq!(d.rename(0, "a/f", "a/b"), Err(DiskError::Os(EISDIR)));
        assert_eq!(d.open(0, "a/f/g", RW), Err(DiskError::Os(ENOTDIR)));
        d.write(fd, b"still here").unwrap();
        // An unlinked file stays readable through an open descriptor.
        d.unlink(0, "a/f").unwrap();
        d.seek(fd, 0, 0).unwrap();
        assert_eq!(d.read(fd, 100).unwrap(), b"still here");
        d.close(fd).unwrap();
        assert_eq!(d.close(fd), Err(DiskError::Os(EBADF)));
        assert_eq!(d.listdir(0, "a").unwrap(), vec![("b".to_string(), true)]);
    }

    #[test]
    fn torn_writes_keep_a_seeded_prefix() {
        let mut seen = BTreeSet::new();
        for seed in 0..200 {
            let mut d = Disk::new(seed);
            d.set_torn(0, true);
            let fd = d.open(0, "f", RW).unwrap();
            let dir = d.open(0, "", DIR).unwrap();
            d.fsync(dir).unwrap();
            d.write(fd, b"abcdef").unwrap();
            d.write(fd, b"ghij").unwrap();
            d.crash(0);
            let got = files(&mut d, false)[0].1.clone();
            assert!(b"abcdefghij".starts_with(&got), "{got:?}");
            seen.insert(got.len());
        }
        assert!(seen.len() > 5, "{seen:?}");
    }
}
