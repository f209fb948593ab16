"""Installs the deterministic world for a run and restores it: the world's lifecycle and surface.

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
Files
    ``open``/``io.open`` and the ``os`` file functions on paths under a
    host's data directory (``/seedloop/<host>``) use that host's simulated
    disk (``disk.py``, ``docs/disk.md``); ``sqlite3.connect`` and
    ``io.FileIO`` of such paths are escapes (they open files in C). Other
    paths are the real filesystem, as outside a run.

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

The package, one job per module (imports point down this list, never up)::

    __init__.py   installing the world for a run and restoring it (held, installed, current)
    patching.py   every binding of a real object swapped for its stand-in, and back
    standins.py   the stand-ins for clocks, datetime, randomness, uuid, asyncio.wait/as_completed
    guards.py     the escape guards and the refusal of blocking waits in inline executor work
    state.py      the World of one run and the worlds by thread
    fake_fds.py   fake descriptors of simulated sockets, and select/poll that answer for them
    disk.py       open()/os file functions on data-directory paths reach the host's simulated disk
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import _engine
from .._options import DEFAULT_WALL_EPOCH, SLEEP_MODES, WORLD_OPTIONS, WorldOptions
from ..errors import InvalidWorldOptionError
from .guards import _is_ip_literal as _is_ip_literal
from .guards import (
    _real_condition_wait,
    _refuse_read_pipe_transport,
    _refuse_subprocess_transport,
    _refuse_write_pipe_transport,
    _sim_condition_wait,
    mark_simulated,
    real_io_allowed,
)
from .guards import inline_work as inline_work
from .patching import _patch_process, _restore_process, _scan_new_modules
from .state import World, _get_ident, _worlds

__all__ = [
    "DEFAULT_WALL_EPOCH",
    "SLEEP_MODES",
    "WORLD_OPTIONS",
    "InvalidWorldOptionError",
    "current",
    "held",
    "install",
    "installed",
    "prepare",
    "uninstall",
    "mark_simulated",
    "real_io_allowed",
    "refuse_real_transport",
]


def prepare() -> None:
    """Find what the world patches now, not in the first run: a process about
    to fork workers calls it, so that each inherits the table instead of
    scanning ``sys.modules`` itself in its first run."""
    with _lock:
        _scan_new_modules()


def current() -> World | None:
    """The world of the run on this thread, or None outside a run."""
    return _worlds.get(_get_ident())


_REAL_TRANSPORTS = {
    "subprocess": _refuse_subprocess_transport,
    "read_pipe": _refuse_read_pipe_transport,
    "write_pipe": _refuse_write_pipe_transport,
}


def refuse_real_transport(loop: Any, kind: str) -> None:
    """Raise SimulationEscapeError if this thread's world runs ``loop``.

    The loop's own transports for pipes and subprocesses (``kind``: a key of
    ``_REAL_TRANSPORTS``) are real I/O; outside a simulation they are
    BaseEventLoop's (NotImplementedError, as for any loop without them).
    """
    world = _worlds.get(_get_ident())
    if world is not None and world.loop is loop:
        _REAL_TRANSPORTS[kind]()


# -- installing and restoring ---------------------------------------------------

_lock = threading.Lock()
_depth = 0  # runs in progress, over all threads


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


_inline_guards = 0  # inline executor jobs outside runs, over all threads


@contextmanager
def inline_waits_refused() -> Iterator[None]:
    """Outside runs: refuse blocking waits in inline executor work, as runs do.

    A SeedLoop built by hand with ``executor="inline"`` runs executor work on
    the loop's thread, so work that waits for the loop (``run_coroutine_threadsafe(...).result()``)
    would hang forever; while such work runs, ``threading.Condition.wait``
    raises BlockingCallError on that thread instead (other threads are untouched).
    """
    global _inline_guards
    with _lock:
        if _inline_guards == 0 and threading.Condition.__dict__.get("wait") is _real_condition_wait:
            threading.Condition.wait = _sim_condition_wait  # type: ignore[method-assign]
        _inline_guards += 1
    try:
        yield
    finally:
        with _lock:
            _inline_guards -= 1
            if (
                _inline_guards == 0
                and _depth == 0
                and threading.Condition.__dict__.get("wait") is _sim_condition_wait
            ):
                threading.Condition.wait = _real_condition_wait  # type: ignore[method-assign]


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


def install(loop: Any, seed: int, options: WorldOptions) -> tuple[Any, ...]:
    """Install the deterministic world of ``seed`` on ``loop`` for the calling thread.

    Returns what :func:`uninstall` needs to restore everything; its first item
    is the :class:`World` (None with ``world=False``). Plain functions rather
    than a generator context manager: a search calls them once per seed.
    """
    if not options.world:
        saved_random = random.getstate()
        random.seed(_engine.derive_seed(seed, "random"))
        return (None, saved_random)
    global _depth
    state = World(loop, seed, options.sleep, options.wall_epoch_ns, options.clock_read_cost)
    tid = _get_ident()
    outer = _worlds.get(tid)
    saved_uuid_timestamp = getattr(uuid, "_last_timestamp", None)
    with _lock:  # _acquire(), inline: a search installs once per seed
        if _depth == 0:
            try:
                _patch_process()
            except BaseException:
                _restore_process()
                raise
        _depth += 1
    uuid._last_timestamp = None  # type: ignore[attr-defined]
    _worlds[tid] = state
    return (state, tid, outer, saved_uuid_timestamp)


def uninstall(token: tuple[Any, ...]) -> None:
    """Restore what :func:`install` changed (``token`` is what it returned)."""
    if token[0] is None:
        random.setstate(token[1])
        return
    global _depth
    _, tid, outer, saved_uuid_timestamp = token
    if outer is None:
        del _worlds[tid]
    else:
        _worlds[tid] = outer
    with _lock:  # _release(), inline
        _depth -= 1
        if _depth == 0:
            _restore_process()
    uuid._last_timestamp = saved_uuid_timestamp  # type: ignore[attr-defined]


@contextmanager
def installed(loop: Any, seed: int, options: WorldOptions) -> Iterator[World | None]:
    """Install the deterministic world of ``seed`` on ``loop`` for the calling thread.

    Yields the :class:`World` (None with ``world=False``). Everything is
    restored on exit, also when the body raises.
    """
    token = install(loop, seed, options)
    try:
        yield token[0]
    finally:
        uninstall(token)
