"""Running a scenario under seeds: run, find_failing_seed, find_seed_where."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import _world
from ._loop import STRATEGIES, SeedLoop, check_seed
from .errors import (
    InvalidFactoryError,
    InvalidOptionError,
    InvalidSeedError,
    InvalidStrategyError,
    SeedloopError,
    StuckError,
)

Factory = Callable[[], Coroutine[Any, Any, Any]]

DEFAULT_MAX_STEPS = 2_000_000
_CLEANUP_STEPS = 100_000


@dataclass
class RunResult:
    """Everything one run produced."""

    seed: int
    strategy: str
    value: Any
    exception: BaseException | None
    fingerprint: str
    tape: list[int] = field(repr=False)
    steps: int
    virtual_time: float
    options: dict[str, Any] = field(default_factory=dict)
    #: Every decision kept asyncio's documented order (a real loop can do this too).
    strict_order: bool = True
    #: ``(seq, task_ordinal, choice, virtual_time)`` per step, when requested.
    step_log: list[tuple[int, int, int, float]] | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.exception is not None


@dataclass
class Failure:
    """A failing run: the seed that reproduces it and what it raised."""

    seed: int
    exception: BaseException
    strategy: str = "shuffle"
    fingerprint: str = ""
    tape: list[int] = field(default_factory=list, repr=False)
    steps: int = 0
    virtual_time: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    factory_name: str = "scenario"
    #: The simplest decision tape that still fails the same way (None if not shrunk).
    shrunk_tape: list[int] | None = field(default=None, repr=False)
    #: The failing interleaving, step by step (virtual time, task, line resumed at).
    timeline: str | None = field(default=None, repr=False)
    #: Can a stock event loop produce this failure? (None if not checked.)
    feasible_on_real_loop: bool | None = None
    feasibility: str = ""

    @property
    def replay_tape_command(self) -> str | None:
        """A one-line call replaying the shrunk schedule."""
        if self.shrunk_tape is None:
            return None
        return f"seedloop.replay({self.factory_name}, {self.shrunk_tape!r}, seed={self.seed})"

    def report(self) -> str:
        """The full failure report: what failed, how to replay it, and the timeline."""
        parts = [str(self)]
        if self.replay_tape_command:
            departures = sum(1 for c in self.shrunk_tape or [] if c)
            parts.append(
                f"shrunk schedule ({departures} departure(s) from FIFO): {self.replay_tape_command}"
            )
        if self.feasibility:
            parts.append(self.feasibility)
        if self.timeline:
            parts.append(self.timeline)
        return "\n".join(parts)

    @property
    def replay_command(self) -> str:
        """A one-line call that reproduces this failure."""
        extra = "".join(f", {k}={v!r}" for k, v in sorted(self.options.items()))
        return (
            f"seedloop.run({self.factory_name}, seed={self.seed}, "
            f"strategy={self.strategy!r}{extra})"
        )

    def __str__(self) -> str:
        return (
            f"seed {self.seed} (strategy {self.strategy}) fails with "
            f"{type(self.exception).__name__}: {self.exception}\n"
            f"replay: {self.replay_command}"
        )


def _factory_name(factory: object) -> str:
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
        raise _needs_arguments(factory, api, exc) from None
    except ValueError:
        pass  # no signature available (some builtins): find out when calling


def _needs_arguments(factory: object, api: str, exc: TypeError) -> InvalidFactoryError:
    name = _factory_name(factory)
    return InvalidFactoryError(
        f"{api}() calls the factory with no arguments, but {name} "
        f"needs some ({exc}); wrap it: lambda: {name}(...)"
    )


def _make_coroutine(factory: Factory, api: str) -> Coroutine[Any, Any, Any]:
    try:
        coro = factory()
    except TypeError as exc:
        # Raised by the call itself (no frame of the factory ran): bad arity.
        tb = exc.__traceback__
        if tb is not None and tb.tb_next is None:
            raise _needs_arguments(factory, api, exc) from None
        raise
    if not inspect.iscoroutine(coro):
        if inspect.isawaitable(coro):

            async def _await(aw: Any = coro) -> Any:
                return await aw

            return _await()
        raise InvalidFactoryError(
            f"{api}(): the factory {_factory_name(factory)} returned {type(coro).__name__}, "
            "not a coroutine; it must be an 'async def' function (or return a coroutine)"
        )
    return coro


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise InvalidStrategyError(
            f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}"
        )


def execute(
    factory: Factory,
    seed: int,
    strategy: str = "shuffle",
    *,
    tape: list[int] | None = None,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    max_time: float | None = None,
    api: str = "seedloop.run",
    instrument: Callable[[SeedLoop], None] | None = None,
    keep_steps: bool = False,
    **options: Any,
) -> RunResult:
    """Run ``factory()`` once on a fresh SeedLoop and report everything about it.

    ``instrument(loop)`` is called before the scenario starts (observers,
    task factories); ``keep_steps`` keeps the full step log in the result.
    """
    # Seed, strategy and option values are validated by SeedLoop() below,
    # before any coroutine exists.
    check_not_in_running_loop(api)
    if options:
        loop_options, world_options = _world.split_options(options)
        unknown = sorted(set(loop_options) - _LOOP_OPTIONS)
    else:
        loop_options = world_options = {}
        unknown = []
    if unknown:
        raise InvalidOptionError(
            f"{api}(): unknown option(s) {', '.join(unknown)}; run options are "
            f"{', '.join(sorted(_LOOP_OPTIONS | _RUN_OPTIONS | set(_world.WORLD_OPTIONS)))}"
        )
    # The loop first: bad option values fail before a coroutine exists.
    loop = SeedLoop(
        seed, strategy, tape=tape, max_steps=max_steps, max_time=max_time, **loop_options
    )
    try:
        coro = _make_coroutine(factory, api)
        if instrument is not None:
            instrument(loop)
        with _world.installed(loop, seed, **world_options) as world:
            main = loop.create_task(coro, name="main")
            value: Any = None
            exception: BaseException | None = None
            try:
                value = loop.run_until_complete(main)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                exception = exc
            _finish(loop)
            if exception is None and world is not None and world.escapes:
                exception = world.escapes[0]  # swallowed by the code under test
            result = RunResult(
                seed=seed,
                strategy=loop.strategy,
                value=value,
                exception=exception,
                fingerprint=loop.trace_fingerprint(),
                tape=loop.decision_tape(),
                steps=loop.step_count(),
                virtual_time=loop.time(),
                options=dict(options),
                strict_order=loop._engine_all_strict(),
                step_log=loop._engine_steps() if keep_steps else None,
            )
    finally:
        loop.close()
    return result


_LOOP_OPTIONS = frozenset({"depth", "steps", "executor"})
_RUN_OPTIONS = frozenset({"strategy", "max_steps", "max_time"})


def check_not_in_running_loop(api: str) -> None:
    """seedloop runs its own loops: refuse to start inside someone else's."""
    if asyncio._get_running_loop() is not None:
        raise SeedloopError(
            f"{api}() cannot run inside a running event loop (it runs its own SeedLoop); "
            "call it from synchronous code, e.g. a plain 'def test_...', or decorate the "
            "async test with @seedloop.simulate / @pytest.mark.seedloop"
        )


