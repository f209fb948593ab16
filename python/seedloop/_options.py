"""The one place arguments are validated: seeds, factories, strategies and run options.

Public entry points turn their keyword arguments into a frozen
:class:`RunOptions` once (``RunOptions.build``); everything below them
receives that object unchanged and trusts it.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime as _real_datetime
from datetime import timezone as _timezone
from types import MappingProxyType
from typing import Any

from . import _engine
from .errors import (
    InvalidFactoryError,
    InvalidOptionError,
    InvalidSeedError,
    InvalidStrategyError,
    InvalidWorldOptionError,
)

#: Strategy names, as the engine knows them (one list, exported by the extension).
STRATEGIES: tuple[str, ...] = tuple(_engine.STRATEGIES)
#: What every entry point uses when no strategy is named: the strongest on
#: bench/corpus (bench/RESULTS.md section 7). ``shuffle`` keeps the seed
#: README's per-iteration permutation under its own name.
DEFAULT_STRATEGY = "auto"
#: The search that enumerates schedules instead of drawing one per seed
#: (``explore`` / ``find_failing_seed`` / the CLI only; not a per-run strategy).
SYSTEMATIC = "systematic"
#: Systematic exploration's default preemption bound (non-FIFO choices per
#: run): schedules grow with steps**bound, and most concurrency bugs need
#: at most two preemptions (Musuvathi & Qadeer, PLDI 2007); every bug of
#: bench/corpus that systematic finds needs at most two.
DEFAULT_BOUND = 2
#: Systematic exploration's default cap on runs (then ``complete`` is False).
DEFAULT_MAX_RUNS = 10_000
#: PCT's default bug depth (depth - 1 change points): measured best on bench/corpus.
DEFAULT_PCT_DEPTH = 6
#: What ``pytest --seedloop-all`` uses for tests it takes over without a seedloop
#: marker: a suite that is correct on a real loop must give no failure, so only
#: schedules a real loop can produce (``--seedloop-strategy`` widens it).
SUITE_STRATEGY = "feasible"
#: Seeds per test under ``pytest --seedloop-all`` when ``--seedloop-seeds`` is not given.
SUITE_SEEDS = range(30)
#: Where the failure database lives unless configured (relative to the current
#: directory, or to pytest's rootdir; ``seedloop._database``).
DB_DEFAULT_DIR = ".seedloop"
#: Environment variable naming the failure database's directory.
DB_ENV_VAR = "SEEDLOOP_DB"
#: The value of any database setting that turns the database off.
DB_OFF = "off"
#: Run options of tests taken over by ``--seedloop-all``: executor work and
#: threads the test starts are real, as on a stock loop (sync/async bridges such
#: as janus need them); a test that uses no threads stays deterministic. Clock
#: reads move time on by a microsecond, as code between two reads does on a
#: real machine (tests written for a real loop count on it).
SUITE_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"executor": "thread", "clock_read_cost": 1e-6}
)
#: A run longer than this raises HangError (a livelock, not a slow test).
DEFAULT_MAX_STEPS = 2_000_000
#: A run taking more real seconds than this raises HangError. Unlike max_steps
#: the verdict depends on the machine's speed, so the error says so.
DEFAULT_MAX_WALL = 10.0
#: The largest step_time accepted (seconds of virtual time per step).
_MAX_STEP_TIME = 1.0
#: The wall clock at virtual time 0: 2025-01-01T00:00:00Z (POSIX seconds).
DEFAULT_WALL_EPOCH = 1_735_689_600
SLEEP_MODES = ("advance", "error")
EXECUTORS = ("inline", "thread")
#: Keyword arguments of ``seedloop.run`` (and friends) that configure the world.
WORLD_OPTIONS = ("world", "sleep", "wall_epoch", "clock_read_cost")
#: Keyword arguments that configure the loop itself.
LOOP_OPTIONS = ("depth", "steps", "max_steps", "max_time", "max_wall", "step_time", "executor")
#: Keyword arguments that judge the run's result.
CHECK_OPTIONS = ("fail_if",)

_MAX_SEED = 2**64
# datetime's range: year 1 to year 9999 (a wall clock outside it cannot be shown).
_MIN_EPOCH = -62_135_596_800
_MAX_EPOCH = 253_402_300_799
_EPOCH_START = _real_datetime(1970, 1, 1, tzinfo=_timezone.utc)


# -- single values -------------------------------------------------------------


def check_seed(seed: object) -> int:
    """Return ``seed`` if it is a usable seed, else raise InvalidSeedError."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidSeedError(
            f"a seed must be an int in 0..2**64-1, got {seed!r} ({type(seed).__name__})"
        )
    if not 0 <= seed < _MAX_SEED:
        raise InvalidSeedError(f"a seed must be an int in 0..2**64-1, got {seed}")
    return seed


