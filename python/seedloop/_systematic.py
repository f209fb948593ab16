"""Systematic exploration: run every schedule within a preemption bound, as the engine's explorer plans them.

The enumeration itself (depth-first search over decision tapes, the bound,
sleep sets) is the engine's ``Explorer``; this module runs the scenario once
per plan, hands each run's record back, and builds the Exploration.
"""

from __future__ import annotations

import time
from collections import Counter

from . import _engine, _investigate, _world
from ._options import SYSTEMATIC, RunOptions, SystematicOptions
from ._parallel import ProgressCallback
from ._result import Exploration, annotate, failure_from
from ._run import Factory, run_seed
from .errors import NondeterminismError

#: Systematic runs use one world seed: the schedule is what varies.
WORLD_SEED = 0


def explore_systematic(
    factory: Factory,
    opts: RunOptions,
    sys_opts: SystematicOptions,
    *,
    api: str,
    shrink: bool,
    explain: bool,
    progress: ProgressCallback | None = None,
) -> Exploration:
    """Run the scenario under each schedule the explorer plans, until a failure,
    the end of the space within the bound, or ``max_runs``."""
    started = time.perf_counter()
    explorer = _engine.Explorer(sys_opts.bound, sys_opts.reduction)
    summary = Exploration(strategy=SYSTEMATIC, options=opts.kwargs, bound=sys_opts.bound)
    outcomes: Counter[str] = Counter()
    schedules = 0
    capped = False
    with _world.held(opts.world.world):
        while True:
            plan = explorer.next_plan()
            if plan is None:
                break
            if sys_opts.max_runs is not None and explorer.runs > sys_opts.max_runs:
                capped = True  # a schedule is left: the exploration is not complete
                break
            result = run_seed(factory, WORLD_SEED, opts, api=api, walk=plan)
            if result.walk.diverged_at is not None:
                raise NondeterminismError(
                    f"systematic exploration: replaying a recorded schedule ran another callback "
                    f"at step {result.walk.diverged_at} than the run that recorded it: the scenario "
                    "depends on something outside seedloop's control (real time, threads, "
                    "os.environ, hash order of str sets, state left by an earlier run); check "
                    "with find_failing_seed(..., check_determinism=True)"
                )
            explorer.report(result.walk)
            if progress is not None:
                progress(explorer.runs, 0, summary.failures)
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
                summary.failing_seeds = [(schedules - 1, WORLD_SEED)]
                summary.stopped_early = True
                break
    summary.seeds_run = explorer.runs - int(capped)
    summary.runs_stopped = explorer.stopped
    summary.schedules = schedules
    summary.outcomes = outcomes
    summary.interleavings = explorer.interleavings
    summary.round_bound = explorer.bound
    summary.complete = summary.failure is None and not capped and explorer.done
    summary.exhaustive = summary.complete and explorer.exhaustive
    summary.max_runs = sys_opts.max_runs
    summary.elapsed = time.perf_counter() - started
    return summary
