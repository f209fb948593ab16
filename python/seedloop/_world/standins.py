"""The stand-ins for clocks, datetime, randomness, uuid and asyncio.wait/as_completed in a run."""

from __future__ import annotations

import asyncio
import asyncio.tasks
import datetime as _datetime_mod
import math
import os
import random
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from operator import index as _index
from typing import Any

from ..errors import BlockingCallError
from .state import _get_ident, _worlds

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
_real_times = os.times
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


def _sim_times() -> Any:
    """``os.times()``: CPU time as ``process_time`` counts it (virtual), no children."""
    w = _worlds.get(_get_ident())
    if w is None:
        return _real_times()
    now = w.monotonic()
    return os.times_result((now, 0.0, 0.0, 0.0, now))


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


# -- asyncio.wait/as_completed: futures made in argument order ----------------


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


# -- what the stand-ins replace (applied by patching.py) ------------------------

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
    (os.times, _sim_times),
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

# Class attributes replaced during runs: (class, name, stand-in).
_CLASS_PATCHES: list[tuple[type, str, object]] = [
    (random.Random, "seed", _sim_random_seed),
]
