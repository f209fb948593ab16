"""File functions (open, os.*) that reach a host's simulated disk for paths under its data directory.

During a run, ``builtins.open``/``io.open`` and the ``os`` file functions
listed in ``_SWAPS`` are stand-ins. A stand-in given a path under
:data:`~seedloop._disk.DATA_ROOT` (``/seedloop/<host>/...``), or a
descriptor it handed out, works on the calling host's simulated disk (the
engine's ``DiskCore``); everything else goes to the real function unchanged.
``os.path.exists/isfile/isdir/getsize``, ``os.makedirs`` and ``pathlib.Path``
call these functions, so they follow. Outside a run every stand-in is the
real function.

File objects are the standard ``io`` classes (``BufferedReader``/``Writer``/
``Random``, ``TextIOWrapper``) over :class:`SimFileIO`, a raw file in place
of ``io.FileIO``: buffering, text decoding, newlines, iteration and
``seek``/``tell`` behave as with a real file. ``flush()`` moves Python's
buffer to the page cache; only ``os.fsync`` makes it durable.
"""

from __future__ import annotations

import builtins
import errno
import glob
import io
import locale
import os
import pathlib
import posixpath
import stat as stat_mod
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from .._disk import DATA_ROOT, Disk, DiskError
from ..net import _DATA_DIR_HOOKS, Network
from .guards import _allow_real_io, _escape
from .state import _get_ident, _worlds

#: Simulated-disk descriptors start here: above every C int (and above the
#: simulated sockets' numbers), so a real syscall never mistakes one for its own.
DISK_FD_BASE = 1 << 40

_real_open = builtins.open
_R = {
    name: getattr(os, name)
    for name in (
        "open", "read", "write", "close", "fsync", "fdatasync", "lseek", "ftruncate",
        "fstat", "stat", "lstat", "listdir", "scandir", "rename", "replace", "remove",
        "unlink", "mkdir", "rmdir", "utime", "access", "chmod", "truncate", "sendfile",
    )
    if hasattr(os, name)
}
_ROOT_SLASH = DATA_ROOT + "/"
_DEV = 0x5EED  # st_dev of every simulated file


class _Target:
    """A path resolved to one host's disk: (disk, path relative to its data directory)."""

    __slots__ = ("net", "disk", "rel", "shown")

    def __init__(self, net: Network, disk: Disk, rel: str, shown: str) -> None:
        self.net = net
        self.disk = disk
        self.rel = rel
        self.shown = shown


def _network() -> Network:
    w = _worlds.get(_get_ident())
    get = getattr(w.loop, "_sim_net", None) if w is not None else None
    if get is None:
        raise DiskError(
            f"paths under {DATA_ROOT} are simulated disks: they need a run on a seedloop.SeedLoop"
        )
    net: Network = get()
    return net


def _target(path: Any) -> _Target | None:
    """The simulated disk ``path`` is on, or None for a real path (or outside a run)."""
    if type(path) is str:
        p = path
    elif isinstance(path, int):
        return None
    else:
        try:
            p = os.fspath(path)
        except TypeError:
            return None
        if isinstance(p, bytes):
            try:
                p = p.decode()
            except UnicodeDecodeError:
                return None
    if not p.startswith(DATA_ROOT) or _get_ident() not in _worlds:
        return None
    p = posixpath.normpath(p)
    if p == DATA_ROOT:
        raise DiskError(
            f"{DATA_ROOT} itself holds the hosts' data directories; use host.data_dir "
            f"({DATA_ROOT}/<host name>) and paths below it"
        )
    if not p.startswith(_ROOT_SLASH):
        return None  # /seedloopx: an ordinary real path
    if not _watching:
        _watch_c_level()
    net = _network()
    name, _, rel = p[len(_ROOT_SLASH) :].partition("/")
    here = net.current_host()
    if name != here.name:
        raise DiskError(
            f"{p!r} is in host {name!r}'s data directory, but this code runs on host "
            f"{here.name!r}: a host sees only its own disk. Spawn the code on {name!r} "
            f"(net.host({name!r}).spawn(...)), or inspect it with "
            f"net.host({name!r}).disk.files()"
        )
    return _Target(net, here.disk, rel, p)


