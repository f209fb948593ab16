"""Coverage-guided search (strategy "guided"): a learnt schedule policy plus a corpus of tapes that reached new coverage.

Every run comes from one of three generators ("arms"):

* ``learn``: a run whose every decision is taken by a policy learnt over the
  whole search (:class:`_Learner`, Q-learning after Mukherjee et al.,
  "Learning-based controlled concurrency testing", OOPSLA 2020): every step
  costs -1, so choices that led to often-visited states lose value and the
  runs drift towards interleavings the search has not seen yet;
* ``pos``: a fresh run under the ``pos`` strategy and the run's seed;
* ``extend``: a tape of the corpus replayed up to the step where its new
  coverage appeared, then the learnt policy (the way to something new, then
  onwards). Each tape that joins the corpus gets ``_ENERGY`` such runs.

A run whose coverage has something no earlier run had joins the corpus; the
next fresh arm is chosen by Thompson sampling on whether each arm's runs
brought new coverage. Coverage is, per run:

* interleaving edges: (site, site) pairs of consecutive steps, where a site
  is the task's coroutine and the line it resumes at (AFL's edges, with
  scheduler steps for branches), counted in power-of-two buckets;
* joint positions: (site of the running task, site where another task is
  suspended) pairs;
* the seedloop.sometimes / reachable sites that held;
* on Python 3.12+, the lines of user code that ran (``sys.monitoring`` LINE
  events, each disabled after its first hit); skipped on older Pythons,
  where a line tracer would cost more than it finds.

Every random choice comes from RNGs seeded by the search's first seed, and
the policy's table is only ever looked up (never iterated), so a search is
a function of its seeds. Which generators were kept, and why, is
measured in bench/RESULTS.md (the coverage-guided search).
"""

from __future__ import annotations

import asyncio
import math
import random
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
#: The learnt-policy arm (see _Learner).
_LEARN = "learn"
#: The fresh arms the bandit chooses between after the warm-up.
_FRESH = (_LEARN, "pos")
#: A corpus tape's prefix up to where its new coverage appeared, then the
#: learnt policy.
_EXTEND = "extend"
#: Runs an entry gets when it joins the corpus (measured on bench/corpus's
#: deep bugs: 2 did better than 0, 4 or 8; more spends the budget near
#: passing tapes).
_ENERGY = 2
#: Runs before the bandit chooses: random and pos in turn (the default
#: strategy's parts), so the first runs are as good as a plain search's.
_WARMUP = 8
_WARMUP_ARMS = ("random", "pos")
#: Q-learning's rate and discount (the paper's values).
_ALPHA = 0.3
_GAMMA = 0.7
#: How much a run's outcome counts against earlier ones in an arm's score
#: (a discount per run of that arm): coverage saturates, and an arm that
#: brought new coverage early should not keep its lead for ever.
_DISCOUNT = 0.98


class _Bandit:
    """Which generator makes the next run: Thompson sampling over the arms.

    An arm's reward is whether its run brought new coverage. Each arm keeps
    discounted counts of its runs and its rewarded runs, and the next run
    comes from the arm whose draw from Beta(1 + rewarded, 1 + unrewarded)
    is highest: arms that keep finding new coverage get more runs, and none
    is starved (a draw from a wide Beta can always win).
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        #: arm -> [discounted rewarded runs, discounted unrewarded runs]
        self.counts: dict[str, list[float]] = {arm: [0.0, 0.0] for arm in _FRESH}
        #: arm -> [runs, rewarded runs], every arm that ran (for the report)
        self.runs: dict[str, list[int]] = {}

    def choose(self) -> str:
        best, best_draw = _FRESH[0], -1.0
        for arm, (rewarded, unrewarded) in self.counts.items():
            draw = self.rng.betavariate(1.0 + rewarded, 1.0 + unrewarded)
            if draw > best_draw:
                best, best_draw = arm, draw
        return best

    def reward(self, arm: str, rewarded: bool) -> None:
        runs = self.runs.setdefault(arm, [0, 0])
        runs[0] += 1
        runs[1] += rewarded
        counts = self.counts.get(arm)
        if counts is not None:
            counts[0] = counts[0] * _DISCOUNT + rewarded
            counts[1] = counts[1] * _DISCOUNT + (not rewarded)

    def table(self) -> dict[str, tuple[int, int]]:
        """arm -> (runs, runs that brought new coverage)."""
        return {arm: (n, r) for arm, (n, r) in self.runs.items() if n}


@dataclass
class _Entry:
    tape: list[int]
    #: How many new features it brought.
    gain: int
    #: The step at which its last new feature first showed: ``extend`` runs keep the
    #: decisions before it (the way there) and vary what follows.
    frontier: int = 0


@dataclass
class GuidedStats:
    """What the guided search learnt (reported in the Exploration)."""

    corpus: int = 0
    features: int = 0
    fresh_runs: int = 0
    #: Runs that replayed a corpus tape's prefix (``extend``).
    mutant_runs: int = 0
    #: Lines of user code seen (Python 3.12+ only; 0 elsewhere).
    lines: int = 0
    #: arm -> (runs, runs that brought new coverage).
    arms: dict[str, tuple[int, int]] = field(default_factory=dict)


class _Observer:
    """Per run: the interleaving edges and joint positions taken, and the step each first showed at."""

    def __init__(self) -> None:
        self.edges: dict[tuple[Any, Any], int] = {}
        self._previous: Any = None
        #: task ordinal -> the site it is suspended at
        self.where: dict[int, Any] = {}
        self._last_task: tuple[int, asyncio.Task[Any]] | None = None
        self.pairs: set[tuple[Any, Any]] = set()
        #: edge or pair -> the first step it occurred at
        self.first: dict[Any, int] = {}

    def install(self, loop: SeedLoop) -> None:
        loop._engine_set_observer(self.observe)

    def observe(self, step: int, owner: int, handle: Any) -> None:
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


class _Learner:
    """A learnt scheduling policy: Q-learning over abstract states.

    After "Learning-based controlled concurrency testing" (Mukherjee et al.,
    OOPSLA 2020): every step is rewarded -1, so the value of a choice falls
    the more often it led to states already visited, and the policy
    (softmax over the values) steers each run towards interleavings the
    search has not seen. A state is what each ready callback would do (a
    task's resume site, a callback's name) and the action run before; an
    action is one of those. The table lives for the whole search.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.q: dict[tuple[Any, Any], float] = {}
        #: The (state, action) of the previous decision, valued at the next one.
        self._last: tuple[Any, Any] | None = None
        #: Decisions to replay first (an ``extend`` run's way to new coverage).
        self._prefix: list[int] = []

    def install(self, loop: SeedLoop, prefix: list[int] | None = None) -> None:
        self._prefix = prefix or []
        self._last = None
        loop._engine_set_chooser(self.choose)

    def _update(self, target: float) -> None:
        if self._last is not None:
            old = self.q.get(self._last, 0.0)
            self.q[self._last] = old + _ALPHA * (target - old)

    def choose(self, step: int, ready: list[Any]) -> int:
        """The index of the ready callback to run (the engine asks when two or more are ready)."""
        actions = [_action_of(handle) for handle in ready]
        # Distinct actions in ready order: the choice is among what could
        # happen next, not among equal callbacks.
        distinct = list(dict.fromkeys(actions))
        state = tuple(actions)
        values = [self.q.get((state, action), 0.0) for action in distinct]
        self._update(-1.0 + _GAMMA * max(values))
        if step < len(self._prefix):
            index = min(self._prefix[step], len(ready) - 1)
            self._last = (state, actions[index])
            return index
        top = max(values)
        weights = [math.exp(v - top) for v in values]
        pick = self.rng.random() * sum(weights)
        chosen = distinct[-1]
        for action, weight in zip(distinct, weights, strict=True):
            if pick < weight:
                chosen = action
                break
            pick -= weight
        self._last = (state, chosen)
        matching = [i for i, action in enumerate(actions) if action == chosen]
        return matching[self.rng.randrange(len(matching))] if len(matching) > 1 else matching[0]

    def finish(self) -> None:
        """The run ended: its last decision led nowhere further."""
        self._update(-1.0)
        self._last = None


