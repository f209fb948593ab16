"""Runs an exploration's seeds on a Dask distributed cluster and merges them in seed order.

The optional ``distributed`` package (``pip install seedloop[cluster]``) is
imported only when a cluster is asked for. The seed order is cut into
chunks exactly as for local worker processes (``_parallel``); each chunk is
one Dask task, which imports the scenario on its worker by name
(``module:function``, never a pickled closure), runs the chunk's seeds and
sends back one summary. The parent folds the summaries in seed order, so
the counts, the first failing seed and the failing seeds equal a serial
run's; after a failure (with ``stop_on_failure``) the tasks for later seeds
are cancelled.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from typing import Any

from . import _parallel
from ._options import RunOptions
from ._parallel import Chunk, ChunkResult, Feeder, Merger, Mode
from ._result import Exploration
from ._run import Factory
from .errors import ClusterError, InvalidOptionError, WorkerCrashError

#: Run time a chunk (one task) should hold: a Dask task costs about a
#: millisecond of scheduling, so chunks are longer than for local workers.
CHUNK_SECONDS = 0.2
#: Seconds to wait for the scheduler named by ``address`` to answer.
CONNECT_TIMEOUT = 10.0
#: ``backend=`` values naming Dask (a ``distributed.Client`` is accepted too).
BACKENDS = ("dask",)
_WHO = "exploration on a cluster imports the scenario on the cluster's workers"
_INSTEAD = "explore without a cluster (jobs=N runs on this machine)"

# Worker side: the scenario of each spec, imported once per worker process.
_factories: dict[str, Factory] = {}


def run_task(spec: str, chunk: Chunk, opts: RunOptions, mode: Mode) -> ChunkResult:
    """One Dask task: the chunk's seeds run on this worker, summarised."""
    factory = _factories.get(spec)
    if factory is None:
        factory = _factories[spec] = _parallel.resolve_factory(spec)
    return _parallel.run_chunk(factory, chunk, opts, mode)


def check_backend(backend: object, address: object, api: str) -> None:
    """``backend`` is None, ``"dask"`` or a Client; ``address`` a string or None."""
    if backend is None:
        if address is not None:
            raise InvalidOptionError(
                f"{api}(): address= names a cluster's scheduler; pass backend='dask' with it"
            )
        return
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise InvalidOptionError(
                f"{api}(): backend must be 'dask' (or a distributed.Client), got {backend!r}"
            )
    elif not hasattr(backend, "submit") or not hasattr(backend, "nthreads"):
        raise InvalidOptionError(
            f"{api}(): backend must be 'dask' or a distributed.Client, got "
            f"{type(backend).__name__}"
        )
    elif address is not None:
        raise InvalidOptionError(f"{api}(): address= is for backend='dask'; the Client has one")
    if address is not None and not isinstance(address, str):
        raise InvalidOptionError(
            f"{api}(): address must be a scheduler address like 'tcp://10.0.0.5:8786', "
            f"got {address!r}"
        )


def cluster_spec(factory: Factory | str) -> str:
    """The name workers import the scenario by; a script's ``__main__`` becomes its path."""
    spec = _parallel.factory_spec(factory, user=_WHO, instead=_INSTEAD)
    module, _, qualname = spec.partition(":")
    if module == "__main__":
        # The workers' own __main__ is the dask worker: name the file instead
        # (a real cluster must see it at the same path, e.g. a shared disk).
        path = os.path.abspath(sys.modules["__main__"].__file__ or "")
        spec = f"{path}:{qualname}"
    return spec


def _distributed() -> Any:
    try:
        import distributed  # noqa: PLC0415 - optional: only a cluster run needs it
    except ImportError:
        raise ClusterError(
            "exploring on a cluster needs Dask distributed, which is not installed: "
            "pip install 'seedloop[cluster]' (or pip install distributed)"
        ) from None
    return distributed


def connect(backend: Any, address: str | None, jobs: int) -> tuple[Any, bool]:
    """The Client to use and whether this call owns it (and must close it)."""
    if not isinstance(backend, str):
        return backend, False
    distributed = _distributed()
    try:
        if address in (None, "local"):
            # A cluster on this machine, one single-threaded worker process per job.
            cluster = distributed.LocalCluster(
                n_workers=jobs, threads_per_worker=1, dashboard_address=None
            )
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address!r} ({exc}); start one with "
            "'dask scheduler' and workers with 'dask worker ADDRESS', and pass the address "
            "it prints (tcp://HOST:8786)"
        ) from None
    return client, True