def _target_at(path: Any, dir_fd: Any) -> _Target | None:
    """:func:`_target`, with ``dir_fd`` a simulated directory's descriptor (``shutil.rmtree``)."""
    if dir_fd is None:
        return _target(path)
    if _disk_fd(dir_fd) is None:
        return None  # a real directory descriptor: the real call
    net, disk, rel = _fd_owner(dir_fd)
    p = os.fsdecode(os.fspath(path))
    if p.startswith("/"):
        return _target(p)
    rel = posixpath.normpath(posixpath.join(rel, p)) if rel else posixpath.normpath(p)
    if rel == ".":
        rel = ""
    if rel == ".." or rel.startswith("../"):
        raise DiskError(f"{p!r} relative to {disk.data_dir}/{rel} leaves the data directory")
    return _Target(net, disk, rel, f"{disk.data_dir}/{rel}".rstrip("/"))


def _raise(e: OSError, shown: str, shown2: str | None = None) -> OSError:
    """The engine's OSError with the path the caller gave, as the real call reports it."""
    if shown2 is None:
        return OSError(e.errno, e.strerror, shown)
    return OSError(e.errno, e.strerror, shown, None, shown2)


def _cost(disk: Disk, op: str) -> None:
    """Let virtual time pass for a slow disk: the calling code blocks, as a real call would."""
    if disk._timed:
        w = _worlds.get(_get_ident())
        net = getattr(w.loop, "_seedloop_net", None) if w is not None else None
        # Only this run's disks move this run's clock (not a file object of
        # an earlier run that the garbage collector closes now).
        if net is not None and net._disks is disk._core:
            secs = disk._core.latency(disk._hid, op)
            if secs:
                w.loop._engine_advance(secs)  # type: ignore[union-attr]


# -- C-level file users --------------------------------------------------------

_watching = False
_C_LEVEL_HINT = (
    "it opens files in C, below Python's open(), so it would use the real filesystem "
    "(where the path does not exist), not the host's simulated disk; keep such data in "
    "memory (sqlite3 ':memory:') or in a real temporary directory outside data_dir "
    "(not crash-simulated)"
)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Refuse C-level opens of data-directory paths inside a run (an audit hook)."""
    if event != "open" and event != "sqlite3.connect":
        return
    path = args[0] if args else None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not path.startswith(_ROOT_SLASH):
        return
    if _get_ident() not in _worlds or _allow_real_io.get():
        return
    if event == "sqlite3.connect":
        what = f"sqlite3.connect({path!r}), a simulated-disk path,"
    else:
        what = f"io.FileIO (or another C-level open) of the simulated-disk path {path!r}"
    raise _escape(what, _C_LEVEL_HINT)


def _watch_c_level() -> None:
    """Install the audit hook, once, when a process first uses a data directory.

    Audit hooks cannot be removed and see every audited event of the process,
    so processes that never touch a simulated disk never pay for one.
    """
    global _watching
    if not _watching:
        _watching = True
        sys.addaudithook(_audit)


_DATA_DIR_HOOKS.append(_watch_c_level)


# -- descriptors ---------------------------------------------------------------


def _disk_fd(fd: Any) -> int | None:
    """The engine's number for a simulated-disk descriptor, or None for a real one."""
    if type(fd) is int and fd >= DISK_FD_BASE:
        return fd - DISK_FD_BASE
    return None


def _fd_owner(fd: int) -> tuple[Network, Disk, str]:
    """(network, disk, path) of a descriptor this run opened (and did not close)."""
    w = _worlds.get(_get_ident())
    if w is not None:
        net = _network()
        entry = net._disk_fds.get(fd)
        if entry is not None:
            # After a crash of its host the engine makes every use a no-op:
            # the process that held it lost power, what it does goes nowhere.
            return net, entry[0], entry[1]
    raise OSError(errno.EBADF, "Bad file descriptor")


def _fileno(obj: Any) -> int:
    if isinstance(obj, int):
        return obj
    fileno = getattr(obj, "fileno", None)
    if fileno is None:
        raise TypeError("argument must be an int, or have a fileno() method.")
    return int(fileno())


def _open_fd(t: _Target, flags: int) -> int:
    acc = flags & os.O_ACCMODE
    try:
        n = t.disk._core.open(
            t.disk._hid,
            t.rel,
            acc in (os.O_RDONLY, os.O_RDWR),
            acc in (os.O_WRONLY, os.O_RDWR),
            bool(flags & os.O_APPEND),
            bool(flags & os.O_CREAT),
            bool(flags & os.O_EXCL),
            bool(flags & os.O_TRUNC),
            bool(flags & getattr(os, "O_DIRECTORY", 0)),
        )
    except OSError as e:
        raise _raise(e, t.shown) from None
    fd = DISK_FD_BASE + n
    t.net._disk_fds[fd] = (t.disk, t.rel)
    _cost(t.disk, "open")
    return fd


