"""The deterministic world inside a run: clocks, randomness, blocking calls, escapes.

Inside ``seedloop.run`` (and every other entry point that goes through
``execute``) nothing may come from outside the seed. For the duration of the
run, on the thread that runs it:

Clocks (virtual time ``t = loop.time()``, which starts at 0)
    ``time.monotonic``, ``time.perf_counter``, ``time.process_time``,
    ``time.thread_time`` (and their ``_ns`` variants) return ``t``: they equal
    ``loop.time()`` exactly, as on a stock loop.
    ``time.time``/``time.time_ns`` return the wall clock ``wall_epoch + t``
    (default :data:`DEFAULT_WALL_EPOCH`, 2025-01-01T00:00:00Z), and so do
    ``time.localtime/gmtime/ctime/asctime/strftime`` called without a time,
    ``time.clock_gettime(CLOCK_REALTIME)``, ``datetime.datetime.now/utcnow/
    today`` and ``datetime.date.today``. Naive local times still use the
    process's time zone (``TZ``): configuration, not entropy.
Randomness
    The ``random`` module functions (``random.random``, ``choice``, ``seed``,
    ``getstate``...) use a per-run ``random.Random`` seeded from the run's
    seed; the process's global generator is never touched. Everything
    that would read the operating system's entropy reads a seeded Rust
    xoshiro256** stream instead (``seedloop._engine.Rng``), one named stream
    per source so that one source never shifts another: ``os.urandom``,
    ``os.getrandom``, ``random.SystemRandom`` and therefore all of
    ``secrets``, ``uuid.uuid4``, ``uuid.uuid1`` (seeded node, virtual time),
    ``random.seed()`` without an argument and every ``random.Random()``
    created without a seed.
Blocking calls
    ``time.sleep(s)`` with ``sleep="advance"`` (the default) moves virtual
    time forward by ``s`` while nothing else runs: exactly what a blocking
    sleep does to a real event loop, deterministically (timers that fell due
    meanwhile fire late, and the step shows in the trace). With
    ``sleep="error"`` a positive sleep raises :class:`~seedloop.BlockingCallError`
    (``time.sleep(0)`` does not block and is always allowed).
    In ``run_in_executor``/``asyncio.to_thread`` work, which runs inline on
    the loop's thread, a blocking ``threading.Condition.wait`` (timeout None
    or > 0; ``queue.Queue.get``, ``threading.Event.wait``,
    ``Semaphore.acquire``) raises :class:`~seedloop.BlockingCallError`:
    nothing else can run to wake it, so it would hang or burn its timeout.
Escapes
    Real I/O raises :class:`~seedloop.SimulationEscapeError` (a
    ``NotImplementedError``). The run remembers it: if the code under test
    catches and swallows it, the run still fails with it. Refused are:
    ``threading.Thread.start`` (unless the loop uses ``executor="thread"``),
    ``connect``, ``connect_ex``, ``bind``, ``listen``, ``send``, ``sendall``,
    ``sendto``, ``sendmsg`` and ``sendfile`` on real ``socket.socket`` objects
    (a socket must do one of these before it can receive), DNS lookups of names (``socket.getaddrinfo`` and friends),
    ``subprocess.Popen``, ``os.fork``/``forkpty``/``posix_spawn``/``system``,
    and the loop's subprocess and pipe transports
    (``asyncio.create_subprocess_exec``, ``connect_read_pipe``). Creating a
    socket object is not I/O and stays allowed (aiohttp's happy-eyeballs path
    makes one and hands it to ``loop.sock_connect``).

The switch for simulated I/O (for ``seedloop.net`` and tests)
    :func:`mark_simulated` registers a real ``socket.socket`` object as owned
    by the simulation: I/O methods on it are never reported (for the network
    layer, should it ever call them on sockets it adopts in ``sock_connect``).
    :func:`real_io_allowed`
    is a context manager that lets the code inside it (in the current context)
    do real I/O on purpose.

How functions imported before the run are covered
    A module that ran ``from time import monotonic`` before the run holds its
    own reference to the real function. The world therefore patches every
    module-level binding of the real objects, not only ``time.monotonic``:
    each module in ``sys.modules`` is scanned once for globals that *are* (by
    identity) one of the patched functions or classes, and those bindings are
    swapped for the run and put back afterwards. The scan is incremental (only
    modules not seen before), so a run costs one pass over a short list of
    bindings. Modules whose clock pairs with real blocking OS waits
    (``threading``, ``queue``, ``subprocess``, ``selectors``, ``ssl``,
    ``multiprocessing``, ``concurrent``...) are left on the real clock, or a
    ``Condition.wait(timeout)`` would never time out. Modules imported *during*
    a run bind the stand-ins; on exit those bindings are rewritten to the real
    objects, so nothing leaks. Every stand-in also checks, on each call,
    whether the calling thread is inside a run and otherwise behaves exactly
    like the real function, so other threads (and a reference smuggled out
    of a run) see the real world.

    Not covered: references captured in default arguments, class attributes,
    closures or containers (``def f(clock=time.monotonic)``), C code reading
    the system clock, OpenSSL's own randomness, and ``numpy.random``.
    Inside a run ``datetime.datetime``/``datetime.date`` are stand-in classes
    whose instances are real ``datetime``/``date`` objects (``isinstance``
    works both ways), so ``type(x) is datetime.datetime`` is False there
    (``pickle`` and ``copy`` work: a reducer registered for the run's
    duration pickles them by the name ``datetime.datetime``).

Everything is restored exactly when the run ends, also when it raises.
Runs on several threads at once are supported (each thread has its own
world; the patches stay in place until the last run ends). Seed searches
(``find_failing_seed``, ``find_seed_where``) hold the patches for the whole
search (:func:`held`), so each run only swaps its :class:`World` in and out. ``world=False``
leaves the process untouched except for seeding the global ``random``.
"""