def run_seeds(
    client: Any,
    spec: str,
    feeder: Feeder,
    opts: RunOptions,
    mode: Mode,
    merger: Merger,
    progress: _parallel.ProgressCallback | None,
    total: int,
) -> None:
    """Submit the chunks as tasks, a window at a time, and merge them in seed order."""
    distributed = _distributed()
    # Two tasks per worker thread (feeder.jobs: the cluster's threads): one
    # running, one waiting to start.
    window = 2 * feeder.jobs
    lookahead = max(window * 8, 64)
    cutoff = 2**62  # smallest failing position seen (stop_on_failure)
    in_flight: dict[Any, Chunk] = {}
    finished = distributed.as_completed()
    done = failed = 0
    try:
        while True:
            while (chunk := feeder.to_submit(
                len(in_flight), window, merger.next_number, lookahead, cutoff
            )) is not None:
                fut = client.submit(run_task, spec, chunk, opts, mode, pure=False)
                in_flight[fut] = chunk
                finished.add(fut)
            if not in_flight:
                break
            fut = next(finished)
            chunk = in_flight.pop(fut, None)
            if chunk is None:
                continue  # cancelled after a failure at a smaller position
            result = _result_of(fut, chunk, spec, opts)
            feeder.measured(result)
            merger.add(result)
            done += result.ran
            failed += result.failures
            if progress is not None:
                progress(done, total, failed)
            if merger.done:
                break
            if mode.stop_on_failure and result.failing:
                cutoff = min(cutoff, result.failing[0][0])
                later = [f for f, c in in_flight.items() if c.start > cutoff]
                for f in later:
                    in_flight.pop(f)
                client.cancel(later)
    except KeyboardInterrupt:
        merger.flush()
    finally:
        if in_flight:
            client.cancel(list(in_flight))


def _result_of(fut: Any, chunk: Chunk, spec: str, opts: RunOptions) -> ChunkResult:
    try:
        result: ChunkResult = fut.result()
    except Exception as exc:
        if type(exc).__name__ != "KilledWorker":
            raise  # the task's own error (a scenario that will not import ...), as raised
        first = chunk.seeds[0]
        last = chunk.seeds[-1]
        raise WorkerCrashError(
            f"Dask workers died running the chunk of seeds {first}..{last} (positions "
            f"{chunk.start}.., strategy {opts.strategy}) several times over: one of those "
            "seeds ends its process (a segfault, os._exit); find it on one machine with "
            f"seedloop explore {spec} --seeds {first}:{last + 1} --strategy {opts.strategy} "
            "(which names the seed)"
        ) from None
    return result


def explore_on_cluster(
    backend: Any,
    address: str | None,
    factory: Factory | str,
    seeds: Iterable[int],
    opts: RunOptions,
    *,
    jobs: int,
    shard: tuple[int, int] | None,
    stop_on_failure: bool,
    check_determinism: bool,
    progress: _parallel.ProgressCallback | None,
) -> Exploration:
    """Every seed (of the shard) run on the cluster; the summary, without a Failure."""
    spec = cluster_spec(factory)
    _parallel.check_picklable(opts, "exploration on a cluster", _INSTEAD)
    client, owned = connect(backend, address, jobs)
    started = time.perf_counter()
    try:
        threads = max(1, sum(client.nthreads().values()))
        summary = Exploration(
            strategy=opts.strategy, options=opts.kwargs, jobs=threads, shard=shard
        )
        merger = Merger(summary, stop_on_failure)
        total = _parallel.total_of(seeds, shard)
        feeder = Feeder(
            _parallel.positions(seeds, shard), shard[1] if shard else 1, total, threads
        )
        feeder.chunk_seconds = CHUNK_SECONDS
        feeder.tail_seconds = CHUNK_SECONDS / 10
        mode = Mode(stop_on_failure, check_determinism)
        run_seeds(client, spec, feeder, opts, mode, merger, progress, total)
    finally:
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    summary.elapsed = time.perf_counter() - started
    return summary