def sim_os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
    t = _target_at(path, dir_fd)
    if t is None:
        return _R["open"](path, flags, mode, dir_fd=dir_fd)
    return _open_fd(t, flags)


def sim_read(fd: int, n: int) -> bytes:
    if _disk_fd(fd) is None:
        return _R["read"](fd, n)
    net, disk, _ = _fd_owner(fd)
    if n < 0:
        raise ValueError("negative count")
    data = net._disk_core().read(fd - DISK_FD_BASE, n)
    _cost(disk, "read")
    return data


def sim_write(fd: int, data: Any) -> int:
    if _disk_fd(fd) is None:
        return _R["write"](fd, data)
    net, disk, _ = _fd_owner(fd)
    n = net._disk_core().write(fd - DISK_FD_BASE, bytes(memoryview(data)))
    _cost(disk, "write")
    return n


def sim_close(fd: int) -> None:
    if _disk_fd(fd) is None:
        return _R["close"](fd)
    net, _, _ = _fd_owner(fd)
    net._disk_core().close(fd - DISK_FD_BASE)
    net._disk_fds.pop(fd, None)
    return None


def _sync(real: Any, fd: Any) -> None:
    n = _fileno(fd)
    if _disk_fd(n) is None:
        return real(fd)
    net, disk, _ = _fd_owner(n)
    try:
        net._disk_core().fsync(n - DISK_FD_BASE)
    finally:
        _cost(disk, "fsync")
    return None


def sim_fsync(fd: Any) -> None:
    return _sync(_R["fsync"], fd)


def sim_fdatasync(fd: Any) -> None:
    return _sync(_R["fdatasync"], fd)


def sim_lseek(fd: int, pos: int, how: int) -> int:
    if _disk_fd(fd) is None:
        return _R["lseek"](fd, pos, how)
    net, _, _ = _fd_owner(fd)
    return net._disk_core().seek(fd - DISK_FD_BASE, pos, how)


def sim_ftruncate(fd: int, length: int) -> None:
    if _disk_fd(fd) is None:
        return _R["ftruncate"](fd, length)
    net, disk, _ = _fd_owner(fd)
    if length < 0:
        raise OSError(errno.EINVAL, "Invalid argument")
    net._disk_core().truncate(fd - DISK_FD_BASE, length)
    _cost(disk, "write")
    return None


def _stat_result(is_dir: bool, size: int, ino: int, nlink: int) -> os.stat_result:
    mode = (stat_mod.S_IFDIR | 0o755) if is_dir else (stat_mod.S_IFREG | 0o644)
    w = _worlds.get(_get_ident())
    t = w.wall_epoch if w is not None else 0.0
    ns = int(t * 1e9)
    fields = (mode, ino, _DEV, nlink, os.getuid(), os.getgid(), size, int(t), int(t), int(t))
    extra = {
        "st_atime": t, "st_mtime": t, "st_ctime": t,
        "st_atime_ns": ns, "st_mtime_ns": ns, "st_ctime_ns": ns,
        "st_blksize": 4096, "st_blocks": (size + 511) // 512,
    }
    return os.stat_result(fields, extra)


def sim_fstat(fd: int) -> os.stat_result:
    if _disk_fd(fd) is None:
        return _R["fstat"](fd)
    net, _, _ = _fd_owner(fd)
    return _stat_result(*net._disk_core().fstat(fd - DISK_FD_BASE))