from __future__ import annotations

import _thread
import asyncio
import asyncio.tasks
import contextvars
import copyreg
import datetime as _datetime_mod
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import index as _index
from typing import Any

from . import _engine
from .errors import BlockingCallError, SeedloopError, SimulationEscapeError

__all__ = [
    "DEFAULT_WALL_EPOCH",
    "SLEEP_MODES",
    "WORLD_OPTIONS",
    "InvalidWorldOptionError",
    "current",
    "held",
    "installed",
    "mark_simulated",
    "real_io_allowed",
    "split_options",
]

#: The wall clock at virtual time 0: 2025-01-01T00:00:00Z (POSIX seconds).
DEFAULT_WALL_EPOCH = 1_735_689_600
_DEFAULT_WALL_EPOCH_NS = DEFAULT_WALL_EPOCH * 10**9
SLEEP_MODES = ("advance", "error")
#: Keyword arguments of ``seedloop.run`` (and friends) that configure the world.
WORLD_OPTIONS = ("world", "sleep", "wall_epoch")


class InvalidWorldOptionError(SeedloopError, ValueError):
    """A world option (``world``, ``sleep``, ``wall_epoch``) has an unusable value."""


# -- the per-run state -------------------------------------------------------


class World:
    """The deterministic world of one run (one thread)."""

    __slots__ = (
        "loop",
        "seed",
        "sleep",
        "wall_epoch",
        "wall_epoch_ns",
        "allow_threads",
        "escapes",
        "_random",
        "_urandom",
        "_seeds",
        "_node",
    )

    def __init__(self, loop: _engine.LoopCore, seed: int, sleep: str, wall_epoch_ns: int) -> None:
        self.loop = loop
        self.seed = seed
        self.sleep = sleep
        self.wall_epoch_ns = wall_epoch_ns
        self.wall_epoch = wall_epoch_ns / 1e9
        self.allow_threads = getattr(loop, "_executor_mode", "inline") == "thread"
        #: Every escape refused in this run, including ones the code caught.
        self.escapes: list[SimulationEscapeError] = []
        self._random: random.Random | None = None
        self._urandom: _engine.Rng | None = None
        self._seeds: _engine.Rng | None = None
        self._node: int | None = None

    # Clocks.
    def monotonic(self) -> float:
        return self.loop.time()

    def monotonic_ns(self) -> int:
        return round(self.loop.time() * 1e9)

    def wall(self) -> float:
        return self.wall_epoch + self.loop.time()

    def wall_ns(self) -> int:
        return self.wall_epoch_ns + round(self.loop.time() * 1e9)

    # Randomness: one lazily created stream per source.
    def random(self) -> random.Random:
        """The run's stand-in for the global ``random`` instance."""
        inst = self._random
        if inst is None:
            inst = self._random = random.Random(_engine.derive_seed(self.seed, "random"))
        return inst

    def urandom(self, size: int) -> bytes:
        rng = self._urandom
        if rng is None:
            rng = self._urandom = _engine.Rng(self.seed, "world/urandom")
        return rng.bytes(size)

    def fresh_seed(self) -> int:
        rng = self._seeds
        if rng is None:
            rng = self._seeds = _engine.Rng(self.seed, "world/random-seed")
        return rng.next_u64()

    def node(self) -> int:
        if self._node is None:
            # A random 48-bit node with the multicast bit set (RFC 4122 4.5).
            raw = int.from_bytes(_engine.random_bytes(self.seed, "world/uuid-node", 6), "big")
            self._node = raw | (1 << 40)
        return self._node