def _action_of(handle: Any) -> Any:
    """What running a ready callback does, the same in every run: a task
    resuming at its coroutine's site, or a plain callback's function name."""
    callback = handle._callback
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        return _site_of(task)
    return getattr(callback, "__qualname__", None)


@dataclass
class _Search:
    rng: Any
    corpus: list[_Entry] = field(default_factory=list)
    seen: set[Any] = field(default_factory=set)
    stats: GuidedStats = field(default_factory=GuidedStats)

    def learn(self, result: RunResult, observer: _Observer, lines: list[Any]) -> int:
        """Add the run's new coverage to what was seen; return how many features were new."""
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
            self.corpus.append(_Entry(list(result.tape), gain, frontier))
        self.stats.corpus = len(self.corpus)
        self.stats.features = len(self.seen)
        return gain


def runs(
    factory: Factory, seeds: Iterable[int], opts: RunOptions, api: str, stats: GuidedStats
) -> Iterator[tuple[int, RunResult]]:
    """``(position, result)`` of each guided run; one run per seed, in order.

    The seed of each run sets the world's randomness (and a ``pos`` run's
    schedule); the arm choices and the policy's draws
    come from RNGs seeded by the first seed. ``opts`` are the runs' options.
    """
    search: _Search | None = None
    bandit = learner = None
    #: Corpus entries owed an ``extend`` run (their energy).
    pending: list[_Entry] = []
    lines = _Lines()
    try:
        for index, seed in enumerate(iter_seeds(seeds, api)):
            if search is None:
                search = _Search(_engine.Rng(seed, "guided"), stats=stats)
                bandit = _Bandit(random.Random(int(search.rng.below(1 << 62))))
                learner = _Learner(random.Random(int(search.rng.below(1 << 62))))
            assert bandit is not None and learner is not None
            prefix: list[int] | None = None
            if index < _WARMUP:
                arm = _WARMUP_ARMS[index % len(_WARMUP_ARMS)]
            elif pending:
                arm, parent = _EXTEND, pending.pop(0)
                prefix = parent.tape[: parent.frontier + 1]
            else:
                arm = bandit.choose()
            if arm == _EXTEND:
                stats.mutant_runs += 1
            else:
                stats.fresh_runs += 1
            observer = _Observer()
            lines.start()
            try:
                if arm in (_LEARN, _EXTEND):

                    def instrument(
                        loop: SeedLoop,
                        observer: _Observer = observer,
                        learner: _Learner = learner,
                        prefix: list[int] | None = prefix,
                    ) -> None:
                        observer.install(loop)
                        learner.install(loop, prefix)

                    try:
                        result = run_seed(factory, seed, opts, api=api, instrument=instrument)
                    finally:
                        learner.finish()
                else:
                    result = run_seed(
                        factory, seed, opts.with_strategy(arm), api=api, instrument=observer.install
                    )
            finally:
                new_lines = lines.stop()
            gain = search.learn(result, observer, new_lines)
            if gain and index >= _WARMUP:
                # A new entry's energy: go on from where its new coverage appeared.
                pending.extend([search.corpus[-1]] * _ENERGY)
            bandit.reward(arm, gain > 0)
            stats.arms = bandit.table()
            yield index, result
    finally:
        lines.close()
