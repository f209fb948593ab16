"""Fake file descriptors of simulated sockets, and select.poll/select.select stand-ins that answer for them."""

from __future__ import annotations

import errno
import select
import weakref
from typing import Any, Protocol

from .guards import guarded_select

# Above every C int: no kernel descriptor can have such a number, and a real
# syscall given one fails in Python's argument parsing (OverflowError), before
# the kernel is asked. Libraries that only poll a socket's fileno() to learn
# whether a pooled connection is still alive (httpcore) get an answer from the
# simulation instead (see the stand-ins below); -1 would mean "closed".
FAKE_FD_BASE = 1 << 32

_real_poll = select.poll
_real_select = select.select
_POLLIN = getattr(select, "POLLIN", 1)
_POLLPRI = getattr(select, "POLLPRI", 2)
_POLLOUT = getattr(select, "POLLOUT", 4)
_POLLHUP = getattr(select, "POLLHUP", 16)
_POLLNVAL = getattr(select, "POLLNVAL", 32)


class PollOwner(Protocol):
    def _poll_state(self) -> tuple[bool, bool] | None:
        """(readable, writable), or None once the socket is closed."""


# fd -> the simulated socket that has it. Weak: a forgotten socket's number
# simply stops answering (polled, it reads as closed, as a stale fd would).
_owners: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def register(fd: int, owner: PollOwner) -> None:
    """Make ``fd`` (from :data:`FAKE_FD_BASE` up) answer polls with ``owner``'s state."""
    _owners[fd] = owner


def is_fake(fd: int) -> bool:
    return fd >= FAKE_FD_BASE


def _fd_of(obj: Any) -> int:
    if isinstance(obj, int):
        fd = obj
    else:
        fileno = getattr(obj, "fileno", None)
        if fileno is None:
            raise TypeError("argument must be an int, or have a fileno() method.")
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def _state(fd: int) -> tuple[bool, bool] | None:
    owner = _owners.get(fd)
    return None if owner is None else owner._poll_state()


class SimPoll:
    """``select.poll()`` in a run: simulated sockets answer from the simulation,
    real descriptors (if any are registered too) from the real poll."""

    def __init__(self) -> None:
        self._real: Any = None
        self._fake: dict[int, int] = {}

    def register(self, fd: Any, eventmask: int = _POLLIN | _POLLPRI | _POLLOUT) -> None:
        n = _fd_of(fd)
        if is_fake(n):
            self._fake[n] = eventmask
            return
        if self._real is None:
            self._real = _real_poll()
        self._real.register(n, eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        n = _fd_of(fd)
        if is_fake(n):
            if n not in self._fake:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory")
            self._fake[n] = eventmask
            return
        if self._real is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        self._real.modify(n, eventmask)

    def unregister(self, fd: Any) -> None:
        n = _fd_of(fd)
        if is_fake(n):
            del self._fake[n]  # KeyError, as the real one
            return
        if self._real is None:
            raise KeyError(n)
        self._real.unregister(n)

    def poll(self, timeout: Any = None) -> list[tuple[int, int]]:
        events = []
        for fd, mask in self._fake.items():
            state = _state(fd)
            if state is None:
                events.append((fd, _POLLNVAL))
                continue
            readable, writable = state
            ev = (mask & _POLLIN if readable else 0) | (mask & _POLLOUT if writable else 0)
            if ev:
                events.append((fd, ev))
        if self._real is not None:
            # Never block on real descriptors while a simulated one is ready.
            events += self._real.poll(0 if events else timeout)
        # With only simulated sockets nothing can change while this call
        # blocks (the loop is not running): answer at once.
        return events


def sim_select(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None) -> tuple[list, list, list]:
    """``select.select`` in a run: simulated sockets are answered without a syscall."""
    rlist, wlist, xlist = list(rlist), list(wlist), list(xlist)
    fake = [
        (obj, kind)
        for kind, group in enumerate((rlist, wlist, xlist))
        for obj in group
        if is_fake(_fd_of(obj))
    ]
    if not fake:
        return guarded_select(rlist, wlist, xlist, timeout)
    ready: tuple[list, list, list] = ([], [], [])
    for obj, kind in fake:
        state = _state(_fd_of(obj))
        if state is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if kind < 2 and state[kind]:
            ready[kind].append(obj)
    real = [[o for o in group if not is_fake(_fd_of(o))] for group in (rlist, wlist, xlist)]
    if any(real):
        got = guarded_select(*real, 0 if any(ready) else timeout)
        for mine, theirs in zip(ready, got, strict=True):
            mine.extend(theirs)
    return ready


# (real object, stand-in), applied by patching.py during runs. select.select is
# swapped here only: descriptors that are not simulated sockets go on to the
# guard's select (a sleep without descriptors, an escape with real ones).
_SWAPS: list[tuple[object, object]] = [(_real_select, sim_select)]
if hasattr(select, "poll"):
    _SWAPS.append((_real_poll, SimPoll))