_worlds: dict[int, World] = {}  # thread id -> its world (looked up, never iterated)
_get_ident = threading.get_ident
_allow_real_io: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "seedloop_allow_real_io", default=False
)
_simulated_sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
#: ``inline_work.active`` is true while ``run_in_executor`` work runs inline on
#: this thread (set by the loop; a thread-local, not a ContextVar, because
#: ``asyncio.to_thread`` runs the work in a context copied before the call).
inline_work = threading.local()


def current() -> World | None:
    """The world of the run on this thread, or None outside a run."""
    return _worlds.get(_get_ident())


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


# -- the real objects, captured once -----------------------------------------

_real_time = time.time
_real_time_ns = time.time_ns
_real_sleep = time.sleep
_real_localtime = time.localtime
_real_gmtime = time.gmtime
_real_ctime = time.ctime
_real_asctime = time.asctime
_real_strftime = time.strftime
_real_urandom = os.urandom
_real_datetime = _datetime_mod.datetime
_real_date = _datetime_mod.date
_real_random_seed_method = random.Random.seed
_real_uuid_getnode = uuid.getnode
_utc = _datetime_mod.timezone.utc


# -- stand-ins: each behaves exactly like the real thing outside a run --------


def _virtual_clock(real: Callable[[], Any], ns: bool) -> Callable[[], Any]:
    if ns:

        def clock_ns() -> int:
            w = _worlds.get(_get_ident())
            if w is None:
                return real()  # type: ignore[no-any-return]
            return w.monotonic_ns()

        stand_in: Callable[[], Any] = clock_ns
    else:

        def clock() -> float:
            w = _worlds.get(_get_ident())
            if w is None:
                return real()  # type: ignore[no-any-return]
            return w.monotonic()

        stand_in = clock
    stand_in.__name__ = stand_in.__qualname__ = real.__name__
    stand_in.__doc__ = real.__doc__
    return stand_in


def _sim_time() -> float:
    w = _worlds.get(_get_ident())
    if w is None:
        return _real_time()
    return w.wall()


def _sim_time_ns() -> int:
    w = _worlds.get(_get_ident())
    if w is None:
        return _real_time_ns()
    return w.wall_ns()


def _sim_sleep(secs: float, /) -> None:
    w = _worlds.get(_get_ident())
    if w is None:
        return _real_sleep(secs)
    secs = float(secs)
    if math.isnan(secs) or secs < 0:
        raise ValueError("sleep length must be non-negative")
    if secs == 0:
        return None
    if w.sleep == "error":
        raise BlockingCallError(
            f"time.sleep({secs!r}) inside a seedloop simulation blocks the event loop; "
            "use 'await asyncio.sleep(...)', or run with sleep='advance' to let it "
            "advance virtual time like a real blocking sleep"
        )
    w.loop._engine_advance(secs)
    return None


def _with_wall_default(real: Callable[..., Any]) -> Callable[..., Any]:
    """``localtime``/``gmtime``/``ctime``: a missing (None) time means the virtual wall clock."""

    def stand_in(secs: float | None = None, /) -> Any:
        if secs is None:
            w = _worlds.get(_get_ident())
            if w is not None:
                secs = w.wall()
        return real(secs)

    stand_in.__name__ = stand_in.__qualname__ = real.__name__
    stand_in.__doc__ = real.__doc__
    return stand_in


def _sim_asctime(t: Any = None, /) -> str:
    if t is None:
        w = _worlds.get(_get_ident())
        if w is not None:
            t = _real_localtime(w.wall())
    return _real_asctime() if t is None else _real_asctime(t)


def _sim_strftime(format: str, t: Any = None, /) -> str:
    if t is None:
        w = _worlds.get(_get_ident())
        if w is not None:
            t = _real_localtime(w.wall())
    return _real_strftime(format) if t is None else _real_strftime(format, t)


def _clock_gettime(real: Callable[[int], Any], ns: bool) -> Callable[[int], Any]:
    realtime = getattr(time, "CLOCK_REALTIME", None)

    def stand_in(clk_id: int, /) -> Any:
        w = _worlds.get(_get_ident())
        if w is None:
            return real(clk_id)
        if clk_id == realtime:
            return w.wall_ns() if ns else w.wall()
        real(clk_id)  # validates clk_id like the real call would
        return w.monotonic_ns() if ns else w.monotonic()

    stand_in.__name__ = stand_in.__qualname__ = real.__name__
    stand_in.__doc__ = real.__doc__
    return stand_in


