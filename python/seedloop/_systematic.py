"""Systematic exploration: run every schedule within a preemption bound, as the engine's explorer plans them.

The enumeration itself (depth-first search over decision tapes, the bound,
sleep sets) is the engine's ``Explorer``; this module runs the scenario once
per plan, hands each run's record back, and builds the Exploration.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from . import _engine, _investigate, _world
from ._options import SYSTEMATIC, RunOptions, SystematicOptions
from ._parallel import ProgressCallback
from ._result import Exploration, annotate, failure_from
from ._run import Factory, run_seed
from .errors import NondeterminismError

#: The world's seed when none is given: the schedule is what varies.
WORLD_SEED = 0


def explore_systematic(
    factory: Factory,
    opts: RunOptions,
    sys_opts: SystematicOptions,
    *,
    api: str,
    shrink: bool,
    explain: bool,
    world_seeds: Sequence[int] = (WORLD_SEED,),
    progress: ProgressCallback | None = None,
) -> Exploration:
    """Run the scenario under each schedule the explorer plans, until a failure,
    the end of the space within the bound, or ``max_runs`` runs in all.

    Each of ``world_seeds`` (what ``random``, ``uuid``... draw in the
    world) gets an exploration of its own, one after the other.
    """
    started = time.perf_counter()
    summary = Exploration(strategy=SYSTEMATIC, options=opts.kwargs, bound=sys_opts.bound)
    outcomes: Counter[str] = Counter()
    runs = stopped = schedules = interleavings = 0
    capped = False
    complete = True
    exhaustive = True
    with _world.held(opts.world.world):
        for seed in world_seeds:
            explorer = _engine.Explorer(sys_opts.bound, sys_opts.reduction)
            while True:
                plan = explorer.next_plan()
                if plan is None:
                    break
                if sys_opts.max_runs is not None and runs >= sys_opts.max_runs:
                    capped = True  # a schedule is left: the exploration is not complete
                    break
                runs += 1
                result = run_seed(factory, seed, opts, api=api, walk=plan)
                if result.walk.diverged_at is not None:
                    raise NondeterminismError(
                        "systematic exploration: replaying a recorded schedule ran another "
                        f"callback at step {result.walk.diverged_at} than the run that recorded "
                        "it: the scenario depends on something outside seedloop's control (real "
                        "time, threads, os.environ, hash order of str sets, state left by an "
                        "earlier run); check with find_failing_seed(..., check_determinism=True)"
                    )
                explorer.report(result.walk)
                if progress is not None:
                    progress(runs, 0, summary.failures)
                if result.walk.stopped is not None:
                    continue  # covered by an explored schedule, or over the bound
                schedules += 1
                outcomes[_investigate.outcome(result)] += 1
                if result.exception is not None:
                    failure = failure_from(result, factory)
                    if shrink or explain:
                        _investigate.investigate(
                            factory, failure, opts, shrink=shrink, explain=explain
                        )
                    annotate(failure)
                    summary.failure = failure
                    summary.failures = 1
                    summary.failure_index = schedules - 1
                    summary.failing_seeds = [(schedules - 1, seed)]
                    summary.stopped_early = True
                    break
            stopped += explorer.stopped
            interleavings += explorer.interleavings
            summary.round_bound = explorer.bound
            complete = complete and explorer.done
            exhaustive = exhaustive and explorer.exhaustive
            if summary.failure is not None or capped:
                break
    summary.seeds_run = runs
    summary.world_seeds = len(world_seeds)
    summary.runs_stopped = stopped
    summary.schedules = schedules
    summary.outcomes = outcomes
    summary.interleavings = interleavings
    summary.complete = summary.failure is None and not capped and complete
    summary.exhaustive = summary.complete and exhaustive
    summary.max_runs = sys_opts.max_runs
    summary.elapsed = time.perf_counter() - started
    return summary
