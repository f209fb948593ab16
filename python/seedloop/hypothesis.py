"""Hypothesis drives seedloop: it picks the seed (or the schedule itself).

Two ways in, both keeping Hypothesis's example database (a failing seed or
schedule is saved and tried first on the next run):

* the seed as an argument::

      from hypothesis import given
      from seedloop.hypothesis import seeds, run

      @given(seed=seeds())
      def test_no_lost_update(seed):
          run(scenario, seed)

  ``@seedloop.hypothesis.simulate()`` writes that for an ``async def`` test,
  and draws any other arguments from the strategies you give it.

* the schedule as an argument: :func:`schedules` draws a decision tape (at
  each step, which ready callback runs, 0 meaning asyncio's own choice).
  Hypothesis shrinks a failing tape towards asyncio's order, so the example
  it reports is a failing interleaving with the fewest departures from what
  stock asyncio would do::

      @given(schedule=schedules())
      def test_no_lost_update(schedule):
          schedule.run(scenario)

Import it as ``seedloop.hypothesis`` (Hypothesis is an optional dependency).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis as _hypothesis
from hypothesis import given
from hypothesis import strategies as st

from ._options import DEFAULT_STRATEGY, check_strategy
from ._result import RunResult
from ._run import Factory, execute
from ._run import run as _run
from .errors import InvalidFactoryError

__all__ = ["Schedule", "run", "schedules", "seeds", "simulate"]

MAX_SEED = 2**64 - 1


def seeds(min_value: int = 0, max_value: int = MAX_SEED) -> st.SearchStrategy[int]:
    """Seeds for :func:`seedloop.run`, from ``min_value`` to ``max_value``.

    Hypothesis shrinks a failing seed towards ``min_value``, but neighbouring
    seeds are unrelated runs: a smaller seed is not a simpler interleaving
    (use :func:`schedules` for that). The example database still saves a
    failing seed and tries it first on the next run.
    """
    if not 0 <= min_value <= max_value <= MAX_SEED:
        raise ValueError(
            f"seeds() needs 0 <= min_value <= max_value <= 2**64-1, got {min_value}..{max_value}"
        )
    return st.integers(min_value=min_value, max_value=max_value)


def run(factory: Factory, seed: int, *, strategy: str = DEFAULT_STRATEGY, **options: Any) -> Any:
    """:func:`seedloop.run` that also tells Hypothesis how to replay a failure."""
    note(
        f"seedloop replay: seedloop.run({_name(factory)}, seed={seed}, strategy={strategy!r}"
        + "".join(f", {k}={v!r}" for k, v in sorted(options.items()))
        + ")"
    )
    return _run(factory, seed, strategy=strategy, **options)


@dataclass(frozen=True)
class Schedule:
    """A decision tape: at step i, run ready callback ``tape[i]`` (0 = asyncio's order).

    Entries past the number of ready callbacks pick the newest one; steps past
    the end of the tape follow asyncio's order.
    """

    tape: tuple[int, ...]

    @property
    def departures(self) -> int:
        """How many steps depart from asyncio's own order."""
        return sum(1 for choice in self.tape if choice)

    def execute(self, factory: Factory, **options: Any) -> RunResult:
        """Run ``factory`` under this schedule; the :class:`seedloop.RunResult`."""
        # Drawn tapes are clamped, as documented above: that is what lets
        # Hypothesis draw (and shrink) tapes without knowing the scenario.
        return execute(factory, 0, tape=list(self.tape), clamp_tape=True, **options)

    def run(self, factory: Factory, **options: Any) -> Any:
        """Run ``factory`` under this schedule: its result, or its exception raised."""
        note(
            f"seedloop replay: seedloop.execute({_name(factory)}, 0, tape={list(self.tape)!r}, "
            "clamp_tape=True)"
        )
        result = self.execute(factory, **options)
        if result.exception is not None:
            raise result.exception
        return result.value


def schedules(max_steps: int = 200, max_choice: int = 7) -> st.SearchStrategy[Schedule]:
    """Decision tapes of up to ``max_steps`` steps, choices 0..``max_choice``.

    Shrinking makes a failing tape shorter and its choices smaller: towards
    the schedule stock asyncio runs.
    """
    if max_steps < 0 or max_choice < 0:
        raise ValueError("schedules() needs max_steps >= 0 and max_choice >= 0")
    return st.lists(st.integers(0, max_choice), max_size=max_steps).map(
        lambda tape: Schedule(tuple(tape))
    )


def simulate(
    *,
    strategy: str = DEFAULT_STRATEGY,
    seed: st.SearchStrategy[int] | None = None,
    **strategies: st.SearchStrategy[Any],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate an ``async def`` test: Hypothesis draws the seed (and ``strategies``).

    ``@simulate(n=st.integers(1, 5))`` on ``async def test_x(n)`` runs
    ``test_x(n)`` on a SeedLoop under each drawn seed. Other parameters stay
    pytest fixtures. A test that has a ``seed`` parameter receives the seed.
    Stack ``@hypothesis.settings(...)`` above it as usual.
    """
    check_strategy(strategy)
    seed_strategy = seed if seed is not None else seeds()

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.iscoroutinefunction(fn):
            raise InvalidFactoryError(
                f"seedloop.hypothesis.simulate decorates 'async def' tests; "
                f"{getattr(fn, '__qualname__', fn)!r} is not one"
            )
        signature = inspect.signature(fn)
        wants_seed = "seed" in signature.parameters
        missing = [name for name in strategies if name not in signature.parameters]
        if missing:
            raise InvalidFactoryError(
                f"seedloop.hypothesis.simulate got strategies for {missing}, but "
                f"{fn.__qualname__} has no such parameter"
            )

        def test(*args: Any, seed: int, **kwargs: Any) -> None:
            if wants_seed:
                kwargs["seed"] = seed

            def factory() -> Any:
                return fn(*args, **kwargs)

            factory.__name__ = fn.__name__
            factory.__qualname__ = fn.__qualname__
            run(factory, seed, strategy=strategy)

        params = [p for p in signature.parameters.values() if p.name != "seed"]
        params = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.name in strategies else p
            for p in params
        ]
        positional = [p for p in params if p.kind != inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
        seed_param = inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY)
        test.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*positional, seed_param, *keyword], return_annotation=None
        )
        functools.update_wrapper(
            test, fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=()
        )
        return given(seed=seed_strategy, **strategies)(test)

    return decorate


def note(text: str) -> None:
    """hypothesis.note, but harmless outside a Hypothesis test."""
    in_test = getattr(_hypothesis, "currently_in_test_context", None)
    if in_test is None or in_test():
        try:
            _hypothesis.note(text)
        except _hypothesis.errors.InvalidArgument:
            pass


def _name(factory: object) -> str:
    return getattr(factory, "__qualname__", None) or getattr(factory, "__name__", "scenario")