def _sim_urandom(size: int, /) -> bytes:
    w = _worlds.get(_get_ident())
    if w is None:
        return _real_urandom(size)
    size = _index(size)
    if size < 0:
        raise ValueError("negative argument not allowed")
    return w.urandom(size)


def _sim_getrandom(real: Callable[..., bytes]) -> Callable[..., bytes]:
    def getrandom(size: int, flags: int = 0) -> bytes:
        w = _worlds.get(_get_ident())
        if w is None:
            return real(size, flags)
        size = _index(size)
        if size < 0:
            raise ValueError("negative argument not allowed")
        return w.urandom(size)

    getrandom.__doc__ = real.__doc__
    return getrandom


def _sim_random_seed(self: random.Random, a: Any = None, version: int = 2) -> None:
    if a is None:
        w = _worlds.get(_get_ident())
        if w is not None:
            a = w.fresh_seed()
    _real_random_seed_method(self, a, version)


_sim_random_seed.__doc__ = _real_random_seed_method.__doc__
_sim_random_seed.__qualname__ = "Random.seed"
_sim_random_seed.__name__ = "seed"


def _random_function(name: str) -> Callable[..., Any]:
    """``random.<name>`` (a method of the hidden global instance), per run."""
    real = getattr(random, name)

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        w = _worlds.get(_get_ident())
        if w is None:
            return real(*args, **kwargs)
        return getattr(w.random(), name)(*args, **kwargs)

    stand_in.__name__ = stand_in.__qualname__ = name
    stand_in.__doc__ = real.__doc__
    stand_in.__wrapped__ = real  # type: ignore[attr-defined]
    return stand_in


def _sim_uuid_getnode() -> int:
    w = _worlds.get(_get_ident())
    if w is None:
        return _real_uuid_getnode()
    return w.node()


class _RealClassCheck(type):
    """Metaclass of the datetime stand-ins: real instances and subclasses pass checks.

    Only the stand-ins themselves answer for the real class; a subclass made
    from a stand-in (a module imported during a run) checks normally.
    """

    def __instancecheck__(cls, obj: object) -> bool:
        real = cls.__dict__.get("_real")
        if real is not None:
            return isinstance(obj, real)
        return type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub: type) -> bool:
        real = cls.__dict__.get("_real")
        if real is not None:
            return issubclass(sub, real)
        return type.__subclasscheck__(cls, sub)


class _SimDate(_real_date, metaclass=_RealClassCheck):
    """``datetime.date`` inside a run: ``today()`` reads the virtual wall clock."""

    _real = _real_date

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is _SimDate:
            return _real_date(*args, **kwargs)  # instances are real dates
        return _real_date.__new__(cls, *args, **kwargs)

    @classmethod
    def today(cls) -> Any:
        w = _worlds.get(_get_ident())
        base = _real_date if cls is _SimDate else cls
        return base.fromtimestamp(_real_time() if w is None else w.wall())


class _SimDatetime(_real_datetime, metaclass=_RealClassCheck):
    """``datetime.datetime`` inside a run: ``now/utcnow/today`` read the virtual wall clock."""

    _real = _real_datetime

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is _SimDatetime:
            return _real_datetime(*args, **kwargs)  # instances are real datetimes
        return _real_datetime.__new__(cls, *args, **kwargs)

    @classmethod
    def now(cls, tz: _datetime_mod.tzinfo | None = None) -> Any:
        w = _worlds.get(_get_ident())
        if cls is _SimDatetime:
            if w is None:
                return _real_datetime.now(tz)
            return _real_datetime.fromtimestamp(w.wall(), tz)
        return cls.fromtimestamp(_real_time() if w is None else w.wall(), tz)

    @classmethod
    def today(cls) -> Any:
        return cls.now()

    @classmethod
    def utcnow(cls) -> Any:
        w = _worlds.get(_get_ident())
        base = _real_datetime if cls is _SimDatetime else cls
        now = base.fromtimestamp(_real_time() if w is None else w.wall(), _utc)
        return now.replace(tzinfo=None)


def _reduce_through(stand_in: type) -> Callable[[Any], tuple[Any, ...]]:
    def reduce(obj: Any) -> tuple[Any, ...]:
        return (stand_in, obj.__reduce__()[1])

    return reduce


