"""What runs produce: RunResult (one run) and Failure (a failing seed, with its report)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _assertions
from ._options import DEFAULT_STRATEGY, factory_name
from ._tape import Tape
from ._timeline import Recording
from ._trace_export import write_trace
from .errors import NoRecordingError

if TYPE_CHECKING:
    from ._race import Race


@dataclass
class RunResult:
    """Everything one run produced."""

    # run_seed builds it by position (cheaper than keywords): new fields go last.

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
    #: A compact sequence of ints, equal to its list (like ``tape``).
    timing: Tape | list[int] = field(default_factory=list, repr=False)
    #: A systematic run's record for the explorer (None for other runs).
    walk: Any = field(default=None, repr=False)
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
    timing: Tape | list[int] = field(default_factory=list, repr=False)
    #: The failing interleaving, step by step (virtual time, task, line resumed at).
    timeline: str | None = field(default=None, repr=False)
    #: Can a stock event loop produce this failure? (None if not checked.)
    feasible_on_real_loop: bool | None = None
    feasibility: str = ""
    #: Whether the run the timeline shows (the shrunk schedule, or the seed's
    #: own run) failed with the same exception type and message as the seed
    #: found; when not, the seed's exception is quoted ("" if not explained).
    timeline_outcome: str = ""
    #: The timeline as data (steps, timers, cancellations, wake-ups, network
    #: events), for the HTML drawing and :meth:`save_trace`.
    recording: Recording | None = field(default=None, repr=False)
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

    def save_trace(self, path: str | os.PathLike[str]) -> None:
        """Write the failing run in Chrome's trace-event JSON format (Perfetto, chrome://tracing).

        Tasks are threads (one process per host), steps are slices named by
        task and source line, timers and cancellations are instant events and
        network sends are flow arrows to the step that received them.
        """
        if self.recording is None:
            raise NoRecordingError(
                "this failure has no recorded timeline to export: it was found with "
                "explain=False (or by a quick search); rerun with explain=True, "
                "or seedloop replay ... --trace FILE"
            )
        write_trace(self.recording, path, title=str(self).splitlines()[0])

    @property
    def replay_command(self) -> str:
        """A one-line call that reproduces this failure."""
        if self.strategy == "guided":
            # A guided run is a tape (chosen by the learnt policy), not a seed's own schedule.
            extra = "".join(f", {k}={v!r}" for k, v in sorted(self.options.items()))
            return f"seedloop.replay({self.factory_name}, {list(self.tape)!r}, seed={self.seed}{extra})"
        extra = "".join(f", {k}={v!r}" for k, v in sorted(self.options.items()))
        if self.strategy == "systematic":
            # A systematic schedule is its tape (and the world's seed).
            return f"seedloop.replay({self.factory_name}, {list(self.tape)!r}, seed={self.seed}{extra})"
        return (
            f"seedloop.run({self.factory_name}, seed={self.seed}, "
            f"strategy={self.strategy!r}{extra})"
        )

    def __str__(self) -> str:
        if self.strategy == "systematic":
            departures = sum(1 for c in self.tape if c)
            return (
                f"a systematic schedule ({departures} departure(s) from FIFO) fails with "
                f"{type(self.exception).__name__}: {self.exception}\n"
                f"replay: {self.replay_command}"
            )
        return (
            f"seed {self.seed} (strategy {self.strategy}) fails with "
            f"{type(self.exception).__name__}: {self.exception}\n"
            f"replay: {self.replay_command}"
        )


def annotate(failure: Failure) -> None:
    """Attach ``failure`` and a replay note to its exception."""
    exc = failure.exception
    note = f"seedloop: seed {failure.seed} (strategy {failure.strategy}) reproduces this; replay: {failure.replay_command}"
    if failure.strategy == "systematic":
        note = f"seedloop: a systematic schedule reproduces this; replay: {failure.replay_command}"
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
    """The summary of exploring a seed range, or of a systematic exploration.

    For ``strategy="systematic"``: ``failure`` is the first failing schedule
    (its ``tape`` replays it), or ``complete`` is True when every schedule
    within ``bound`` ran without one (``interleavings`` of them).
    """

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
    #: Systematic exploration only (strategy "systematic"); ``seeds_run``
    #: then counts runs, ``interleavings`` the schedules run in the last
    #: round, i.e. every schedule within ``bound`` up to reordering of
    #: independent steps, when ``complete``.
    #: The preemption bound asked for (None: unbounded).
    bound: int | None = None
    #: The bound of the last round run (rounds deepen it from 0 to ``bound``).
    round_bound: int | None = None
    #: Every schedule within the bound ran, and none failed.
    complete: bool = False
    #: Complete, and no choice was ever cut by the bound: every schedule ran.
    exhaustive: bool = False
    #: Complete schedules run, all rounds (a failure is the last of them).
    schedules: int = 0
    #: Runs stopped early: their schedule only reordered independent steps of
    #: an explored one, or needed more preemptions than the round allowed.
    runs_stopped: int = 0
    max_runs: int | None = None
    #: World seeds explored (each with every schedule within the bound).
    world_seeds: int = 1
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

    def _systematic_str(self) -> str:
        bound = "no bound" if self.bound is None else f"bound {self.bound}"
        runs = (
            f"{self.seeds_run} runs ({self.runs_stopped} stopped early by reduction or the "
            f"bound) in {self.elapsed:.2f}s"
        )
        round_ = (
            "" if self.round_bound is None else f" in the round with at most {self.round_bound} preemption(s)"
        )
        if self.failure is not None:
            lines = [
                f"systematic exploration ({bound}): schedule {self.schedules} fails{round_}; {runs}",
                str(self.failure),
            ]
        elif self.complete:
            within = "explored" if self.bound is None else f"within {bound} explored"
            if self.world_seeds > 1:
                within += f" for {self.world_seeds} world seeds"
            lines = [f"all {self.interleavings} interleavings {within}: no failure; {runs}"]
            if self.exhaustive and self.bound is not None:
                lines.append("the bound never cut a choice: these are all the interleavings")
        else:
            lines = [
                f"systematic exploration ({bound}) not complete: max_runs={self.max_runs} "
                f"reached{round_} after {self.schedules} schedules; no failure so far; {runs}"
            ]
        return "\n".join(lines)

    def __str__(self) -> str:
        if self.strategy == "systematic":
            return self._systematic_str()
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
                f"{g.fresh_runs} fresh and {g.mutant_runs} corpus-extending run(s)"
            )
            if g.arms:
                lines.append(
                    "guided runs by arm (runs, with new coverage): "
                    + ", ".join(f"{arm} {n} ({new})" for arm, (n, new) in g.arms.items())
                )
        never = _assertions.describe_unsatisfied(self.unsatisfied)
        if never:
            lines.append(never)
        if self.failure is not None:
            lines.append(str(self.failure))
        return "\n".join(lines)


# Shown where users import them from: tracebacks, reprs and pickles say seedloop.RunResult...
for _cls in (RunResult, Failure, Exploration):
    _cls.__module__ = "seedloop"
del _cls
