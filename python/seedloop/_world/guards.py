"""The escape guards: real I/O, threads, processes and blocking inline waits refused in a run."""

from __future__ import annotations

import _thread
import concurrent.futures.thread
import contextvars
import os
import select
import socket
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import BlockingCallError, SimulationEscapeError
from .standins import _sim_sleep
from .state import _get_ident, _worlds

_allow_real_io: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "seedloop_allow_real_io", default=False
)
_simulated_sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()


def mark_simulated(sock: socket.socket) -> None:
    """Declare ``sock`` part of the simulation: its I/O methods are never reported.

    For the network layer, which adopts real (never connected) socket objects
    that libraries hand to ``loop.sock_connect``/``create_connection(sock=)``.
    """
    _simulated_sockets.add(sock)


@contextmanager
def real_io_allowed() -> Iterator[None]:
    """Let the code inside (in this context) do real I/O without an escape error."""
    token = _allow_real_io.set(True)
    try:
        yield
    finally:
        _allow_real_io.reset(token)


def _escape(what: str, hint: str) -> SimulationEscapeError:
    """The error for an escape, remembered by the run even if the code swallows it."""
    error = SimulationEscapeError(
        f"{what} inside a seedloop simulation would reach the real world and break "
        f"determinism; {hint}. (seedloop._world.real_io_allowed() permits it on purpose.)"
    )
    w = _worlds.get(_get_ident())
    if w is not None:
        w.escapes.append(error)
    return error


# -- escape guards ------------------------------------------------------------


def _guard(real: Callable[..., Any], what: str, hint: str) -> Callable[..., Any]:
    """A function that refuses inside a run (unless real I/O is allowed)."""

    def guard(*args: Any, **kwargs: Any) -> Any:
        if _get_ident() in _worlds and not _allow_real_io.get():
            raise _escape(what, hint)
        return real(*args, **kwargs)

    guard.__name__ = guard.__qualname__ = getattr(real, "__name__", "guard")
    guard.__doc__ = getattr(real, "__doc__", None)
    guard.__wrapped__ = real  # type: ignore[attr-defined]
    return guard


