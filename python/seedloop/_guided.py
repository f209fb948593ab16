"""Coverage-guided search (strategy "guided"): keep the tapes that reached new coverage and mutate them.

Every run is either *fresh* (the ``random`` strategy under the run's seed) or
a *mutant* of a tape in the corpus, replayed with ``run_seed(..., tape=...)``.
A run whose coverage has something no earlier run had joins the corpus.
Coverage is, per run:

* interleaving edges: (site, site) pairs of consecutive steps, where a site
  is the task's coroutine and the line it resumes at (AFL's edges, with
  scheduler steps for branches), counted in power-of-two buckets;
* joint positions: (site of the running task, site where another task is
  suspended) pairs;
* the seedloop.sometimes / reachable sites that held;
* on Python 3.12+, the lines of user code that ran (``sys.monitoring`` LINE
  events, each disabled after its first hit); skipped on older Pythons,
  where a line tracer would cost more than it finds.

Mutations (choices drawn from a seeded RNG, so a search is a function of its
seeds): flip one decision and draw a fresh random tail, splice two corpus
tapes, or overwrite a
window with one repeated decision (always the newest ready callback: the
oldest waits, a long overtake; or always the oldest: stock order). A tape entry is
an index among the callbacks ready at its step; the ready counts recorded
while a tape ran bound what a mutation draws, and entries that no longer fit
pick the newest callback (``clamp_tape``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import _engine
from ._describe import LIBRARY_DIRS, innermost_frame
from ._loop import SeedLoop
from ._options import RunOptions, iter_seeds
from ._result import RunResult
from ._run import Factory, run_seed

#: The strategy name searches accept besides the engine's (it is not a per-step
#: strategy: it chooses whole tapes, so a single run cannot be asked for it).
GUIDED = "guided"
#: Fresh random runs before any mutation.
_WARMUP = 8
#: The share of fresh runs after that: on bench/corpus a fresh uniform run
#: finds a bug more often than a mutant of a passing tape (bench/RESULTS.md),
#: so half the budget stays with them.
_FRESH_SHARE = 0.5
#: Mutation kinds (see _Search.mutate), drawn uniformly from this list: the
#: long-overtake window (4) is the one that beat fresh runs on bench/corpus, so
#: it counts twice; flipping one decision while keeping the parent's tail, or
#: flipping several, did worst there (mutants of passing tapes stay close to
#: them) and are left out.
_KINDS = (4, 4, 1, 5, 3)


@dataclass
class _Entry:
    tape: list[int]
    ready: list[int]
    #: How many new features it brought: its weight when picking parents.
    gain: int
    #: The step at which its last new feature first showed: mutations keep the
    #: decisions before it (the way there) and vary what follows.
    frontier: int = 0
    picked: int = 0


@dataclass
class GuidedStats:
    """What the guided search learnt (reported in the Exploration)."""

    corpus: int = 0
    features: int = 0
    fresh_runs: int = 0
    mutant_runs: int = 0
    #: Lines of user code seen (Python 3.12+ only; 0 elsewhere).
    lines: int = 0


class _Observer:
    """Per run: the ready count at each step and the interleaving edges taken."""

    def __init__(self) -> None:
        self.ready: list[int] = []
        self.edges: dict[tuple[Any, Any], int] = {}
        self.loop: SeedLoop | None = None
        self._previous: Any = None
        #: task ordinal -> the site it is suspended at
        self.where: dict[int, Any] = {}
        self._last_task: tuple[int, asyncio.Task[Any]] | None = None
        self.pairs: set[tuple[Any, Any]] = set()
        #: edge or pair -> the first step it occurred at
        self.first: dict[Any, int] = {}

    def install(self, loop: SeedLoop) -> None:
        self.loop = loop
        loop._engine_set_observer(self.observe)

    def observe(self, step: int, owner: int, handle: Any) -> None:
        loop = self.loop
        assert loop is not None
        self.ready.append(loop._engine_pending()[0] + 1)
        where = self.where
        last = self._last_task
        if last is not None:
            # Where the task of the previous step stopped: its new suspension point.
            where[last[0]] = _site_of(last[1])
        task = getattr(handle._callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            site = _site_of(task)
            self._last_task = (owner, task)
        else:
            site = getattr(handle._callback, "__qualname__", None)
            self._last_task = None
        edge = (self._previous, site)
        self.edges[edge] = self.edges.get(edge, 0) + 1
        self.first.setdefault(edge, step)
        self._previous = site
        # Joint positions: where every other task is suspended when this one runs here.
        for other, at in where.items():
            if other != owner:
                pair = (site, at)
                if pair not in self.pairs:
                    self.pairs.add(pair)
                    self.first.setdefault(pair, step)


def _site_of(task: asyncio.Task[Any]) -> Any:
    """Where a task stands: its coroutine's code and line (None once it is done)."""
    if task.done():
        return None
    frame = innermost_frame(task, skip=LIBRARY_DIRS)
    return (frame.f_code, frame.f_lineno) if frame is not None else None