_REDUCERS = (
    (_real_datetime, _reduce_through(_SimDatetime)),
    (_real_date, _reduce_through(_SimDate)),
)

for _cls, _real_cls in ((_SimDate, _real_date), (_SimDatetime, _real_datetime)):
    _cls.__name__ = _cls.__qualname__ = _real_cls.__name__
    _cls.__module__ = _real_cls.__module__
    _cls.__doc__ = _real_cls.__doc__


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
                "deterministically",
            )
        return real(*args, **kwargs)

    guard.__name__ = guard.__qualname__ = getattr(real, "__name__", "start")
    guard.__doc__ = getattr(real, "__doc__", None)
    guard.__wrapped__ = real  # type: ignore[attr-defined]
    return guard


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
    if not (
        (timeout is None or timeout > 0)
        and getattr(inline_work, "active", False)
        and _get_ident() in _worlds
    ):
        return _real_condition_wait(self, timeout)
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
        "queue.Queue.get, threading.Event.wait, Semaphore.acquire) in run_in_executor/"
        "asyncio.to_thread work: inside a seedloop simulation that work runs inline on "
        "the loop's thread, so nothing else can run while it blocks and it would hang; "
        "use asyncio primitives (asyncio.Queue, asyncio.Event) instead, or "
        'SeedLoop(executor="thread") outside simulations'
    )


_sim_condition_wait.__name__ = "wait"
_sim_condition_wait.__qualname__ = "Condition.wait"
_sim_condition_wait.__wrapped__ = _real_condition_wait  # type: ignore[attr-defined]


def _ordered_futures(fs: Any, loop: Any) -> Any:
    """``fs`` as futures created in the order given (duplicates dropped).

    The stock functions wrap coroutines into tasks while iterating ``set(fs)``,
    i.e. in memory-address order: the tasks' creation order, and so the whole
    schedule, would change from run to run.
    """
    items = list(fs)  # a non-iterable raises its own TypeError here, as in stock
    try:
        items = list(dict.fromkeys(items))
    except TypeError:
        return items  # unhashable items: the stock function reports them
    return [asyncio.ensure_future(f, loop=loop) for f in items]


def _no_negative(timeout: Any) -> Any:
    """Stock asyncio passes a negative timeout to ``call_later`` and times out at
    once; seedloop's ``call_later`` refuses negative delays, so clamp to 0."""
    if isinstance(timeout, (int, float)) and timeout < 0:
        return 0
    return timeout


_RETURN_WHEN = (asyncio.FIRST_COMPLETED, asyncio.FIRST_EXCEPTION, asyncio.ALL_COMPLETED)


def _sim_wait(real: Callable[..., Any]) -> Callable[..., Any]:
    """``asyncio.wait`` inside runs: negative timeouts clamped; on 3.10 (which still
    accepts coroutines) they become tasks in argument order, when awaited."""

    async def wait(
        fs: Any, *, timeout: Any = None, return_when: Any = asyncio.ALL_COMPLETED
    ) -> Any:
        if _worlds.get(_get_ident()) is not None:
            timeout = _no_negative(timeout)
            if sys.version_info < (3, 11) and not (asyncio.isfuture(fs) or asyncio.iscoroutine(fs)):
                fs = list(fs)
                if not fs or return_when not in _RETURN_WHEN:
                    return await real(fs, timeout=timeout, return_when=return_when)
                if any(asyncio.iscoroutine(f) for f in fs):
                    warnings.warn(
                        "The explicit passing of coroutine objects to asyncio.wait() is "
                        "deprecated since Python 3.8, and scheduled for removal in Python 3.11.",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DeprecationWarning)
                        fs = _ordered_futures(fs, asyncio.get_running_loop())
        return await real(fs, timeout=timeout, return_when=return_when)

    wait.__doc__ = real.__doc__
    wait.__qualname__ = real.__qualname__
    wait.__wrapped__ = real  # type: ignore[attr-defined]
    return wait