def check_strategy(strategy: object) -> str:
    """Return ``strategy`` if the engine knows it, else raise InvalidStrategyError."""
    if strategy == SYSTEMATIC:
        raise InvalidStrategyError(
            "strategy='systematic' is a search over schedules, not a schedule per seed: use "
            "seedloop.explore(factory, strategy='systematic') or find_failing_seed(factory, "
            "strategy='systematic'); replay one of its schedules with "
            "seedloop.replay(factory, failure.tape)"
        )
    if strategy not in STRATEGIES:
        raise InvalidStrategyError(
            f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}"
        )
    return strategy  # type: ignore[return-value]


def check_int(
    name: str,
    value: object,
    minimum: int,
    maximum: int,
    *,
    error: type[Exception] = InvalidOptionError,
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if not minimum <= value <= maximum:
        bound = f">= {minimum}" if maximum >= 2**62 else f"between {minimum} and {maximum}"
        raise error(f"{name} must be an int {bound}, got {value}")
    return value


def check_duration(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(f"{name} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value <= 0:
        raise InvalidOptionError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_step_time(value: object) -> float:
    """Virtual seconds per step: a number in 0..1 (0: time moves only by timers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(
            f"step_time must be a number of seconds per step (e.g. 1e-6), got {value!r}"
        )
    if math.isnan(value) or not 0 <= value <= _MAX_STEP_TIME:
        raise InvalidOptionError(
            f"step_time must be between 0 and {_MAX_STEP_TIME} seconds per step "
            f"(a stock loop spends about 1e-6 to 1e-5 per callback), got {value!r}"
        )
    return float(value)


def check_tape(tape: object) -> list[int]:
    """A decision tape (a list, tuple or other sequence of ints) as a fresh list.

    Iterators are refused: one passed to two runs would be used up by the
    first, and the second would silently replay asyncio's own order.
    """
    if isinstance(tape, (str, bytes, bytearray)) or not isinstance(tape, Sequence):
        kind = type(tape).__name__
        raise InvalidOptionError(
            f"a tape is a list (or tuple) of non-negative ints, got {kind} {tape!r}"
            + (
                "; an iterator would be used up by its first run: pass list(...)"
                if isinstance(tape, Iterator)
                else ""
            )
        )
    items = list(tape)
    for choice in items:
        if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < 2**32:
            raise InvalidOptionError(
                f"a tape is a list of ints in 0..2**32-1 (Failure.tape / Failure.shrunk_tape), "
                f"found {choice!r}"
            )
    return items


def check_timing(timing: object) -> list[int]:
    """A timing tape (a ``feasible`` run's recorded nanoseconds) as a fresh list."""
    if isinstance(timing, (str, bytes)) or not isinstance(timing, Sequence):
        raise InvalidOptionError(
            f"timing is a list of non-negative ints (Failure.timing / RunResult.timing), "
            f"got {timing!r}"
        )
    items = list(timing)
    for value in items:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise InvalidOptionError(
                f"timing is a list of ints in 0..2**64-1 (nanoseconds), found {value!r}"
            )
    return items


def check_sleep(sleep: object) -> str:
    if sleep not in SLEEP_MODES:
        raise InvalidWorldOptionError(
            f"sleep must be one of {', '.join(map(repr, SLEEP_MODES))}, got {sleep!r}: "
            "'advance' lets time.sleep() move virtual time, "
            "'error' makes it raise BlockingCallError"
        )
    return sleep  # type: ignore[return-value]


def epoch_ns(wall_epoch: object) -> int:
    """``wall_epoch`` (POSIX seconds or an aware datetime) in integer nanoseconds."""
    if wall_epoch is DEFAULT_WALL_EPOCH:
        return DEFAULT_WALL_EPOCH * 10**9
    if isinstance(wall_epoch, _real_datetime):
        if wall_epoch.tzinfo is None or wall_epoch.utcoffset() is None:
            raise InvalidWorldOptionError(
                f"wall_epoch={wall_epoch!r} is a naive datetime; give it a time zone, "
                "e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)"
            )
        delta = wall_epoch - _EPOCH_START
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if isinstance(wall_epoch, bool) or not isinstance(wall_epoch, (int, float)):
        raise InvalidWorldOptionError(
            "wall_epoch must be POSIX seconds (int or float) or an aware datetime, "
            f"got {wall_epoch!r}"
        )
    if not math.isfinite(wall_epoch) or not _MIN_EPOCH <= wall_epoch <= _MAX_EPOCH:
        raise InvalidWorldOptionError(
            f"wall_epoch must be POSIX seconds between {_MIN_EPOCH} (year 1) and {_MAX_EPOCH} "
            f"(year 9999), the range datetime can show, got {wall_epoch!r}"
        )
    if isinstance(wall_epoch, int):
        return wall_epoch * 10**9
    return round(wall_epoch * 1e9)


# -- factories and seed lists ----------------------------------------------------


def factory_name(factory: object) -> str:
    return (
        getattr(factory, "__qualname__", None) or getattr(factory, "__name__", None) or "scenario"
    )


def check_factory(
    factory: object, api: str = "seedloop.run", *, call_signature: bool = True
) -> None:
    """Reject what cannot be a scenario factory, with a hint how to fix it.

    ``call_signature=False`` skips the (slow) signature check: a factory that
    needs arguments is then caught when it is called.
    """
    if inspect.iscoroutine(factory):
        factory.close()  # avoid a 'never awaited' warning on top of the error
        raise InvalidFactoryError(
            f"{api}() needs a zero-argument callable returning a coroutine, got a coroutine "
            "object; pass the function itself: run(scenario), not run(scenario())"
        )
    if not callable(factory):
        raise InvalidFactoryError(
            f"{api}() needs a zero-argument callable returning a coroutine, "
            f"got {type(factory).__name__} {factory!r}"
        )
    if not call_signature:
        return
    try:
        inspect.signature(factory).bind()
    except TypeError as exc:
        raise needs_arguments(factory, api, exc) from None
    except ValueError:
        pass  # no signature available (some builtins): find out when calling


def needs_arguments(factory: object, api: str, exc: TypeError) -> InvalidFactoryError:
    name = factory_name(factory)
    return InvalidFactoryError(
        f"{api}() calls the factory with no arguments, but {name} "
        f"needs some ({exc}); wrap it: lambda: {name}(...)"
    )


def check_seeds_arg(seeds: object, api: str) -> None:
    """Reject what is not an iterable of seeds (before anything runs)."""
    if isinstance(seeds, int):
        raise InvalidSeedError(
            f"{api}() takes an iterable of seeds, got the int {seeds}; did you mean range({seeds})?"
        )
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise InvalidSeedError(f"{api}() takes an iterable of int seeds, got {seeds!r}")


def iter_seeds(seeds: Iterable[int], api: str) -> Iterator[int]:
    """The seeds, each checked; an empty list is an error."""
    check_seeds_arg(seeds, api)
    try:
        empty = hasattr(seeds, "__len__") and len(seeds) == 0  # type: ignore[arg-type]
    except OverflowError:  # range(2**64): more seeds than len() can count
        empty = False
    if empty:
        raise InvalidSeedError(f"{api}(): the seed range is empty; pass e.g. range(1000)")
    any_seed = False
    for seed in seeds:
        any_seed = True
        yield check_seed(seed)
    if not any_seed:
        raise InvalidSeedError(f"{api}(): the seed range is empty; pass e.g. range(1000)")


def parse_seeds(text: str) -> range | list[int]:
    """``"500"`` -> range(500); ``"100:200"`` -> range(100, 200); ``"1,5,9"`` -> [1, 5, 9].

    Parts separated by commas may mix both forms: ``"0:10,99"``.
    """
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise InvalidSeedError(
            f"empty seed range {text!r}; write N (seeds 0..N-1), A:B (seeds A..B-1) or a list 1,5,9"
        )
    ranges: list[range] = []
    for part in parts:
        try:
            if ":" in part:
                fields = part.split(":")
                if len(fields) not in (2, 3):
                    raise ValueError(part)
                bounds = [int(f) for f in fields]
                ranges.append(range(*bounds))
            else:
                n = int(part)
                ranges.append(range(n) if len(parts) == 1 else range(n, n + 1))
        except ValueError:
            raise InvalidSeedError(
                f"cannot read seeds {text!r}: write N (seeds 0..N-1), A:B (seeds A..B-1), "
                "A:B:STEP, or a comma list like 1,5,9"
            ) from None
    for r in ranges:
        if len(r) == 0:
            raise InvalidSeedError(f"seed range {text!r} is empty; in A:B, B must be above A")
        check_seed(r[0])
        check_seed(r[-1])
    if len(ranges) == 1:
        return ranges[0]
    return [s for r in ranges for s in r]


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> (2, 8): this machine takes shard 2 of 8 (positions p with p % 8 == 2)."""
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise InvalidSeedError(
            f"cannot read shard {text!r}: write I/N, e.g. 0/4 for the first of 4 machines"
        ) from None
    return check_shard((i, n))


def check_shard(shard: object) -> tuple[int, int]:
    """A shard as ``(i, n)`` (from a pair or an ``"i/n"`` string)."""
    if isinstance(shard, str):
        return parse_shard(shard)
    try:
        i, n = shard  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidSeedError(f"a shard is (i, n) or 'i/n', got {shard!r}") from None
    if isinstance(i, bool) or isinstance(n, bool) or not isinstance(i, int) or not isinstance(n, int):
        raise InvalidSeedError(f"a shard is a pair of ints (i, n), got {shard!r}")
    if n < 1 or not 0 <= i < n:
        raise InvalidSeedError(f"shard {i}/{n} does not exist: with N shards, I runs from 0 to N-1")
    return i, n


def check_jobs(jobs: object, cpu_count: int) -> int:
    """Worker processes: a positive int, or 0/None for one per CPU."""
    if isinstance(jobs, bool) or not isinstance(jobs, (int, type(None))) or (jobs or 0) < 0:
        raise InvalidOptionError(
            f"jobs must be a positive int (or 0/None for one per CPU), got {jobs!r}"
        )
    return jobs or cpu_count


def check_fail_if(expression: object) -> Any:
    """``fail_if``'s expression compiled (and cached), or InvalidOptionError saying why not."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidOptionError(
            "fail_if must be a Python expression over the scenario's return value `result`, "
            f"e.g. fail_if='result == \"MISSED\"', got {expression!r}"
        )
    return _compile_fail_if(expression)


@functools.lru_cache(maxsize=64)
def _compile_fail_if(expression: str) -> Any:
    try:
        return compile(expression.strip(), "<fail_if>", "eval")
    except SyntaxError as exc:
        raise InvalidOptionError(
            f"fail_if={expression!r} is not a Python expression ({exc.msg}); write one over "
            "`result`, e.g. 'result == \"MISSED\"' or 'result is None or result < 0'"
        ) from None


# -- the options of a run --------------------------------------------------------


@dataclass(frozen=True)
class WorldOptions:
    """How the deterministic world of a run is set up."""

    #: Install the world at all (False: only the loop is deterministic).
    world: bool = True
    #: What ``time.sleep`` does: "advance" virtual time, or "error".
    sleep: str = "advance"
    #: The wall clock at virtual time 0, as given (seconds or aware datetime).
    wall_epoch: Any = DEFAULT_WALL_EPOCH
    #: The same in integer nanoseconds (derived, validated).
    wall_epoch_ns: int = DEFAULT_WALL_EPOCH * 10**9
    #: Virtual seconds a clock read (``time.monotonic``, ``time.time``,
    #: ``datetime.now``...) charges when it follows another read at the same
    #: virtual instant; 0: every read in a step sees the same instant.
    clock_read_cost: float = 0.0

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> WorldOptions:
        world = options.get("world", True)
        if not isinstance(world, bool):
            raise InvalidWorldOptionError(
                f"world must be True (install the deterministic world) or False, got {world!r}"
            )
        sleep = check_sleep(options.get("sleep", "advance"))
        wall_epoch = options.get("wall_epoch", DEFAULT_WALL_EPOCH)
        cost = options.get("clock_read_cost", 0.0)
        if (
            isinstance(cost, bool)
            or not isinstance(cost, (int, float))
            or not 0 <= cost <= 1
            or cost != cost
        ):
            raise InvalidWorldOptionError(
                f"clock_read_cost is the virtual seconds a repeated clock read charges, "
                f"from 0 to 1 (suite mode uses 1e-6), got {cost!r}"
            )
        return cls(world, sleep, wall_epoch, epoch_ns(wall_epoch), float(cost))


_DEFAULT_WORLD = WorldOptions()


@dataclass(frozen=True)
class RunOptions:
    """Everything that decides how one seed runs, validated once.

    ``given`` names the options the user passed (plus PCT's measured
    ``steps``): replay commands and ``Failure.options`` repeat exactly those.
    """

    strategy: str = DEFAULT_STRATEGY
    #: PCT's bug depth.
    depth: int = DEFAULT_PCT_DEPTH
    #: PCT's expected run length k; None until measured (``_run.calibrate``).
    steps: int | None = None
    max_steps: int | None = DEFAULT_MAX_STEPS
    max_time: float | None = None
    #: Real seconds a run may take before HangError (None: unbounded).
    max_wall: float | None = DEFAULT_MAX_WALL
    #: Virtual seconds each step costs; None: the automatic rule (nothing,
    #: except 10 us per step in a busy streak of over 10,000 iterations).
    step_time: float | None = None
    executor: str = "inline"
    world: WorldOptions = _DEFAULT_WORLD
    #: A Python expression over ``result``: when it is true the run counts as failed.
    fail_if: str | None = None
    given: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @classmethod
    def build(
        cls, api: str, strategy: object = DEFAULT_STRATEGY, options: Mapping[str, Any] = {}
    ) -> RunOptions:
        """Validate ``strategy`` and the run keyword arguments of a public call."""
        check_strategy(strategy)
        if not options:
            return _default_for(strategy)  # type: ignore[arg-type]
        unknown = sorted(set(options) - {*LOOP_OPTIONS, *WORLD_OPTIONS, *CHECK_OPTIONS})
        if unknown:
            known = sorted({*LOOP_OPTIONS, *WORLD_OPTIONS, *CHECK_OPTIONS, "strategy"})
            raise InvalidOptionError(
                f"{api}(): unknown option(s) {', '.join(unknown)}; run options are "
                f"{', '.join(known)}"
            )
        depth = options.get("depth", DEFAULT_PCT_DEPTH)
        check_int("depth", depth, 1, 10_000, error=InvalidStrategyError)
        steps = options.get("steps")
        if steps is not None:
            check_int("steps", steps, 1, 2**63)
        max_steps = options.get("max_steps", DEFAULT_MAX_STEPS)
        if max_steps is not None:
            check_int("max_steps", max_steps, 1, 2**63)
        max_time = options.get("max_time")
        if max_time is not None:
            max_time = check_duration("max_time", max_time)
        max_wall = options.get("max_wall", DEFAULT_MAX_WALL)
        if max_wall is not None:
            max_wall = check_duration("max_wall", max_wall)
        step_time = options.get("step_time")
        if step_time is not None:
            step_time = check_step_time(step_time)
        executor = options.get("executor", "inline")
        if executor not in EXECUTORS:
            raise InvalidOptionError(f"executor must be 'inline' or 'thread', got {executor!r}")
        world = WorldOptions.build(options) if set(options) & set(WORLD_OPTIONS) else _DEFAULT_WORLD
        fail_if = options.get("fail_if")
        if fail_if is not None:
            check_fail_if(fail_if)
        return cls(
            strategy,  # type: ignore[arg-type]
            depth,
            steps,
            max_steps,
            max_time,
            max_wall,
            step_time,
            executor,
            world,
            fail_if,
            tuple(sorted(options.items())),
        )

    def with_steps(self, steps: int) -> RunOptions:
        """These options with PCT's run length fixed (it then shows in replays)."""
        given = tuple(sorted({**dict(self.given), "steps": steps}.items()))
        return replace(self, steps=steps, given=given)

    def with_strategy(self, strategy: str) -> RunOptions:
        """The same run under another (already valid) strategy, without PCT's settings."""
        given = tuple((k, v) for k, v in self.given if k not in ("steps", "depth"))
        return replace(self, strategy=strategy, steps=None, depth=DEFAULT_PCT_DEPTH, given=given)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that rebuild these options (what the user gave)."""
        return dict(self.given)


_DEFAULTS: dict[str, RunOptions] = {}


def _default_for(strategy: str) -> RunOptions:
    # The common call (no options) builds nothing: one frozen object per strategy.
    opts = _DEFAULTS.get(strategy)
    if opts is None:
        opts = _DEFAULTS[strategy] = RunOptions(strategy)
    return opts


@dataclass(frozen=True)
class SystematicOptions:
    """How a systematic exploration is bounded (validated once, by ``build``)."""

    #: Most preemptions (choices other than the oldest ready callback) per
    #: run; None: no bound.
    bound: int | None = DEFAULT_BOUND
    #: Most runs before giving up (``complete`` is then False); None: no cap.
    max_runs: int | None = DEFAULT_MAX_RUNS
    #: Skip schedules that only reorder independent steps (sleep sets).
    reduction: bool = True

    @classmethod
    def build(
        cls, api: str, strategy: object, bound: object, max_runs: object, reduction: object
    ) -> SystematicOptions:
        given = cls(bound, max_runs, reduction)  # type: ignore[arg-type]
        if strategy != SYSTEMATIC:
            if given != cls():
                raise InvalidOptionError(
                    f"{api}(): bound, max_runs and reduction apply to strategy='systematic' "
                    f"only (strategy is {strategy!r})"
                )
            return given
        if bound is not None:
            check_int("bound", bound, 0, 1_000)
        if max_runs is not None:
            check_int("max_runs", max_runs, 1, 2**63)
        if not isinstance(reduction, bool):
            raise InvalidOptionError(f"{api}(): reduction must be True or False, got {reduction!r}")
        return given
