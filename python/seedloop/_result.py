"""What runs produce: RunResult (one run) and Failure (a failing seed, with its report)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _assertions
from ._options import DEFAULT_STRATEGY, factory_name
from ._tape import Tape

if TYPE_CHECKING:
    from ._race import Race


@dataclass
class RunResult:
    """Everything one run produced."""

    seed: int
    strategy: str
    value: Any
    exception: BaseException | None
    fingerprint: str
    #: The decision tape (a compact sequence of ints; equal to its list).
    tape: Tape = field(repr=False)
    steps: int
    virtual_time: float
    options: dict[str, Any] = field(default_factory=dict)
    #: Every decision kept asyncio's documented order (a real loop can do this too).
    strict_order: bool = True
    #: ``(seq, task_ordinal, choice, virtual_time)`` per step, when requested.
    step_log: list[tuple[int, int, int, float]] | None = field(default=None, repr=False)
    #: A ``feasible`` run's timing, in nanoseconds and in the order used (CPU
    #: time per callback, timer lateness); empty for other strategies.
    #: ``replay(factory, [], timing=...)`` reruns it in asyncio's own order.
    timing: list[int] = field(default_factory=list, repr=False)
    #: The assertion sites this run evaluated: ``(kind, name, file, line)`` ->
    #: ``[evaluations, satisfied]`` (see seedloop.sometimes / always).
    assertions: dict[tuple[str, str, str, int], list[int]] = field(
        default_factory=dict, repr=False
    )

    @property
    def failed(self) -> bool:
        return self.exception is not None


@dataclass
class Failure:
    """A failing run: the seed that reproduces it and what it raised."""

    seed: int
    exception: BaseException
    strategy: str = DEFAULT_STRATEGY
    fingerprint: str = ""
    tape: Tape | list[int] = field(default_factory=list, repr=False)
    steps: int = 0
    virtual_time: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    factory_name: str = "scenario"
    #: The simplest decision tape that still fails the same way (None if not shrunk).
    shrunk_tape: list[int] | None = field(default=None, repr=False)
    #: A ``feasible`` failure's timing (see :attr:`RunResult.timing`): with it,
    #: the failure replays in asyncio's own order.
    timing: list[int] = field(default_factory=list, repr=False)
    #: The failing interleaving, step by step (virtual time, task, line resumed at).
    timeline: str | None = field(default=None, repr=False)
    #: Can a stock event loop produce this failure? (None if not checked.)
    feasible_on_real_loop: bool | None = None
    feasibility: str = ""
    #: The shared state the failing reordering raced on: what one task read before
    #: the decisive switch and another wrote after it, with both lines (None if
    #: not explained, or no such pair was seen). See :class:`seedloop.Race`.
    race: Race | None = None

    @property
    def replay_tape_command(self) -> str | None:
        """A one-line call replaying the shrunk schedule."""
        if self.shrunk_tape is None:
            return None
        # A tape fixes every choice: the strategy's own settings no longer matter.
        extra = "".join(
            f", {k}={v!r}" for k, v in sorted(self.options.items()) if k not in ("depth", "steps")
        )
        return f"seedloop.replay({self.factory_name}, {self.shrunk_tape!r}, seed={self.seed}{extra})"

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
        if self.race is not None:
            parts.append(str(self.race))
        if self.timeline:
            parts.append(self.timeline)
        return "\n".join(parts)

    @property
    def replay_command(self) -> str:
        """A one-line call that reproduces this failure."""
        if self.strategy == "guided":
            # A guided run is a tape (a mutant of earlier runs), not a seed's own schedule.
            extra = "".join(f", {k}={v!r}" for k, v in sorted(self.options.items()))
            return f"seedloop.replay({self.factory_name}, {list(self.tape)!r}, seed={self.seed}{extra})"
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


def annotate(failure: Failure) -> None:
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


def failure_from(result: RunResult, factory: object) -> Failure:
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
        factory_name=factory_name(factory),
        timing=result.timing,
    )


@dataclass
class Exploration:
    """The summary of exploring a seed range."""

    strategy: str
    #: Options every run used (with PCT's measured ``steps``): pass them to replay.
    options: dict[str, Any]
    seeds_run: int = 0
    failures: int = 0
    #: The failure at the smallest position in the seed order, or None.
    failure: Failure | None = None
    #: Its position in the seed order (combine shards by taking the smallest).
    failure_index: int | None = None
    #: ``(position, seed)`` of the first failing runs, in seed order.
    failing_seeds: list[tuple[int, int]] = field(default_factory=list)
    #: Outcome text (``repr`` of the result, or ``raised Type: message``) -> runs.
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Distinct trace fingerprints seen: how many different interleavings ran.
    interleavings: int = 0
    elapsed: float = 0.0
    jobs: int = 1
    shard: tuple[int, int] | None = None
    stopped_early: bool = False
    #: Ctrl-C stopped the exploration: the counts cover the seeds that finished.
    interrupted: bool = False
    #: strategy="guided": corpus size, coverage features, fresh and mutant runs.
    guided: Any = None
    #: Every always/sometimes/reachable/unreachable site the runs evaluated,
    #: aggregated: ``(kind, name, file, line)`` -> :class:`seedloop.Site`.
    assertions: dict[tuple[str, str, str, int], _assertions.Site] = field(default_factory=dict)

    @property
    def unsatisfied(self) -> list[_assertions.Site]:
        """The sometimes/reachable sites no run satisfied, in source order (a finding:
        that path never ran). Sites no run evaluated are known only if declared
        with :func:`seedloop.expect`."""
        return _assertions.unsatisfied(self.assertions)

    @property
    def seeds_per_second(self) -> float:
        return self.seeds_run / self.elapsed if self.elapsed > 0 else 0.0

    def __str__(self) -> str:
        lines = [
            f"{self.seeds_run} seeds ({self.strategy}) in {self.elapsed:.2f}s "
            f"({self.seeds_per_second:,.0f} seeds/s, {self.jobs} job(s)): "
            f"{self.failures} failing, {len(self.outcomes)} distinct outcome(s), "
            f"{self.interleavings} distinct interleaving(s)"
        ]
        if self.guided is not None:
            g = self.guided
            lines.append(
                f"guided: {g.corpus} tape(s) in the corpus, {g.features} coverage feature(s), "
                f"{g.fresh_runs} fresh and {g.mutant_runs} mutated run(s)"
            )
        never = _assertions.describe_unsatisfied(self.unsatisfied)
        if never:
            lines.append(never)
        if self.failure is not None:
            lines.append(str(self.failure))
        return "\n".join(lines)