def _is_data_root(path: Any) -> bool:
    """Whether ``path`` is DATA_ROOT itself, inside a run."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    p = os.fsdecode(os.fspath(path))
    return (
        p.startswith(DATA_ROOT)
        and posixpath.normpath(p) == DATA_ROOT
        and _get_ident() in _worlds
    )


def _stat_path(real: Any, path: Any, dir_fd: Any, follow_symlinks: bool) -> os.stat_result:
    if _disk_fd(path) is not None:
        return sim_fstat(path)
    if dir_fd is None and _is_data_root(path):
        # The directory that holds the data directories exists (Path.resolve
        # and os.path.realpath walk through it); only listing it is refused.
        return _stat_result(True, 4096, 1, 2)
    t = _target_at(path, dir_fd)
    if t is None:
        return real(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
    try:
        result = _stat_result(*t.disk._core.stat(t.disk._hid, t.rel))
    except OSError as e:
        raise _raise(e, t.shown) from None
    _cost(t.disk, "meta")
    return result


def sim_stat(path: Any, *, dir_fd: Any = None, follow_symlinks: bool = True) -> os.stat_result:
    return _stat_path(_R["stat"], path, dir_fd, follow_symlinks)


def sim_lstat(path: Any, *, dir_fd: Any = None) -> os.stat_result:
    return _stat_path(lambda p, dir_fd, follow_symlinks: _R["lstat"](p, dir_fd=dir_fd), path, dir_fd, False)


def _names(t: _Target) -> list[tuple[str, bool]]:
    try:
        names = t.disk._core.listdir(t.disk._hid, t.rel)
    except OSError as e:
        raise _raise(e, t.shown) from None
    _cost(t.disk, "meta")
    return names


def _dir_target(path: Any) -> _Target | None:
    n = _disk_fd(path)
    if n is None:
        return _target(path)
    net, disk, rel = _fd_owner(path)
    return _Target(net, disk, rel, f"{disk.data_dir}/{rel}".rstrip("/"))


def sim_listdir(path: Any = None) -> list[Any]:
    t = _dir_target(path) if path is not None else None
    if t is None:
        return _R["listdir"]() if path is None else _R["listdir"](path)
    names = [name for name, _ in _names(t)]
    if isinstance(path, bytes) or isinstance(getattr(path, "__fspath__", lambda: "")(), bytes):
        return [os.fsencode(n) for n in names]
    return names


class SimDirEntry:
    """An ``os.DirEntry`` of a simulated directory."""

    __slots__ = ("name", "path", "_is_dir", "_t")

    def __init__(self, name: Any, path: Any, is_dir: bool, t: _Target) -> None:
        self.name = name
        self.path = path
        self._is_dir = is_dir
        self._t = t

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"

    def __fspath__(self) -> Any:
        return self.path

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._is_dir

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return not self._is_dir

    def is_symlink(self) -> bool:
        return False

    def is_junction(self) -> bool:
        return False

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        t, name = self._t, os.fsdecode(self.name)
        rel = f"{t.rel}/{name}" if t.rel else name
        try:
            return _stat_result(*t.disk._core.stat(t.disk._hid, rel))
        except OSError as e:
            raise _raise(e, f"{t.shown}/{name}") from None

    def inode(self) -> int:
        return self.stat().st_ino


class _ScandirIterator:
    """What ``os.scandir`` returns: an iterator that is also a context manager."""

    def __init__(self, entries: list[SimDirEntry]) -> None:
        self._it: Iterator[SimDirEntry] = iter(entries)

    def __iter__(self) -> _ScandirIterator:
        return self

    def __next__(self) -> SimDirEntry:
        return next(self._it)

    def close(self) -> None:
        self._it = iter(())

    def __enter__(self) -> _ScandirIterator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def sim_scandir(path: Any = None) -> Any:
    t = _dir_target(path) if path is not None else None
    if t is None:
        return _R["scandir"]() if path is None else _R["scandir"](path)
    base = path if _disk_fd(path) is None else None
    entries = []
    raw = os.fspath(base) if base is not None else None
    for name, is_dir in _names(t):
        if raw is None:
            entries.append(SimDirEntry(name, name, is_dir, t))
        elif isinstance(raw, bytes):
            entries.append(SimDirEntry(os.fsencode(name), posixpath.join(raw, os.fsencode(name)), is_dir, t))
        else:
            entries.append(SimDirEntry(name, posixpath.join(raw, name), is_dir, t))
    return _ScandirIterator(entries)


def _namespace_op(real: Any, method: str, path: Any, *, dir_fd: Any = None, **kw: Any) -> None:
    t = _target_at(path, dir_fd)
    if t is None:
        return real(path, dir_fd=dir_fd, **kw)
    try:
        getattr(t.disk._core, method)(t.disk._hid, t.rel)
    except OSError as e:
        raise _raise(e, t.shown) from None
    _cost(t.disk, "meta")
    return None


def sim_mkdir(path: Any, mode: int = 0o777, *, dir_fd: Any = None) -> None:
    return _namespace_op(lambda p, dir_fd: _R["mkdir"](p, mode, dir_fd=dir_fd), "mkdir", path, dir_fd=dir_fd)


def sim_rmdir(path: Any, *, dir_fd: Any = None) -> None:
    return _namespace_op(_R["rmdir"], "rmdir", path, dir_fd=dir_fd)


def sim_unlink(path: Any, *, dir_fd: Any = None) -> None:
    return _namespace_op(_R["unlink"], "unlink", path, dir_fd=dir_fd)


def sim_remove(path: Any, *, dir_fd: Any = None) -> None:
    return _namespace_op(_R["remove"], "unlink", path, dir_fd=dir_fd)


def _move(real: Any, src: Any, dst: Any, src_dir_fd: Any, dst_dir_fd: Any) -> None:
    ts = _target_at(src, src_dir_fd)
    td = _target_at(dst, dst_dir_fd)
    if ts is None and td is None:
        return real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    if ts is None or td is None:
        # One side on a simulated disk, the other real: another device.
        raise OSError(errno.EXDEV, "Invalid cross-device link", os.fspath(src), None, os.fspath(dst))
    try:
        ts.disk._core.rename(ts.disk._hid, ts.rel, td.rel)
    except OSError as e:
        raise _raise(e, ts.shown, td.shown) from None
    _cost(ts.disk, "meta")
    return None


def sim_rename(src: Any, dst: Any, *, src_dir_fd: Any = None, dst_dir_fd: Any = None) -> None:
    return _move(_R["rename"], src, dst, src_dir_fd, dst_dir_fd)


def sim_replace(src: Any, dst: Any, *, src_dir_fd: Any = None, dst_dir_fd: Any = None) -> None:
    return _move(_R["replace"], src, dst, src_dir_fd, dst_dir_fd)


def _exists_only(name: str) -> Any:
    """A stand-in for a call the disk does not model (times, modes): it succeeds on
    an existing simulated file, fails with ENOENT on a missing one."""
    real = _R[name]

    def call(path: Any, *args: Any, **kwargs: Any) -> Any:
        if _disk_fd(path) is not None:
            _fd_owner(path)
            return True if name == "access" else None
        t = _target_at(path, kwargs.get("dir_fd"))
        if t is None:
            return real(path, *args, **kwargs)
        try:
            t.disk._core.stat(t.disk._hid, t.rel)
        except OSError as e:
            if name == "access":
                return False
            raise _raise(e, t.shown) from None
        return True if name == "access" else None

    return call


sim_utime = _exists_only("utime")
sim_access = _exists_only("access")
sim_chmod = _exists_only("chmod")


def sim_truncate(path: Any, length: int) -> None:
    if _disk_fd(path) is not None:
        return sim_ftruncate(path, length)
    t = _target(path)
    if t is None:
        return _R["truncate"](path, length)
    fd = _open_fd(t, os.O_WRONLY)
    try:
        sim_ftruncate(fd, length)
    finally:
        sim_close(fd)
    return None


def sim_sendfile(out_fd: int, in_fd: int, *args: Any, **kwargs: Any) -> int:
    """``os.sendfile``: refused with EINVAL on simulated files, so ``shutil`` falls back to
    reading and writing (real sockets and files go to the real call)."""
    if _disk_fd(out_fd) is None and _disk_fd(in_fd) is None:
        return _R["sendfile"](out_fd, in_fd, *args, **kwargs)
    raise OSError(errno.EINVAL, "Invalid argument")


# -- file objects --------------------------------------------------------------


class SimFileIO(io.RawIOBase):
    """A raw file on a simulated disk: what ``io.FileIO`` is for a real file.

    It keeps its run's disk and descriptor itself rather than looking the
    number up: a file object of an earlier run that the garbage collector
    closes during a later run (flushing its buffer) must reach its own run's
    disk, not whichever file has the same number now.
    """

    def __init__(self, fd: int, name: Any, mode: str, closefd: bool = True) -> None:
        super().__init__()
        net, disk, _ = _fd_owner(fd)
        self._core = net._disk_core()
        self._efd = fd - DISK_FD_BASE
        self._disk = disk
        self._net = net
        self._fd = fd
        self.name = name
        self._mode = mode
        self._closefd = closefd
        self._readable = "r" in mode or "+" in mode
        self._writable = any(c in mode for c in "wax+")

    def __repr__(self) -> str:
        if self.closed:
            return "<seedloop SimFileIO [closed]>"
        return f"<seedloop SimFileIO name={self.name!r} mode={self.mode!r} closefd={self._closefd}>"

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def closefd(self) -> bool:
        return self._closefd

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def fileno(self) -> int:
        self._check()
        return self._fd

    def isatty(self) -> bool:
        self._check()
        return False

    def readable(self) -> bool:
        self._check()
        return self._readable

    def writable(self) -> bool:
        self._check()
        return self._writable

    def seekable(self) -> bool:
        self._check()
        return True

    def readinto(self, b: Any) -> int:
        self._check()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")
        view = memoryview(b).cast("B")
        data = self._core.read(self._efd, len(view))
        _cost(self._disk, "read")
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        self._check()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")
        if size is None or size < 0:
            return self.readall()
        data = self._core.read(self._efd, size)
        _cost(self._disk, "read")
        return data

    def readall(self) -> bytes:
        self._check()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")
        size = self._core.fstat(self._efd)[1] if not self._core.is_stale(self._efd) else 0
        pos = self._core.seek(self._efd, 0, os.SEEK_CUR)
        data = self._core.read(self._efd, max(size - pos, 0))
        _cost(self._disk, "read")
        return data

    def write(self, b: Any) -> int:
        self._check()
        if not self._writable:
            raise io.UnsupportedOperation("File not open for writing")
        n = self._core.write(self._efd, bytes(memoryview(b)))
        _cost(self._disk, "write")
        return n

    def seek(self, pos: int, whence: int = 0) -> int:
        self._check()
        return self._core.seek(self._efd, pos, whence)

    def tell(self) -> int:
        self._check()
        return self._core.seek(self._efd, 0, os.SEEK_CUR)

    def truncate(self, size: int | None = None) -> int:
        self._check()
        if not self._writable:
            raise io.UnsupportedOperation("File not open for writing")
        if size is None:
            size = self.tell()
        if size < 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        self._core.truncate(self._efd, size)
        _cost(self._disk, "write")
        return size

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            if self._closefd:
                self._core.close(self._efd)
                self._net._disk_fds.pop(self._fd, None)


def _parse_mode(mode: str) -> tuple[set[str], int]:
    """The mode's letters and the os.open flags for them (as io.open checks them)."""
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    letters = set(mode)
    if letters - set("axrwb+t") or len(mode) > len(letters):
        raise ValueError(f"invalid mode: {mode!r}")
    creating, reading, writing, appending = "x" in letters, "r" in letters, "w" in letters, "a" in letters
    if "t" in letters and "b" in letters:
        raise ValueError("can't have text and binary mode at once")
    if creating + reading + writing + appending != 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    updating = "+" in letters
    if creating:
        flags = os.O_CREAT | os.O_EXCL
    elif reading:
        flags = 0
    elif writing:
        flags = os.O_CREAT | os.O_TRUNC
    else:
        flags = os.O_CREAT | os.O_APPEND
    if updating:
        flags |= os.O_RDWR
    elif reading:
        flags |= os.O_RDONLY
    else:
        flags |= os.O_WRONLY
    return letters, flags