def _bucket(count: int) -> int:
    return count.bit_length() if count < 128 else 8


class _Lines:
    """User lines run, on Python 3.12+ (sys.monitoring LINE events, each reported once)."""

    def __init__(self) -> None:
        self.seen: set[tuple[Any, int]] = set()
        self.new: list[tuple[Any, int]] = []
        self.tool: int | None = None
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is None:
            return
        for tool in range(6):
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "seedloop guided coverage")
                self.tool = tool
                break

    def _on_line(self, code: Any, line: int) -> Any:
        if code.co_filename.startswith(LIBRARY_DIRS) or code.co_filename.startswith("<frozen"):
            return sys.monitoring.DISABLE  # type: ignore[attr-defined]
        self.new.append((code, line))
        # Never reported twice in a search: later runs pay nothing for it.
        return sys.monitoring.DISABLE  # type: ignore[attr-defined]

    def start(self) -> None:
        self.new = []
        if self.tool is not None:
            monitoring = sys.monitoring  # type: ignore[attr-defined]
            monitoring.register_callback(self.tool, monitoring.events.LINE, self._on_line)
            monitoring.set_events(self.tool, monitoring.events.LINE)

    def stop(self) -> list[tuple[Any, int]]:
        if self.tool is not None:
            sys.monitoring.set_events(self.tool, 0)  # type: ignore[attr-defined]
        return self.new

    def close(self) -> None:
        if self.tool is not None:
            monitoring = sys.monitoring  # type: ignore[attr-defined]
            monitoring.set_events(self.tool, 0)
            monitoring.register_callback(self.tool, monitoring.events.LINE, None)
            # The lines this search disabled must fire again for the next one.
            monitoring.restart_events()
            monitoring.free_tool_id(self.tool)
            self.tool = None