def _socket_guard(real: Callable[..., Any], name: str) -> Callable[..., Any]:
    def guard(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if _get_ident() in _worlds and not _allow_real_io.get() and self not in _simulated_sockets:
            raise _escape(
                f"socket.{name}() on a real socket",
                "use asyncio streams or loop.create_connection/create_server on "
                "seedloop's simulated network instead of real sockets",
            )
        return real(self, *args, **kwargs)

    guard.__name__ = name
    guard.__qualname__ = f"socket.{name}"
    guard.__doc__ = getattr(real, "__doc__", None)
    guard.__wrapped__ = real  # type: ignore[attr-defined]
    return guard


def _is_ip_literal(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, (bytes, bytearray)):
        try:
            host = bytes(host).decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return False
    try:
        socket.inet_pton(socket.AF_INET, host)
        return True
    except OSError:
        pass
    try:
        socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        return True
    except OSError:
        return False


def _dns_guard(real: Callable[..., Any], name: str) -> Callable[..., Any]:
    def guard(host: Any = None, *args: Any, **kwargs: Any) -> Any:
        if (
            _get_ident() in _worlds
            and not _allow_real_io.get()
            and not (name == "getaddrinfo" and _is_ip_literal(host))
        ):
            raise _escape(
                f"socket.{name}({host!r}), a real DNS lookup,",
                "resolve names through loop.getaddrinfo on seedloop's simulated network",
            )
        return real(host, *args, **kwargs)

    guard.__name__ = guard.__qualname__ = name
    guard.__doc__ = getattr(real, "__doc__", None)
    guard.__wrapped__ = real  # type: ignore[attr-defined]
    return guard


def _thread_guard(real: Callable[..., Any], what: str) -> Callable[..., Any]:
    def guard(*args: Any, **kwargs: Any) -> Any:
        w = _worlds.get(_get_ident())
        if w is not None and not w.allow_threads and not _allow_real_io.get():
            raise _escape(
                what,
                "threads run outside the seeded schedule; use asyncio tasks, or "
                "loop.run_in_executor/asyncio.to_thread, which run inline and "
                'deterministically; or pass executor="thread" to allow real threads '
                "(call_soon_threadsafe, run_coroutine_threadsafe, sync/async bridge "
                "queues) at the cost of determinism",
            )
        return real(*args, **kwargs)

    guard.__name__ = guard.__qualname__ = getattr(real, "__name__", "start")
    guard.__doc__ = getattr(real, "__doc__", None)
    guard.__wrapped__ = real  # type: ignore[attr-defined]
    return guard


_real_select = select.select


def guarded_select(
    rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None, /
) -> tuple[list[Any], list[Any], list[Any]]:
    """``select.select``: real descriptors are an escape; with none it is a sleep.

    ``select.select([], [], [], t)`` is a common way to sleep: it moves
    virtual time like ``time.sleep(t)`` (or raises under ``sleep="error"``).
    """
    if _get_ident() not in _worlds or _allow_real_io.get():
        return _real_select(rlist, wlist, xlist, timeout)
    if list(rlist) or list(wlist) or list(xlist):
        raise _escape(
            "select.select() on real file descriptors",
            "wait for sockets through asyncio (streams, loop.sock_recv) on seedloop's "
            "simulated network",
        )
    if timeout is None:
        raise BlockingCallError(
            "select.select([], [], [], None) inside a seedloop simulation blocks the event "
            "loop forever: nothing can wake it; use 'await asyncio.sleep(...)' or an asyncio "
            "primitive"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a float or None")
    if timeout < 0:
        raise ValueError("timeout must be non-negative")
    _sim_sleep(timeout)
    return [], [], []


guarded_select.__name__ = guarded_select.__qualname__ = "select"
guarded_select.__doc__ = _real_select.__doc__
guarded_select.__wrapped__ = _real_select  # type: ignore[attr-defined]


def _thread_start_guard(real: Callable[..., Any]) -> Callable[..., Any]:
    """``Thread.start`` in a run: refused, or with ``executor="thread"`` counted as outside work.

    While a thread started in the run is alive, an idle loop waits in real
    time for what the thread hands over (``call_soon_threadsafe``,
    ``run_coroutine_threadsafe``, sync/async bridge queues) instead of
    reporting a deadlock. Executor pool workers are not counted: they idle
    between jobs, and ``run_in_executor`` counts each job itself.
    """
    refuse = _thread_guard(real, "threading.Thread.start()")

    def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
        w = _worlds.get(_get_ident())
        if (
            w is None
            or not w.allow_threads
            or getattr(self, "_target", None) is concurrent.futures.thread._worker
        ):
            return refuse(self, *args, **kwargs)
        external = w.loop._engine_external
        run = self.run

        def counted_run() -> None:
            try:
                run()
            finally:
                external(-1)

        external(1)
        self.run = counted_run  # type: ignore[method-assign]
        try:
            return real(self, *args, **kwargs)
        except BaseException:
            external(-1)
            raise

    start.__name__ = start.__qualname__ = "start"
    start.__doc__ = getattr(real, "__doc__", None)
    start.__wrapped__ = real  # type: ignore[attr-defined]
    return start


_SUBPROCESS_HINT = (
    "start processes outside the simulation, or simulate the process with asyncio tasks"
)


def _loop_escape(what: str, hint: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _escape(what, hint)

    return refuse


_refuse_subprocess_transport = _loop_escape(
    "a subprocess (asyncio.create_subprocess_exec/shell, loop.subprocess_exec)", _SUBPROCESS_HINT
)
_refuse_read_pipe_transport = _loop_escape(
    "loop.connect_read_pipe()", "pipes are real file descriptors; use an asyncio.Queue"
)
_refuse_write_pipe_transport = _loop_escape(
    "loop.connect_write_pipe()", "pipes are real file descriptors; use an asyncio.Queue"
)


# -- blocking waits in inline executor work ------------------------------------

#: ``inline_work.active`` is true while ``run_in_executor`` work runs inline on
#: this thread (set by the loop; a thread-local, not a ContextVar, because
#: ``asyncio.to_thread`` runs the work in a context copied before the call).
inline_work = threading.local()
_real_condition_wait = threading.Condition.wait


#: Real seconds inline executor work may wait for another real thread to wake it.
_INLINE_WAIT_GRACE = 1.0


def _sim_condition_wait(self: threading.Condition, timeout: float | None = None) -> bool:
    """``Condition.wait`` that refuses to block inside inline executor work.

    The work runs on the loop's thread, so nothing else (no task, no callback)
    can run while it waits: a wait that needs one to wake it hangs forever, or
    burns its whole timeout in real time. When other real threads exist (a
    worker started before the run), one of them may be the waker, so the wait
    gets a bounded grace period of real time first.
    """
    if not ((timeout is None or timeout > 0) and getattr(inline_work, "active", False)):
        woken = _real_condition_wait(self, timeout)
        if not woken and timeout is not None and timeout > 0:
            w = _worlds.get(_get_ident())
            if w is not None:
                # A run's thread blocked for its whole timeout, as a blocking
                # sleep would: let virtual time pass too, or code that loops on
                # "deadline = monotonic() + timeout" (queue.Queue.put/get,
                # janus) waits forever for a clock that never moves.
                w.loop._engine_advance(float(timeout))
        return woken
    if threading.active_count() > 1:
        # Another real thread (a worker started before the run) may be the
        # waker: give it a bounded grace period of real time, then refuse.
        grace = _INLINE_WAIT_GRACE if timeout is None else min(timeout, _INLINE_WAIT_GRACE)
        if _real_condition_wait(self, grace):
            return True
        if timeout is not None and timeout <= _INLINE_WAIT_GRACE:
            return False  # an honest timeout, as the real wait would report
    raise BlockingCallError(
        f"a blocking wait (threading.Condition.wait(timeout={timeout!r}), as used by "
        "queue.Queue.get, threading.Event.wait, Semaphore.acquire, "
        "concurrent.futures.Future.result) in run_in_executor/asyncio.to_thread work: "
        "with executor='inline' (the default) that work runs on the loop's thread, so "
        "nothing else can run while it blocks and it would hang; use asyncio primitives "
        "(asyncio.Queue, asyncio.Event) instead, or pass executor='thread' "
        "(seedloop.run(..., executor='thread'), SeedLoop(executor='thread')) to run it "
        "on real threads, at the cost of determinism"
    )


_sim_condition_wait.__name__ = "wait"
_sim_condition_wait.__qualname__ = "Condition.wait"
_sim_condition_wait.__wrapped__ = _real_condition_wait  # type: ignore[attr-defined]

_real_pool_submit = concurrent.futures.ThreadPoolExecutor.submit


def _counted_submit(
    self: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> concurrent.futures.Future[Any]:
    """``ThreadPoolExecutor.submit`` in a run that allows threads: the job is outside work.

    Until it finishes, an idle loop waits in real time for what the job hands
    back (``call_soon_threadsafe``: janus-style bridges submit to their own
    pools) instead of reporting a deadlock. ``run_in_executor`` counts its
    jobs too; a job counted twice is released twice, so the sum stays right.
    """
    future = _real_pool_submit(self, fn, *args, **kwargs)
    w = _worlds.get(_get_ident())
    if w is not None and w.allow_threads:
        external = w.loop._engine_external
        external(1)
        future.add_done_callback(lambda _: external(-1))
    return future


_counted_submit.__name__ = "submit"
_counted_submit.__qualname__ = "ThreadPoolExecutor.submit"
_counted_submit.__wrapped__ = _real_pool_submit  # type: ignore[attr-defined]

# -- what the guards replace (applied by patching.py) ---------------------------

# (real object, guard): every module-level binding of a real object is
# swapped for its guard during runs.
_SWAPS: list[tuple[object, object]] = []
for _name, _hint in (
    ("fork", _SUBPROCESS_HINT),
    ("forkpty", _SUBPROCESS_HINT),
    ("posix_spawn", _SUBPROCESS_HINT),
    ("posix_spawnp", _SUBPROCESS_HINT),
    ("system", _SUBPROCESS_HINT),
):
    _fn = getattr(os, _name, None)
    if _fn is not None:
        _SWAPS.append((_fn, _guard(_fn, f"os.{_name}()", _hint)))
try:  # how multiprocessing's spawn and forkserver start a process (POSIX)
    import _posixsubprocess
except ImportError:  # pragma: no cover - Windows
    pass
else:
    _SWAPS.append(
        (
            _posixsubprocess.fork_exec,
            _guard(
                _posixsubprocess.fork_exec,
                "starting a process (multiprocessing, subprocess)",
                _SUBPROCESS_HINT,
            ),
        )
    )
for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
    _fn = getattr(socket, _name, None)
    if _fn is not None:
        _SWAPS.append((_fn, _dns_guard(_fn, _name)))
for _name in ("start_new_thread", "start_joinable_thread"):
    _fn = getattr(_thread, _name, None)
    if _fn is not None:
        _SWAPS.append((_fn, _thread_guard(_fn, f"_thread.{_name}()")))

# Class attributes replaced during runs: (class, name, guard).
_CLASS_PATCHES: list[tuple[type, str, object]] = [
    (
        threading.Thread,
        "start",
        _thread_start_guard(threading.Thread.start),
    ),
    (
        subprocess.Popen,
        "__init__",
        _guard(subprocess.Popen.__init__, "subprocess.Popen()", _SUBPROCESS_HINT),
    ),
    (threading.Condition, "wait", _sim_condition_wait),
    (concurrent.futures.ThreadPoolExecutor, "submit", _counted_submit),
]
for _name in (
    # Every way a socket made inside a run reaches the network (a socket must
    # connect, bind, listen or address a datagram first), plus sends on sockets
    # connected before the run. Receiving alone is not guarded: it needs one
    # of these first, and each guard costs a little on every run.
    "connect",
    "connect_ex",
    "bind",
    "listen",
    "send",
    "sendall",
    "sendto",
    "sendmsg",
    "sendfile",
):
    _fn = getattr(socket.socket, _name, None)
    if _fn is not None:
        _CLASS_PATCHES.append((socket.socket, _name, _socket_guard(_fn, _name)))