def _raw_mode(letters: set[str]) -> str:
    """``FileIO.mode`` for these letters: 'rb', 'wb', 'ab', 'xb', with '+' as 'rb+' etc."""
    if "x" in letters:
        base = "xb"
    elif "a" in letters:
        base = "ab"
    elif "w" in letters:
        base = "wb"
    else:
        base = "rb"
    if "+" in letters:
        return "ab+" if base == "ab" else ("xb+" if base == "xb" else "rb+")
    return base


def sim_open(
    file: Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Any = None,
) -> Any:
    """``open()``: a simulated-disk file for paths under a data directory, else the real one."""
    fd_given = _disk_fd(file) is not None
    t = None if fd_given else _target(file)
    if t is None and not fd_given:
        return _real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
    letters, flags = _parse_mode(mode)
    binary = "b" in letters
    if binary and encoding is not None:
        raise ValueError("binary mode doesn't take an encoding argument")
    if binary and errors is not None:
        raise ValueError("binary mode doesn't take an errors argument")
    if binary and newline is not None:
        raise ValueError("binary mode doesn't take a newline argument")
    if binary and buffering == 1:
        warnings.warn(
            "line buffering (buffering=1) isn't supported in binary mode, the default "
            "buffer size will be used",
            RuntimeWarning,
            2,
        )
    if fd_given:
        _fd_owner(file)
        fd = file
    else:
        if not closefd:
            raise ValueError("Cannot use closefd=False with file name")
        if opener is None:
            fd = _open_fd(t, flags)  # type: ignore[arg-type]
        else:
            # The opener calls os.open (the stand-in) and hands back its descriptor.
            fd = opener(file, flags | getattr(os, "O_CLOEXEC", 0))
            if not isinstance(fd, int):
                raise TypeError(f"expected integer from opener, got {type(fd).__name__}")
            if fd < 0:
                raise ValueError(f"opener returned {fd}")
            if _disk_fd(fd) is None:
                raise DiskError(
                    f"the opener given to open({os.fspath(file)!r}) returned a real descriptor "
                    "for a simulated-disk path; let it call os.open on the path"
                )
    try:
        if stat_mod.S_ISDIR(sim_fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", os.fspath(file))
        raw = SimFileIO(fd, file, _raw_mode(letters), closefd)
        if "a" in letters:
            raw.seek(0, os.SEEK_END)
        line_buffering = buffering == 1
        if buffering < 0 or buffering == 1:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if binary:
                return raw
            raise ValueError("can't have unbuffered text I/O")
        buffer: Any
        if "+" in letters:
            buffer = io.BufferedRandom(raw, buffering)
        elif "r" in letters:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        encoding = io.text_encoding(encoding)
        if encoding == "locale":
            # What open() picks for a file that is not a terminal; resolved here
            # because 3.10's TextIOWrapper would ask the fake descriptor's device.
            encoding = locale.getpreferredencoding(False)
        text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering)
        text.mode = mode  # type: ignore[misc]
        return text
    except BaseException:
        if not fd_given:
            sim_close(fd)
        raise