@dataclass
class _Search:
    rng: Any
    corpus: list[_Entry] = field(default_factory=list)
    seen: set[Any] = field(default_factory=set)
    stats: GuidedStats = field(default_factory=GuidedStats)

    def below(self, n: int) -> int:
        return int(self.rng.below(n)) if n > 1 else 0

    def pick(self) -> _Entry:
        # Favour entries that brought much and were mutated little.
        weights = [max(1, e.gain * 4 // (1 + e.picked)) for e in self.corpus]
        target = self.below(sum(weights))
        for entry, weight in zip(self.corpus, weights, strict=True):
            if target < weight:
                entry.picked += 1
                return entry
            target -= weight
        return self.corpus[-1]

    def random_tail(self, ready: list[int], start: int, length: int) -> list[int]:
        tail = []
        for step in range(start, length):
            bound = ready[step] if step < len(ready) else 1
            tail.append(self.below(bound))
        return tail

    def flip(self, tape: list[int], ready: list[int], step: int) -> None:
        bound = ready[step] if step < len(ready) else 2
        if bound > 1:
            choice = self.below(bound - 1)
            tape[step] = choice if choice < tape[step] else choice + 1

    def mutate(self) -> list[int]:
        parent = self.pick()
        tape, ready = list(parent.tape), parent.ready
        # Decisions with a single ready callback are no decisions at all; half
        # the time, only those after the frontier (keep the way to the new coverage).
        start = parent.frontier if self.below(2) else 0
        choices = [i for i, n in enumerate(ready[: len(tape)]) if n > 1 and i >= start] or [
            i for i, n in enumerate(ready[: len(tape)]) if n > 1
        ] or list(range(len(tape)))
        if not choices:
            return tape
        kind = _KINDS[self.below(len(_KINDS))]
        step = choices[self.below(len(choices))]
        if kind == 1:  # flip one decision, then a fresh random tail
            self.flip(tape, ready, step)
            tape[step + 1 :] = self.random_tail(ready, step + 1, len(ready))
        elif kind == 3:  # splice: this tape's head, another's tail
            other = self.corpus[self.below(len(self.corpus))]
            tape = tape[:step] + other.tape[step:]
        else:
            # A run of identical decisions, which uniform choices almost never
            # make: always the newest ready callback (the oldest waits: a long
            # overtake) or always the oldest (stock order through a window).
            span = 1 << (1 + self.below(7))
            end = min(len(tape), step + span)
            for i in range(step, end):
                # A tape may outrun the ready counts seen (a splice): 0 then.
                newest = ready[i] - 1 if i < len(ready) else 0
                tape[i] = max(0, newest) if kind == 4 else 0
            if self.below(2):
                tape[end:] = self.random_tail(ready, end, len(ready))
        return tape

    def learn(self, result: RunResult, observer: _Observer, lines: list[Any]) -> None:
        first = observer.first
        # (feature, the step it first occurred at; 0 when unknown)
        features: list[tuple[Any, int]] = [
            (("edge", edge, _bucket(count)), first.get(edge, 0))
            for edge, count in observer.edges.items()
        ]
        features += [(("pair", pair), first.get(pair, 0)) for pair in observer.pairs]
        features += [(("goal", key), 0) for key, (_, held) in result.assertions.items() if held]
        features += [(("line", line), 0) for line in lines]
        gain = frontier = 0
        for feature, step in features:
            if feature not in self.seen:
                self.seen.add(feature)
                gain += 1
                frontier = max(frontier, step)
        self.stats.lines += len(lines)
        if gain:
            self.corpus.append(_Entry(list(result.tape), observer.ready, gain, frontier))
        self.stats.corpus = len(self.corpus)
        self.stats.features = len(self.seen)


def runs(
    factory: Factory, seeds: Iterable[int], opts: RunOptions, api: str, stats: GuidedStats
) -> Iterator[tuple[int, RunResult]]:
    """``(position, result)`` of each guided run; one run per seed, in order.

    The seed of each run sets the world's randomness (and a fresh run's
    schedule); the mutations draw from an RNG seeded by the first seed.
    ``opts`` are the runs' options with a per-step strategy (``random``).
    """
    search: _Search | None = None
    lines = _Lines()
    try:
        for index, seed in enumerate(iter_seeds(seeds, api)):
            if search is None:
                search = _Search(_engine.Rng(seed, "guided"), stats=stats)
            fresh = (
                index < _WARMUP
                or not search.corpus
                or search.rng.random() < _FRESH_SHARE
            )
            observer = _Observer()
            lines.start()
            try:
                if fresh:
                    stats.fresh_runs += 1
                    result = run_seed(factory, seed, opts, api=api, instrument=observer.install)
                else:
                    stats.mutant_runs += 1
                    result = run_seed(
                        factory,
                        seed,
                        opts,
                        tape=search.mutate(),
                        api=api,
                        instrument=observer.install,
                        clamp_tape=True,
                    )
            finally:
                new_lines = lines.stop()
            search.learn(result, observer, new_lines)
            yield index, result
    finally:
        lines.close()