def _sim_as_completed(real: Callable[..., Any]) -> Callable[..., Any]:
    """``asyncio.as_completed`` inside runs: coroutines become tasks in argument
    order, at the moment the stock function would create them (first iteration
    before 3.13, the call on 3.13+); negative timeouts clamped."""

    def prepare(fs: Any, timeout: Any) -> tuple[Any, Any]:
        if _worlds.get(_get_ident()) is None or asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
            return fs, timeout
        return _ordered_futures(fs, asyncio.get_event_loop()), _no_negative(timeout)

    if sys.version_info >= (3, 13):

        def as_completed(fs: Any, *, timeout: Any = None) -> Any:
            fs, timeout = prepare(fs, timeout)
            return real(fs, timeout=timeout)

    else:

        def as_completed(fs: Any, *, timeout: Any = None) -> Any:  # a generator, as in stock
            fs, timeout = prepare(fs, timeout)
            return (yield from real(fs, timeout=timeout))

    as_completed.__doc__ = real.__doc__
    as_completed.__qualname__ = real.__qualname__
    as_completed.__wrapped__ = real  # type: ignore[attr-defined]
    return as_completed


# -- the patch table ----------------------------------------------------------

# (real object, stand-in): every module-level binding of a real object is
# swapped for its stand-in during runs.
_SWAPS: list[tuple[object, object]] = [
    (time.time, _sim_time),
    (time.time_ns, _sim_time_ns),
    (time.sleep, _sim_sleep),
    (time.localtime, _with_wall_default(time.localtime)),
    (time.gmtime, _with_wall_default(time.gmtime)),
    (time.ctime, _with_wall_default(time.ctime)),
    (time.asctime, _sim_asctime),
    (time.strftime, _sim_strftime),
    (os.urandom, _sim_urandom),
    (_real_datetime, _SimDatetime),
    (_real_date, _SimDate),
    (uuid.getnode, _sim_uuid_getnode),
    (asyncio.tasks.as_completed, _sim_as_completed(asyncio.tasks.as_completed)),
    (asyncio.tasks.wait, _sim_wait(asyncio.tasks.wait)),
]
# The module-level functions of ``random`` are bound methods of one hidden
# instance; inside a run they use the run's own seeded instance instead, so the
# global generator is never touched (nothing to save or restore).
for _name in sorted(dir(random)):
    _fn = getattr(random, _name)
    if getattr(_fn, "__self__", None) is random._inst:
        _SWAPS.append((_fn, _random_function(_name)))
for _name in (
    "monotonic",
    "perf_counter",
    "process_time",
    "thread_time",
):
    for _suffix in ("", "_ns"):
        _fn = getattr(time, _name + _suffix, None)
        if _fn is not None:
            _SWAPS.append((_fn, _virtual_clock(_fn, ns=bool(_suffix))))
for _name, _ns in (("clock_gettime", False), ("clock_gettime_ns", True)):
    _fn = getattr(time, _name, None)
    if _fn is not None:
        _SWAPS.append((_fn, _clock_gettime(_fn, _ns)))
if hasattr(os, "getrandom"):
    _SWAPS.append((os.getrandom, _sim_getrandom(os.getrandom)))
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
for _name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
    _fn = getattr(socket, _name, None)
    if _fn is not None:
        _SWAPS.append((_fn, _dns_guard(_fn, _name)))
for _name in ("start_new_thread", "start_joinable_thread"):
    _fn = getattr(_thread, _name, None)
    if _fn is not None:
        _SWAPS.append((_fn, _thread_guard(_fn, f"_thread.{_name}()")))

# Keyed by id(): _SWAPS keeps every object alive, so an id never names another.
_STAND_IN: dict[int, object] = {id(real): fake for real, fake in _SWAPS}
_REAL_OF_FAKE: dict[int, object] = {id(fake): real for real, fake in _SWAPS}

