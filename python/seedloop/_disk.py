"""A host's simulated disk as the user sees it: faults, capacity, latency, torn writes and inspection.

The model itself lives in the engine (``_engine.DiskCore``, one per run,
``crates/engine/src/disk.rs``); file functions reach it through
``_world/disk.py``. This module holds the per-host settings object that
``seedloop.net.Host.disk`` returns and the path rules both share.
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Callable
from typing import Any

from . import _engine
from .errors import SeedloopError

#: Every host's data directory is ``DATA_ROOT + "/" + host name``.
DATA_ROOT = "/seedloop"

#: Injectable errors, by name.
ERRORS = {"EIO": errno.EIO, "ENOSPC": errno.ENOSPC}
#: Operation kinds for faults and latency. "meta" is stat, listdir, mkdir,
#: rename, unlink and rmdir.
OPS = ("open", "read", "write", "fsync", "meta")


class DiskError(SeedloopError, ValueError):
    """A simulated-disk setting or path that cannot work (the message says how to fix it)."""


class Disk:
    """The simulated disk of one host: ``host.disk``.

    Files under ``host.data_dir`` live here. Writes reach the page cache
    (every read sees them) and become durable only with ``fsync``; names
    (create, rename, unlink, mkdir) only when their directory is fsynced.
    A crash of the host keeps only what is durable (see ``docs/disk.md``).
    """

    def __init__(
        self,
        core: _engine.DiskCore,
        hid: int,
        data_dir: str,
        dist_spec: Callable[[Any], tuple[str, list[float]]],
    ) -> None:
        self._core = core
        self._hid = hid
        self.data_dir = data_dir
        self._dist_spec = dist_spec
        self._capacity: int | None = None
        self._torn = False
        self._latency: Any = None
        #: True once any latency is set: file calls then draw one per operation.
        self._timed = False

    def __repr__(self) -> str:
        return f"<seedloop.net.Disk {self.data_dir}>"

    # -- settings ---------------------------------------------------------

    @property
    def capacity(self) -> int | None:
        """Bytes the host's files may hold (None: unlimited). A write that does not
        fit writes what fits; one that fits nothing fails with ENOSPC."""
        return self._capacity

    @capacity.setter
    def capacity(self, size: int | None) -> None:
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise DiskError(f"disk capacity must be a number of bytes >= 0 or None, got {size!r}")
        self._core.set_capacity(self._hid, size)
        self._capacity = size

    @property
    def torn_writes(self) -> bool:
        """Whether a crash keeps a seeded prefix of each file's unsynced writes, the last
        one cut at a seeded byte (False: a crash drops every unsynced write)."""
        return self._torn

    @torn_writes.setter
    def torn_writes(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise DiskError(f"torn_writes must be True or False, got {on!r}")
        self._core.set_torn(self._hid, on)
        self._torn = on

    @property
    def latency(self) -> Any:
        """Virtual seconds every file operation takes (a number, or a ``net`` latency
        distribution; None: instant). The calling code blocks, as a real
        synchronous file call blocks its event loop."""
        return self._latency

    @latency.setter
    def latency(self, dist: Any) -> None:
        self.set_latency(dist)

    def set_latency(self, dist: Any, *, op: str | None = None) -> None:
        """Set the latency of one operation kind (``op`` in :data:`OPS`), or of all."""
        if op is not None and op not in OPS:
            raise DiskError(f"unknown disk operation {op!r}; use one of {', '.join(OPS)}")
        if dist is None:
            self._core.set_latency(self._hid, op)
        else:
            try:
                kind, params = self._dist_spec(dist)
                self._core.set_latency(self._hid, op, kind, params)
            except (TypeError, ValueError) as e:
                raise DiskError(f"disk latency: {e}") from None
            self._timed = True
        if op is None:
            self._latency = dist

    def fail(
        self,
        op: str,
        *,
        path: str | None = None,
        error: str = "EIO",
        times: int | None = 1,
        probability: float = 1.0,
    ) -> None:
        """Make ``op`` fail with ``error`` on paths under ``path`` (default: everywhere).

        ``op`` is one of ``"open"``, ``"read"``, ``"write"``, ``"fsync"``,
        ``"meta"``; ``error`` ``"EIO"`` or ``"ENOSPC"``. The next ``times``
        matching calls fail (None: every one), each with ``probability``
        (drawn from the host's seeded stream). A failed fsync also loses the
        file's unsynced writes, as on Linux: a later fsync succeeds without
        them, and a crash drops them.
        """
        if op not in OPS:
            raise DiskError(f"unknown disk operation {op!r}; use one of {', '.join(OPS)}")
        code = ERRORS.get(error) if isinstance(error, str) else None
        if code is None:
            raise DiskError(f"unknown disk error {error!r}; use one of {', '.join(ERRORS)}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise DiskError(f"times must be an int >= 1 or None (every time), got {times!r}")
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not (
            0.0 <= probability <= 1.0
        ):
            raise DiskError(f"probability must be a number in [0, 1], got {probability!r}")
        prefix = "" if path is None else self._relative(path)
        self._core.add_fault(self._hid, op, prefix, code, times, float(probability))

    def clear_faults(self) -> None:
        """Remove every fault rule of this disk."""
        self._core.clear_faults(self._hid)

    # -- inspection -------------------------------------------------------

    def files(self, *, durable: bool = False) -> dict[str, bytes]:
        """Every file (absolute path -> bytes) as reads see them, or as a crash now would leave
        them with ``durable=True`` (without torn prefixes)."""
        return {
            f"{self.data_dir}/{path}": data
            for path, is_dir, data in self._core.snapshot(self._hid, durable)
            if not is_dir
        }

    def directories(self, *, durable: bool = False) -> list[str]:
        """Every directory below the data directory (absolute paths, sorted)."""
        return [
            f"{self.data_dir}/{path}"
            for path, is_dir, _ in self._core.snapshot(self._hid, durable)
            if is_dir
        ]

    def _relative(self, path: Any) -> str:
        """``path`` (absolute under the data directory, or relative to it) as the engine names it."""
        if not isinstance(path, str):
            raise DiskError(f"path must be a str, got {path!r}")
        if not path.startswith("/"):
            path = f"{self.data_dir}/{path}"
        path = posixpath.normpath(path)
        if path == self.data_dir:
            return ""
        if not path.startswith(self.data_dir + "/"):
            raise DiskError(f"{path!r} is not under this host's data directory {self.data_dir}")
        return path[len(self.data_dir) + 1 :]
