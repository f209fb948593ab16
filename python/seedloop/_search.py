"""Searching seeds: find_failing_seed, find_seed_where, explore (seeds in, answers out; or schedules enumerated)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import _assertions, _cluster, _guided, _investigate, _parallel, _world
from ._options import (
    DEFAULT_BOUND,
    DEFAULT_MAX_RUNS,
    DEFAULT_STRATEGY,
    SYSTEMATIC,
    RunOptions,
    SystematicOptions,
    check_factory,
    check_jobs,
    check_seeds_arg,
    check_shard,
    iter_seeds,
)
from ._result import Exploration, Failure, RunResult, annotate, failure_from
from ._run import Factory, calibrate, check_not_in_running_loop, run_seed
from ._systematic import explore_systematic
from .errors import InvalidOptionError, InvalidSeedError, NondeterminismError


def _need_seeds(seeds: Iterable[int] | None, api: str) -> Iterable[int]:
    if seeds is None:
        raise InvalidSeedError(
            f"{api}() needs seeds, e.g. range(1000) (only strategy='systematic' enumerates "
            "schedules without them)"
        )
    return seeds


def find_failing_seed(
    factory: Factory,
    seeds: Iterable[int] | None = None,
    *,
    strategy: str = DEFAULT_STRATEGY,
    shrink: bool = True,
    explain: bool = True,
    check_determinism: bool = False,
    jobs: int | None = 1,
    bound: int | None = DEFAULT_BOUND,
    max_runs: int | None = DEFAULT_MAX_RUNS,
    reduction: bool = True,
    backend: Any = None,
    address: str | None = None,
    **options: Any,
) -> Failure | None:
    """The first seed whose run raises, as a :class:`Failure`; None if all pass.

    On a failure the schedule is shrunk (``shrink``) and explained: a
    timeline and whether a real loop can produce it (``explain``).
    ``check_determinism`` runs every seed twice and raises
    NondeterminismError at the first step where the two runs diverge.
    ``jobs`` > 1 (or None/0: one per CPU) shares the seeds among worker
    processes; the answer is the same seed a serial search returns.
    ``backend="dask"`` (with ``address=`` a scheduler's) runs the seeds on a
    Dask cluster instead, with the same answer (see :func:`explore`).

    ``strategy="systematic"`` needs no seeds: it runs every schedule with at
    most ``bound`` preemptions (see :func:`explore`) and returns the first
    failing one (its ``tape`` replays it), or None when none fails.

    ``strategy="guided"`` runs the coverage-guided search (one run per seed,
    in this process). Finding no failure, it warns (NeverSatisfiedWarning)
    about seedloop.sometimes / reachable sites that no run satisfied.
    """
    api = "seedloop.find_failing_seed"
    check_not_in_running_loop(api)
    SystematicOptions.build(api, strategy, bound, max_runs, reduction)
    _cluster.check_backend(backend, address, api)
    if strategy == SYSTEMATIC:
        return explore(
            factory,
            seeds,
            strategy=strategy,
            jobs=jobs,
            check_determinism=check_determinism,
            shrink=shrink,
            explain=explain,
            bound=bound,
            max_runs=max_runs,
            reduction=reduction,
            **options,
        ).failure
    seeds = _need_seeds(seeds, api)
    check_jobs(jobs, 1)
    if strategy == _guided.GUIDED or jobs != 1 or backend is not None:
        # The search explore() runs (guided's, a worker pool's, a cluster's), cut at
        # the first failure.
        summary = explore(
            factory,
            seeds,
            strategy=strategy,
            jobs=jobs,
            backend=backend,
            address=address,
            stop_on_failure=True,
            check_determinism=check_determinism,
            shrink=shrink,
            explain=explain,
            **options,
        )
        if summary.failure is None:
            _assertions.warn_unsatisfied(summary.assertions, api)
        return summary.failure
    check_factory(factory, api)
    opts = calibrate(factory, RunOptions.build(api, strategy, options), api)
    sites: dict[tuple[str, str, str, int], _assertions.Site] = {}
    failure = _first_failure(
        factory, seeds, opts, api, shrink, explain, check_determinism, sites
    )
    if failure is None:
        _assertions.warn_unsatisfied(sites, api)
    return failure


def _first_failure(
    factory: Factory,
    seeds: Iterable[int],
    opts: RunOptions,
    api: str,
    shrink: bool,
    explain: bool,
    check_determinism: bool,
    sites: dict[tuple[str, str, str, int], _assertions.Site] | None = None,
) -> Failure | None:
    """The first failing seed, investigated; ``sites`` collects the runs' assertion sites."""
    with _world.held(opts.world.world):
        for seed in iter_seeds(seeds, api):
            if check_determinism:
                result = _investigate.check_determinism(factory, seed, opts, api=api)
            else:
                result = run_seed(factory, seed, opts, api=api)
            if sites is not None:
                _assertions.merge(sites, result.assertions)
            if result.exception is not None:
                failure = failure_from(result, factory)
                if shrink or explain:
                    _investigate.investigate(factory, failure, opts, shrink=shrink, explain=explain)
                annotate(failure)
                return failure
    return None


def find_seed_where(
    factory: Factory,
    predicate: Callable[[Any], bool],
    seeds: Iterable[int],
    *,
    strategy: str = DEFAULT_STRATEGY,
    **options: Any,
) -> tuple[int, Any] | None:
    """The first ``(seed, result)`` whose result satisfies ``predicate``; None if none does.

    A run that raises is a bug of its own: its exception propagates, annotated
    with the seed that reproduces it.
    """
    api = "seedloop.find_seed_where"
    if not callable(predicate):
        raise InvalidOptionError(
            "seedloop.find_seed_where(factory, predicate, seeds): predicate must be a "
            f"callable taking the run's result, got {predicate!r}"
        )
    check_factory(factory, api)
    opts = calibrate(factory, RunOptions.build(api, strategy, options), api)
    sites: dict[tuple[str, str, str, int], _assertions.Site] = {}
    with _world.held(opts.world.world):
        for seed in iter_seeds(seeds, api):
            result = run_seed(factory, seed, opts, api=api)
            _assertions.merge(sites, result.assertions)
            if result.exception is not None:
                annotate(failure_from(result, factory))
                raise result.exception
            if predicate(result.value):
                return seed, result.value
    _assertions.warn_unsatisfied(sites, api)
    return None


def explore(
    factory: Factory | str,
    seeds: Iterable[int] | None = None,
    *,
    strategy: str = DEFAULT_STRATEGY,
    jobs: int | None = 1,
    stop_on_failure: bool = False,
    check_determinism: bool = False,
    shard: tuple[int, int] | str | None = None,
    progress: _parallel.ProgressCallback | None = None,
    shrink: bool = True,
    explain: bool = True,
    isolate: bool = False,
    bound: int | None = DEFAULT_BOUND,
    max_runs: int | None = DEFAULT_MAX_RUNS,
    reduction: bool = True,
    backend: Any = None,
    address: str | None = None,
    **options: Any,
) -> Exploration:
    """Run ``factory`` under every seed and summarise what happened.

    ``jobs`` worker processes share the seeds (``None`` or 0: one per CPU);
    with ``jobs > 1`` the factory must be importable (a top-level function,
    or a ``"module:function"`` string). ``stop_on_failure`` stops at the
    first failing seed in the given order. ``check_determinism`` runs every
    seed twice and raises NondeterminismError at the first seed whose two runs
    differ. ``shard=(i, n)`` (or ``"i/n"``) runs only the seeds at positions
    ``p % n == i``, for spreading one search over machines. ``shrink`` and
    ``explain`` decide how the reported failure is investigated (as in
    :func:`find_failing_seed`). ``progress(done, total, failed)`` is called as
    seeds finish (``total`` is 0 when ``seeds`` has no length). Remaining
    keyword arguments go to every run (``depth=`` for pct, ``max_steps=`` ...).
    ``isolate`` runs the seeds in a worker process even with ``jobs=1`` (as
    the command line does): a seed that ends its process (a segfault,
    ``os._exit``) is then reported as :class:`WorkerCrashError` naming the
    seed, instead of ending the caller.

    ``backend="dask"`` runs the seeds as tasks on a Dask distributed cluster
    (``pip install seedloop[cluster]``): ``address`` is its scheduler's
    (``"tcp://host:8786"``), or None/``"local"`` for a cluster of ``jobs``
    worker processes on this machine; ``backend`` may also be a
    ``distributed.Client`` (left open). The scenario must be importable on
    the workers by ``module:function``, as for ``jobs > 1``.

    Ctrl-C stops the exploration within a second, workers included; the
    KeyboardInterrupt raised carries the summary of the seeds that finished
    as its ``exploration`` attribute.

    ``strategy="guided"`` is the coverage-guided search: each seed is one
    run (decided by a policy learnt over the search, a fresh ``pos`` run, or
    a tape that reached new coverage extended by the policy), in order and
    in this process (``jobs``, ``shard`` and ``isolate`` do not apply); the
    failure replays from its tape (``Failure.replay_command``).

    The result is the same for every ``jobs``: ``failure`` is the failing seed
    at the smallest position, as a :class:`Failure` built like
    :func:`find_failing_seed` builds it, and the counts cover the seeds a
    serial loop would run.

    ``strategy="systematic"`` needs no seeds: it enumerates schedules, every
    one with at most ``bound`` preemptions (switches of task asyncio would
    not make: the task switched to keeps running until it awaits or has run
    32 steps; None: no bound), in rounds of growing bound, skipping
    schedules that only reorder independent steps of an explored one
    (``reduction``), and stops at the first failure or after ``max_runs``
    runs. The result's ``complete`` says whether every schedule within the
    bound ran. Seeds, if given, only seed the world (``random``, ``uuid``...:
    default 0), each with an exploration of its own. It runs in this process (``jobs``, ``shard``, ``isolate`` and
    ``check_determinism`` do not apply).
    """
    api = "seedloop.explore"
    check_not_in_running_loop(api)
    sys_opts = SystematicOptions.build(api, strategy, bound, max_runs, reduction)
    _cluster.check_backend(backend, address, api)
    if backend is not None and strategy in (SYSTEMATIC, _guided.GUIDED):
        raise InvalidOptionError(
            f"{api}(strategy={strategy!r}): backend= does not apply (each run depends on the "
            "runs before it, so they run in this process); use a per-seed strategy on a cluster"
        )
    if strategy == SYSTEMATIC:
        return _explore_systematic(
            factory,
            seeds,
            sys_opts,
            jobs=jobs,
            shard=shard,
            isolate=isolate,
            check_determinism=check_determinism,
            progress=progress,
            shrink=shrink,
            explain=explain,
            options=options,
        )
    seeds = _need_seeds(seeds, api)
    started = time.perf_counter()
    if strategy == _guided.GUIDED:
        if shard is not None or check_determinism:
            raise InvalidOptionError(
                f"{api}(strategy='guided'): shard= and check_determinism= do not apply (each "
                "guided run depends on the runs before it); run a per-step strategy for those"
            )
        if isinstance(factory, str):
            factory = _parallel.resolve_factory(factory)
        check_factory(factory, api)
        check_seeds_arg(seeds, api)
        summary = _explore_guided(
            factory, seeds, RunOptions.build(api, "random", options), api,
            stop_on_failure, progress, shrink, explain,
        )
        summary.elapsed = time.perf_counter() - started
        return summary
    opts = RunOptions.build(api, strategy, options)
    check_seeds_arg(seeds, api)
    shard = check_shard(shard) if shard is not None else None
    jobs = check_jobs(jobs, os.cpu_count() or 1)
    if not isinstance(isolate, bool):
        raise InvalidOptionError(f"{api}(): isolate must be True or False, got {isolate!r}")
    spec = None
    if isinstance(factory, str):
        spec = factory
        factory = _parallel.resolve_factory(factory)
    elif backend is not None:
        spec = _cluster.cluster_spec(factory)
    elif jobs > 1 or isolate:
        spec = _parallel.factory_spec(factory)
    check_factory(factory, api)
    opts = calibrate(factory, opts, api)
    if backend is not None:
        summary = _cluster.explore_on_cluster(
            backend,
            address,
            spec or factory,
            seeds,
            opts,
            jobs=jobs,
            shard=shard,
            stop_on_failure=stop_on_failure,
            check_determinism=check_determinism,
            progress=progress,
        )
    else:
        summary = _parallel.run_seeds(
            factory,
            spec,
            seeds,
            opts,
            jobs=jobs,
            shard=shard,
            stop_on_failure=stop_on_failure,
            check_determinism=check_determinism,
            progress=progress,
            isolate=isolate,
        )
    if summary.interrupted:
        # Stop now: investigating a failure could take long; the failing
        # seeds found so far are in the summary.
        summary.elapsed = time.perf_counter() - started
        interrupt = KeyboardInterrupt(
            f"{api}() interrupted after {summary.seeds_run} seed(s), "
            f"{summary.failures} failing"
        )
        interrupt.exploration = summary  # type: ignore[attr-defined]
        raise interrupt
    if summary.failure_index is not None:
        seed = dict(summary.failing_seeds)[summary.failure_index]
        failure = _first_failure(factory, [seed], opts, api, shrink, explain, False)
        if failure is None:
            raise NondeterminismError(
                f"seed {seed} (strategy {opts.strategy}) failed in a worker process but passes "
                "when rerun in this one: the scenario depends on something outside seedloop's "
                "control (real time, os.environ, hash order of str sets, state left by another "
                "run); run it twice with seedloop.execute(...) and compare the fingerprints"
            )
        summary.failure = failure
    summary.elapsed = time.perf_counter() - started
    return summary


def _explore_systematic(
    factory: Factory | str,
    seeds: Iterable[int] | None,
    sys_opts: SystematicOptions,
    *,
    jobs: int | None,
    shard: object,
    isolate: object,
    check_determinism: object,
    progress: _parallel.ProgressCallback | None,
    shrink: bool,
    explain: bool,
    options: dict[str, Any],
) -> Exploration:
    api = "seedloop.explore"
    # Seeds are optional here: they only seed the world (random, uuid...);
    # each one gets every schedule within the bound.
    world_seeds = [0] if seeds is None else list(iter_seeds(seeds, api))
    unsupported = [
        name
        for name, value, default in (
            ("jobs", jobs, 1),
            ("shard", shard, None),
            ("isolate", isolate, False),
            ("check_determinism", check_determinism, False),
        )
        if value != default
    ]
    if unsupported:
        raise InvalidOptionError(
            f"{api}(strategy='systematic') runs its schedules one after another in this "
            f"process: {', '.join(unsupported)} do(es) not apply; leave them out"
        )
    opts = RunOptions.build(api, "fifo", options)
    if isinstance(factory, str):
        factory = _parallel.resolve_factory(factory)
    check_factory(factory, api)
    return explore_systematic(
        factory,
        opts,
        sys_opts,
        api=api,
        shrink=shrink,
        explain=explain,
        world_seeds=world_seeds,
        progress=progress,
    )


def _explore_guided(
    factory: Factory,
    seeds: Iterable[int],
    opts: RunOptions,
    api: str,
    stop_on_failure: bool,
    progress: _parallel.ProgressCallback | None,
    shrink: bool,
    explain: bool,
) -> Exploration:
    """strategy="guided": one process, runs in order (each depends on the ones before)."""
    stats = _guided.GuidedStats()
    summary = Exploration(strategy=_guided.GUIDED, options=opts.kwargs, guided=stats)
    fingerprints: set[str] = set()
    total = len(seeds) if hasattr(seeds, "__len__") else 0  # type: ignore[arg-type]
    first: RunResult | None = None
    with _world.held(opts.world.world):
        for index, result in _guided.runs(factory, seeds, opts, api, stats):
            summary.seeds_run += 1
            summary.outcomes[_parallel.outcome_of(result)] += 1
            fingerprints.add(result.fingerprint)
            _assertions.merge(summary.assertions, result.assertions)
            if result.exception is not None:
                summary.failures += 1
                if len(summary.failing_seeds) < _parallel.MAX_FAILING_SEEDS:
                    summary.failing_seeds.append((index, result.seed))
                if first is None:
                    first, summary.failure_index = result, index
            if progress is not None:
                progress(summary.seeds_run, total, summary.failures)
            if first is not None and stop_on_failure:
                summary.stopped_early = True
                break
    summary.interleavings = len(fingerprints)
    if first is not None:
        failure = failure_from(first, factory)
        failure.strategy = _guided.GUIDED
        if shrink or explain:
            _investigate.investigate(factory, failure, opts, shrink=shrink, explain=explain)
        annotate(failure)
        summary.failure = failure
    return summary