# Class attributes replaced during runs: (class, name, stand-in).
_CLASS_PATCHES: list[tuple[type, str, object]] = [
    (random.Random, "seed", _sim_random_seed),
    (
        threading.Thread,
        "start",
        _thread_guard(threading.Thread.start, "threading.Thread.start()"),
    ),
    (
        subprocess.Popen,
        "__init__",
        _guard(subprocess.Popen.__init__, "subprocess.Popen()", _SUBPROCESS_HINT),
    ),
    (threading.Condition, "wait", _sim_condition_wait),
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

# Modules whose clock pairs with real OS waits (Condition.wait(timeout),
# Queue.get(timeout), Popen.wait(timeout), select): they keep the real clock.
_REAL_CLOCK_MODULES = frozenset(
    {
        "threading",
        "queue",
        "subprocess",
        "selectors",
        "socketserver",
        "ssl",
        "sched",
        "telnetlib",
        "trace",
        "_android_support",
        __name__,
    }
)
_REAL_CLOCK_PREFIXES = ("multiprocessing.", "concurrent.", "seedloop.")


class _Bindings:
    """The bindings of real objects in one module's globals, patched as a batch."""

    __slots__ = ("namespace", "keys", "reals", "stand_ins", "real_map")

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.keys: list[str] = []
        self.reals: list[object] = []
        self.stand_ins: dict[str, object] = {}
        self.real_map: dict[str, object] = {}

    def add(self, key: str, real: object, stand_in: object) -> None:
        self.keys.append(key)
        self.reals.append(real)
        self.stand_ins[key] = stand_in
        self.real_map[key] = real


_modules: list[_Bindings] = []  # every module that binds a real object
# module name -> (the module object scanned, its bindings or None). Entries of
# modules that left sys.modules (or were replaced) are dropped at the next scan.
_scanned: dict[str, tuple[object, _Bindings | None]] = {}
_scanned_len = -1


def _scanned_module(name: str) -> object:
    entry = _scanned.get(name)
    return None if entry is None else entry[0]


def _skip_module(name: str) -> bool:
    return name in _REAL_CLOCK_MODULES or name.startswith(_REAL_CLOCK_PREFIXES)


def _bindings(module: object, table: dict[int, object]) -> list[tuple[str, object, object]]:
    """``(name, value, replacement)`` for each global of ``module`` found in ``table``."""
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return []
    found = []
    for key, value in tuple(namespace.items()):
        replacement = table.get(id(value))
        if replacement is not None and isinstance(key, str):
            found.append((key, value, replacement))
    return found


def _scan_new_modules() -> None:
    """Find the bindings of real objects in modules not scanned before."""
    global _scanned_len
    modules = sys.modules
    if len(modules) == _scanned_len:
        return
    gone = [name for name, (module, _) in _scanned.items() if modules.get(name) is not module]
    for name in gone:
        _, old = _scanned.pop(name)
        if old is not None:
            _modules.remove(old)
    for name, module in tuple(modules.items()):
        if name in _scanned:
            continue
        entry = None
        if not _skip_module(name):
            found = _bindings(module, _STAND_IN)
            if found:
                entry = _Bindings(module.__dict__)
                for key, real, fake in found:
                    entry.add(key, real, fake)
                _modules.append(entry)
        _scanned[name] = (module, entry)
    _scanned_len = len(modules)


def _unleak_new_modules() -> None:
    """Modules imported during a run bound stand-ins: give them the real objects."""
    for name, module in tuple(sys.modules.items()):
        if _scanned_module(name) is module or _skip_module(name):
            continue
        namespace = module.__dict__
        for key, fake, real in _bindings(module, _REAL_OF_FAKE):
            if namespace.get(key) is fake:
                namespace[key] = real


# -- installing and restoring ---------------------------------------------------

_lock = threading.Lock()
_depth = 0  # runs in progress, over all threads
_patched: list[_Bindings] = []  # modules patched as a batch
_undo: list[tuple[Any, str, Any, bool]] = []  # (target, name, old value, own attribute)
_modules_at_install = 0


def _patch_process() -> None:
    global _modules_at_install
    _scan_new_modules()
    undo = _undo
    for entry in _modules:
        namespace = entry.namespace
        if list(map(namespace.get, entry.keys)) == entry.reals:
            namespace.update(entry.stand_ins)
            _patched.append(entry)
            continue
        # The module rebound some names since the scan: patch the rest one by one.
        for key, real in zip(entry.keys, entry.reals, strict=True):
            if namespace.get(key) is real:
                namespace[key] = entry.stand_ins[key]
                undo.append((namespace, key, real, True))
    for cls, name, fake in _CLASS_PATCHES:
        own = cls.__dict__.get(name, _MISSING)
        undo.append((cls, name, own, own is not _MISSING))
        setattr(cls, name, fake)
    undo.append((uuid, "_generate_time_safe", getattr(uuid, "_generate_time_safe", None), True))
    uuid._generate_time_safe = None  # type: ignore[attr-defined]
    # pickle (and copy) find a class by its name: while datetime.datetime is the
    # stand-in, real datetimes are reduced through the stand-in, which loads
    # back as the real class anywhere.
    table = copyreg.dispatch_table
    for cls, reducer in _REDUCERS:
        old = table.get(cls, _MISSING)
        undo.append((table, cls, old, old is not _MISSING))
        table[cls] = reducer
    _modules_at_install = len(sys.modules)


def _restore_process() -> None:
    undo = _undo
    while undo:
        target, name, old, own = undo.pop()
        if isinstance(target, dict):
            if own:
                target[name] = old
            else:
                del target[name]
        elif own:
            setattr(target, name, old)
        else:
            delattr(target, name)
    for entry in _patched:
        entry.namespace.update(entry.real_map)
    _patched.clear()
    if len(sys.modules) != _modules_at_install:
        _unleak_new_modules()


_MISSING = object()


def _check_sleep(sleep: object) -> str:
    if sleep not in SLEEP_MODES:
        raise InvalidWorldOptionError(
            f"sleep must be one of {', '.join(map(repr, SLEEP_MODES))}, got {sleep!r}: "
            "'advance' lets time.sleep() move virtual time, "
            "'error' makes it raise BlockingCallError"
        )
    return sleep


def _epoch_ns(wall_epoch: object) -> int:
    if wall_epoch is DEFAULT_WALL_EPOCH:
        return _DEFAULT_WALL_EPOCH_NS
    if isinstance(wall_epoch, _real_datetime):
        if wall_epoch.tzinfo is None or wall_epoch.utcoffset() is None:
            raise InvalidWorldOptionError(
                f"wall_epoch={wall_epoch!r} is a naive datetime; give it a time zone, "
                "e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)"
            )
        delta = wall_epoch - _real_datetime(1970, 1, 1, tzinfo=_utc)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if isinstance(wall_epoch, bool) or not isinstance(wall_epoch, (int, float)):
        raise InvalidWorldOptionError(
            "wall_epoch must be POSIX seconds (int or float) or an aware datetime, "
            f"got {wall_epoch!r}"
        )
    if not math.isfinite(wall_epoch):
        raise InvalidWorldOptionError(f"wall_epoch must be finite, got {wall_epoch!r}")
    if isinstance(wall_epoch, int):
        return wall_epoch * 10**9
    return round(wall_epoch * 1e9)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split run keyword arguments into (loop options, validated world options)."""
    loop_options = {k: v for k, v in options.items() if k not in WORLD_OPTIONS}
    world_options = {k: options[k] for k in WORLD_OPTIONS if k in options}
    if "world" in world_options and not isinstance(world_options["world"], bool):
        raise InvalidWorldOptionError(
            "world must be True (install the deterministic world) or False, "
            f"got {world_options['world']!r}"
        )
    if "sleep" in world_options:
        _check_sleep(world_options["sleep"])
    if "wall_epoch" in world_options:
        _epoch_ns(world_options["wall_epoch"])
    return loop_options, world_options


def _acquire() -> None:
    global _depth
    with _lock:
        if _depth == 0:
            try:
                _patch_process()
            except BaseException:
                _restore_process()
                raise
        _depth += 1


def _release() -> None:
    global _depth
    with _lock:
        _depth -= 1
        if _depth == 0:
            _restore_process()


@contextmanager
def held(world: object = True) -> Iterator[None]:
    """Keep the process patched across many runs (a seed search); no-op if not ``world``.

    Each run inside then only swaps its own :class:`World` in and out (a few
    microseconds instead of patching and restoring every binding). Between
    runs the stand-ins behave exactly like the real functions; everything is
    restored when the outermost ``held``/``installed`` exits.
    """
    if world is False:
        yield
        return
    _acquire()
    try:
        yield
    finally:
        _release()


@contextmanager
def installed(
    loop: Any,
    seed: int,
    *,
    world: bool = True,
    sleep: str = "advance",
    wall_epoch: float | _datetime_mod.datetime = DEFAULT_WALL_EPOCH,
) -> Iterator[World | None]:
    """Install the deterministic world of ``seed`` on ``loop`` for the calling thread.

    Yields the :class:`World` (None with ``world=False``). Everything is
    restored on exit, also when the body raises.
    """
    if not world:
        saved_random = random.getstate()
        random.seed(_engine.derive_seed(seed, "random"))
        try:
            yield None
        finally:
            random.setstate(saved_random)
        return

    state = World(loop, seed, _check_sleep(sleep), _epoch_ns(wall_epoch))
    tid = _get_ident()
    outer = _worlds.get(tid)
    saved_uuid_timestamp = getattr(uuid, "_last_timestamp", None)
    _acquire()
    # The loop's own transports for pipes and subprocesses are real I/O.
    loop._make_subprocess_transport = _refuse_subprocess_transport
    loop._make_read_pipe_transport = _refuse_read_pipe_transport
    loop._make_write_pipe_transport = _refuse_write_pipe_transport
    uuid._last_timestamp = None  # type: ignore[attr-defined]
    _worlds[tid] = state
    try:
        yield state
    finally:
        if outer is None:
            del _worlds[tid]
        else:
            _worlds[tid] = outer
        _release()
        uuid._last_timestamp = saved_uuid_timestamp  # type: ignore[attr-defined]
