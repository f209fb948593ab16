"""``@simulate``: run an async test under many seeds, name the failing one."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._options import DEFAULT_STRATEGY
from ._result import Failure
from ._search import find_failing_seed
from .errors import InvalidFactoryError, InvalidSeedError

F = TypeVar("F", bound=Callable[..., Any])


class SimulationFailure(AssertionError):
    """A simulated test failed under some seed; ``failure`` says which and how to replay."""

    def __init__(self, test_name: str, failure: Failure) -> None:
        self.failure = failure
        exc = failure.exception
        lines = [
            f"{test_name} fails under seed {failure.seed} (strategy {failure.strategy}): "
            f"{type(exc).__name__}: {exc}",
            f"reproduce with: {failure.replay_command}",
            f"or: pytest <this test> --seedloop-replay {failure.seed}",
        ]
        if failure.replay_tape_command:
            lines.append(f"minimal schedule: {failure.replay_tape_command}")
        if failure.feasibility:
            lines.append(failure.feasibility)
        if failure.race is not None:
            lines.append(str(failure.race))
        if failure.timeline:
            lines.append(failure.timeline)
        super().__init__("\n".join(lines))


def simulate(
    seeds: Iterable[int] | Callable[..., Any] = range(100),
    *,
    strategy: str = DEFAULT_STRATEGY,
    **options: Any,
) -> Any:
    """Decorate an ``async def`` test: it runs once per seed, on a fresh SeedLoop.

    The wrapped test is a plain function (pytest calls it synchronously) that
    raises :class:`SimulationFailure`, naming the reproducing seed, on the
    first failing seed. Usable as ``@simulate`` or ``@simulate(seeds=...)``.
    """
    if callable(seeds) and not isinstance(seeds, range):
        return simulate()(seeds)
    if isinstance(seeds, int) or (hasattr(seeds, "__len__") and len(seeds) == 0):  # type: ignore[arg-type]
        raise InvalidSeedError(
            f"@simulate(seeds=...) takes a non-empty iterable of seeds, got {seeds!r}; "
            "e.g. seeds=range(1000)"
        )
    seed_list = seeds

    def decorate(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise InvalidFactoryError(
                f"@simulate decorates 'async def' tests; {fn.__qualname__} is not a coroutine function"
            )

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            settings = getattr(wrapper, "_seedloop_settings", {})

            def factory() -> Any:
                return fn(*args, **kwargs)

            # Replay commands name the async function itself: the decorated
            # name runs every seed, `.__wrapped__` runs one.
            factory.__name__ = fn.__name__
            factory.__qualname__ = f"{fn.__qualname__}.__wrapped__"
            if args or kwargs:
                factory.__qualname__ = f"(lambda: {fn.__qualname__}.__wrapped__(...))"
            failure = find_failing_seed(
                factory,
                settings.get("seeds", seed_list),
                strategy=settings.get("strategy", strategy),
                **options,
            )
            if failure is not None:
                raise SimulationFailure(fn.__qualname__, failure) from failure.exception

        wrapper.seedloop = {"seeds": seed_list, "strategy": strategy, **options}  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


# Shown where users import it from: tracebacks, reprs and pickles say seedloop.SimulationFailure.
SimulationFailure.__module__ = "seedloop"
