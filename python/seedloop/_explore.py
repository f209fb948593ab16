"""Running a scenario under seeds: run, find_failing_seed, find_seed_where."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import _world
from ._loop import STRATEGIES, SeedLoop, check_seed
from .errors import InvalidFactoryError, InvalidSeedError, InvalidStrategyError, StuckError

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
    return getattr(factory, "__qualname__", None) or getattr(factory, "__name__", None) or "scenario"


def check_factory(factory: object, api: str = "seedloop.run") -> None:
    """Reject what cannot be a scenario factory, with a hint how to fix it."""
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
    try:
        inspect.signature(factory).bind()
    except TypeError as exc:
        raise InvalidFactoryError(
            f"{api}() calls the factory with no arguments, but {_factory_name(factory)} "
            f"needs some ({exc}); wrap it: lambda: {_factory_name(factory)}(...)"
        ) from None
    except ValueError:
        pass  # no signature available (some builtins): find out when calling


def _make_coroutine(factory: Factory, api: str) -> Coroutine[Any, Any, Any]:
    coro = factory()
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
    **options: Any,
) -> RunResult:
    """Run ``factory()`` once on a fresh SeedLoop and report everything about it."""
    check_seed(seed)
    check_strategy(strategy)
    coro = _make_coroutine(factory, api)
    loop = SeedLoop(seed, strategy, tape=tape, max_steps=max_steps, max_time=max_time, **options)
    try:
        with _world.installed(loop, seed):
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
            )
    finally:
        loop.close()
    return result


def _finish(loop: SeedLoop) -> None:
    """Cancel what is left in creation order, let it unwind, close async generators."""
    loop._engine_set_budget(loop.step_count() + _CLEANUP_STEPS, None)
    pending = sorted((t for t in asyncio.all_tasks(loop) if not t.done()), key=loop.task_ordinal)
    try:
        if pending:
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except StuckError:
        pass  # a task that refuses to unwind: the loop's close drops it


def _annotate(exc: BaseException, result: RunResult, factory: object) -> None:
    failure = _failure_from(result, factory)
    note = f"seedloop: seed {result.seed} (strategy {result.strategy}) reproduces this; replay: {failure.replay_command}"
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
    same virtual times.
    """
    check_factory(factory, "seedloop.run")
    result = execute(factory, seed, strategy, **options)
    if result.exception is not None:
        _annotate(result.exception, result, factory)
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
    """Runs seeds one after another, feeding PCT its step estimate."""

    def __init__(self, factory: Factory, strategy: str, api: str, options: dict[str, Any]):
        check_factory(factory, api)
        check_strategy(strategy)
        self.factory = factory
        self.strategy = strategy
        self.api = api
        self.options = options
        self.steps_seen = 0

    def run(self, seed: int) -> RunResult:
        options = dict(self.options)
        if self.strategy == "pct" and "steps" not in options:
            # k, PCT's run-length estimate, comes from the longest earlier run.
            options["steps"] = max(self.steps_seen, 100)
        result = execute(self.factory, seed, self.strategy, api=self.api, **options)
        self.steps_seen = max(self.steps_seen, result.steps)
        return result


def find_failing_seed(
    factory: Factory, seeds: Iterable[int], *, strategy: str = "shuffle", **options: Any
) -> Failure | None:
    """The first seed whose run raises, as a :class:`Failure`; None if all pass."""
    explorer = _Explorer(factory, strategy, "seedloop.find_failing_seed", options)
    for seed in _iter_seeds(seeds, "seedloop.find_failing_seed"):
        result = explorer.run(seed)
        if result.exception is not None:
            failure = _failure_from(result, factory)
            _annotate(result.exception, result, factory)
            return failure
    return None


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
        raise TypeError(f"seedloop.find_seed_where(): predicate must be callable, got {predicate!r}")
    explorer = _Explorer(factory, strategy, "seedloop.find_seed_where", options)
    for seed in _iter_seeds(seeds, "seedloop.find_seed_where"):
        result = explorer.run(seed)
        if result.exception is not None:
            _annotate(result.exception, result, factory)
            raise result.exception
        if predicate(result.value):
            return seed, result.value
    return None