def _quiet_cancellations(previous: Any) -> Callable[[Any, dict[str, Any]], None]:
    """Exception handler for clean-up: the CancelledError that seedloop's own
    cancellation provokes in loop callbacks (CPython 3.11/3.12's streams.py
    asks a cancelled handler task for its exception) is not the code's bug."""

    def handler(loop: Any, context: dict[str, Any]) -> None:
        callback = getattr(context.get("handle"), "_callback", None)
        if isinstance(context.get("exception"), asyncio.CancelledError) and (
            getattr(callback, "__module__", None) == "asyncio.streams"
        ):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handler


def _finish(loop: SeedLoop) -> None:
    """Cancel what is left in creation order, let it unwind, close async generators."""
    pending = loop.pending_tasks()
    if not pending and not loop._asyncgens:
        return  # the common case: nothing to unwind
    loop._engine_set_budget(loop.step_count() + _CLEANUP_STEPS, None)
    loop.set_exception_handler(_quiet_cancellations(loop.get_exception_handler()))
    try:
        if pending:
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            for task in pending:
                if not task.cancelled() and task.exception() is not None:
                    # As asyncio.run does: a task that failed while being cancelled.
                    loop.call_exception_handler(
                        {
                            "message": "unhandled exception during seedloop's clean-up",
                            "exception": task.exception(),
                            "task": task,
                        }
                    )
        if loop._asyncgens:
            loop.run_until_complete(loop.shutdown_asyncgens())
    except StuckError:
        pass  # a task that refuses to unwind: the loop's close drops it