sim_open.__name__ = sim_open.__qualname__ = "open"
sim_open.__doc__ = _real_open.__doc__
sim_open.__wrapped__ = _real_open  # type: ignore[attr-defined]

# (real object, stand-in), applied by patching.py during runs. builtins.open
# and io.open are one object; os.path and pathlib call the os functions by
# attribute, so they follow.
_SWAPS: list[tuple[object, object]] = [(_real_open, sim_open)]
for _name, _fake in (
    ("open", sim_os_open),
    ("read", sim_read),
    ("write", sim_write),
    ("close", sim_close),
    ("fsync", sim_fsync),
    ("fdatasync", sim_fdatasync),
    ("lseek", sim_lseek),
    ("ftruncate", sim_ftruncate),
    ("fstat", sim_fstat),
    ("stat", sim_stat),
    ("lstat", sim_lstat),
    ("listdir", sim_listdir),
    ("scandir", sim_scandir),
    ("rename", sim_rename),
    ("replace", sim_replace),
    ("remove", sim_remove),
    ("unlink", sim_unlink),
    ("mkdir", sim_mkdir),
    ("rmdir", sim_rmdir),
    ("utime", sim_utime),
    ("access", sim_access),
    ("chmod", sim_chmod),
    ("truncate", sim_truncate),
    ("sendfile", sim_sendfile),
):
    _real = _R.get(_name)
    if _real is not None:
        _fake.__name__ = _fake.__qualname__ = _name  # type: ignore[attr-defined]
        _fake.__doc__ = getattr(_real, "__doc__", None)
        _fake.__wrapped__ = _real  # type: ignore[attr-defined]
        _SWAPS.append((_real, _fake))

# pathlib and glob call some os functions through class attributes bound at
# import, not through os (3.10: pathlib._NormalAccessor; 3.13: glob's
# _StringGlobber.scandir/lstat): those attributes get the stand-ins too,
# static (a plain function would bind self).
_CLASS_PATCHES: list[tuple[type, str, object]] = []
_FAKE_OF = {id(real): fake for real, fake in _SWAPS}
for _owner in (getattr(pathlib, "_NormalAccessor", None), getattr(glob, "_StringGlobber", None)):
    if _owner is None:
        continue
    for _attr, _value in sorted(vars(_owner).items()):
        _value = _value.__func__ if isinstance(_value, staticmethod) else _value
        _fake = _FAKE_OF.get(id(_value))
        if _fake is not None:
            _CLASS_PATCHES.append((_owner, _attr, staticmethod(_fake)))