def _annotate(failure: Failure) -> None:
    """Attach ``failure`` and a replay note to its exception."""
    exc = failure.exception
    note = f"seedloop: seed {failure.seed} (strategy {failure.strategy}) reproduces this; replay: {failure.replay_command}"
    try:
        exc.__seedloop_failure__ = failure  # type: ignore[attr-defined]
        if hasattr(exc, "add_note"):
            if note not in getattr(exc, "__notes__", ()):
                exc.add_note(note)
    except (AttributeError, TypeError):
        pass


def _failure_from(result: RunResult, factory: object) -> Failure:
    assert result.exception is not None
    return Failure(
        seed=result.seed,
        exception=result.exception,
        strategy=result.strategy,
        fingerprint=result.fingerprint,
        tape=result.tape,
        steps=result.steps,
        virtual_time=result.virtual_time,
        options=result.options,
        factory_name=_factory_name(factory),
    )


def run(factory: Factory, seed: int = 0, *, strategy: str = "shuffle", **options: Any) -> Any:
    """Run ``factory()`` under ``seed``; return its result or raise its exception.

    The same seed (and strategy) always gives the same interleaving and the
    same virtual times. Inside the run the world is deterministic too (see
    ``seedloop._world``): ``world=False`` turns that off, ``sleep="advance"``
    (default) or ``"error"`` chooses what ``time.sleep`` does, and
    ``wall_epoch`` sets the wall clock at virtual time 0.
    """
    check_factory(factory, "seedloop.run", call_signature=False)
    if strategy == "pct" and "steps" not in options:
        # The same k as find_failing_seed estimates, so its seeds reproduce here.
        options["steps"] = estimate_run_length(factory, "seedloop.run", options)
    result = execute(factory, seed, strategy, **options)
    if result.exception is not None:
        _annotate(_failure_from(result, factory))
        raise result.exception
    return result.value


def _iter_seeds(seeds: Iterable[int], api: str) -> Iterable[int]:
    if isinstance(seeds, int):
        raise InvalidSeedError(
            f"{api}() takes an iterable of seeds, got the int {seeds}; did you mean range({seeds})?"
        )
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise InvalidSeedError(f"{api}() takes an iterable of int seeds, got {seeds!r}")
    if hasattr(seeds, "__len__") and len(seeds) == 0:  # type: ignore[arg-type]
        raise InvalidSeedError(f"{api}(): the seed range is empty; pass e.g. range(1000)")
    any_seed = False
    for seed in seeds:
        any_seed = True
        yield check_seed(seed)
    if not any_seed:
        raise InvalidSeedError(f"{api}(): the seed range is empty; pass e.g. range(1000)")


class _Explorer:
    """Runs seeds one after another with fixed options.

    PCT needs k, the expected run length, to place its change points. It is
    estimated once, from a pilot run in stock (fifo) order, so that every seed
    sees the same k whatever ran before it: a seed found by a parallel or
    sharded search reproduces alone.
    """

    def __init__(self, factory: Factory, strategy: str, api: str, options: dict[str, Any]):
        check_factory(factory, api)
        check_strategy(strategy)
        self.factory = factory
        self.strategy = strategy
        self.api = api
        self.options = dict(options)
        if strategy == "pct" and "steps" not in self.options:
            self.options["steps"] = estimate_run_length(factory, api, self.options)

    def run(self, seed: int, **extra: Any) -> RunResult:
        return execute(self.factory, seed, self.strategy, api=self.api, **self.options, **extra)


def estimate_run_length(factory: Factory, api: str, options: dict[str, Any]) -> int:
    """Steps of one run in stock asyncio order (PCT's k), at least 10."""
    pilot_options = {k: v for k, v in options.items() if k not in ("depth", "steps")}
    pilot = execute(factory, 0, "fifo", api=api, **pilot_options)
    return max(pilot.steps, 10)


def find_failing_seed(
    factory: Factory,
    seeds: Iterable[int],
    *,
    strategy: str = "shuffle",
    shrink: bool = True,
    explain: bool = True,
    check_determinism: bool = False,
    jobs: int | None = 1,
    **options: Any,
) -> Failure | None:
    """The first seed whose run raises, as a :class:`Failure`; None if all pass.

    On a failure the schedule is shrunk (``shrink``) and explained: a
    timeline and whether a real loop can produce it (``explain``).
    ``check_determinism`` runs every seed twice and raises
    NondeterminismError at the first step where the two runs diverge.
    ``jobs`` > 1 (or None/0: one per CPU) shares the seeds among worker
    processes; the answer is the same seed a serial search returns.
    """
    check_not_in_running_loop("seedloop.find_failing_seed")
    if jobs != 1:
        from ._parallel import explore

        return explore(
            factory,
            seeds,
            strategy=strategy,
            jobs=jobs,
            stop_on_failure=True,
            check_determinism=check_determinism,
            shrink=shrink,
            explain=explain,
            **options,
        ).failure
    explorer = _Explorer(factory, strategy, "seedloop.find_failing_seed", options)
    with _world.held(options.get("world", True)):
        for seed in _iter_seeds(seeds, "seedloop.find_failing_seed"):
            if check_determinism:
                from ._investigate import check_determinism as check

                result = check(factory, seed, strategy, run=lambda *a, **k: explorer.run(a[1], **k))
            else:
                result = explorer.run(seed)
            if result.exception is not None:
                failure = _failure_from(result, factory)
                if shrink or explain:
                    _investigate_failure(factory, failure, result, shrink=shrink, explain=explain)
                _annotate(failure)
                return failure
    return None


def _investigate_failure(
    factory: Factory, failure: Failure, result: RunResult, *, shrink: bool, explain: bool
) -> None:
    from . import _investigate

    options = dict(failure.options)
    tape = failure.tape
    if shrink:
        tape = _investigate.shrink_failure(
            factory, failure.seed, failure.tape, failure.exception, **options
        )
        failure.shrunk_tape = tape
    if explain:
        replayed, rows, tasks = _investigate.record_timeline(factory, failure.seed, tape, **options)
        shown = replayed.exception if replayed.exception is not None else failure.exception
        failure.timeline = _investigate.render_timeline(rows, tasks, shown)
        if _investigate.signature(replayed.exception) != _investigate.signature(failure.exception):
            failure.timeline += (
                "\n  (the replay ended differently: "
                f"{_investigate.outcome(replayed)}; this scenario is not deterministic, "
                "see find_failing_seed(..., check_determinism=True))"
            )
        strict_options = {k: v for k, v in options.items() if k not in ("steps", "depth")}
        feasible, _, text = _investigate.strict_verdict(
            factory, failure.exception, replayed.strict_order, **strict_options
        )
        failure.feasible_on_real_loop = feasible
        failure.feasibility = text


def replay(factory: Factory, tape: list[int] | Failure, *, seed: int = 0, **options: Any) -> Any:
    """Rerun a recorded decision tape exactly; return the result or raise.

    ``tape`` is a list of choices (``Failure.tape`` / ``Failure.shrunk_tape``)
    or a :class:`Failure` (its shrunk tape and seed are used).
    """
    check_factory(factory, "seedloop.replay")
    if isinstance(tape, Failure):
        seed = tape.seed
        options = {**tape.options, **options}
        tape = tape.shrunk_tape if tape.shrunk_tape is not None else tape.tape
    if not isinstance(tape, (list, tuple)) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in tape
    ):
        raise InvalidSeedError("seedloop.replay() needs a tape: a list of non-negative ints")
    options.pop("steps", None)
    options.pop("depth", None)
    result = execute(factory, seed, tape=list(tape), api="seedloop.replay", **options)
    if result.exception is not None:
        _annotate(_failure_from(result, factory))
        raise result.exception
    return result.value


def find_seed_where(
    factory: Factory,
    predicate: Callable[[Any], bool],
    seeds: Iterable[int],
    *,
    strategy: str = "shuffle",
    **options: Any,
) -> tuple[int, Any] | None:
    """The first ``(seed, result)`` whose result satisfies ``predicate``; None if none does.

    A run that raises is a bug of its own: its exception propagates, annotated
    with the seed that reproduces it.
    """
    if not callable(predicate):
        raise InvalidOptionError(
            "seedloop.find_seed_where(factory, predicate, seeds): predicate must be a "
            f"callable taking the run's result, got {predicate!r}"
        )
    explorer = _Explorer(factory, strategy, "seedloop.find_seed_where", options)
    with _world.held(options.get("world", True)):
        for seed in _iter_seeds(seeds, "seedloop.find_seed_where"):
            result = explorer.run(seed)
            if result.exception is not None:
                _annotate(_failure_from(result, factory))
                raise result.exception
            if predicate(result.value):
                return seed, result.value
    return None
