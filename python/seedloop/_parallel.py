"""Runs many seeds, on one core or all of them, and merges the results in seed order.

The answer never depends on ``jobs`` or on how the work was shared out:

* the seeds are cut into contiguous chunks, in the order given; worker
  processes take chunks as they become free, and the parent merges the chunk
  results back *in seed order*, so the summary (and with ``stop_on_failure``
  the set of seeds counted) is exactly what a serial loop over the same seeds
  produces;
* the failure position reported is the smallest in the given order, even
  when a later chunk fails first;
* each run depends on its seed and its (already calibrated) options alone.

``shard=(i, n)`` keeps the seeds at positions ``p`` with ``p % n == i``: n
machines running shards 0..n-1 of the same seed list cover it exactly once,
and the smallest ``failure_index`` among them is the serial answer.

This module never investigates a failure: the search above it does.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from . import _assertions, _world
from ._options import RunOptions, check_seed
from ._result import Exploration, RunResult
from ._run import Factory, run_seed
from .errors import (
    InvalidFactoryError,
    InvalidSeedError,
    NondeterminismError,
    WorkerCrashError,
)

#: How many distinct outcomes are counted one by one; the rest go to "(other)".
MAX_OUTCOMES = 1000
#: How many failing seeds ``Exploration.failing_seeds`` keeps (``failures`` counts all).
MAX_FAILING_SEEDS = 1000
_OTHER = "(other outcomes)"
_OUTCOME_WIDTH = 200

ProgressCallback = Callable[[int, int, int], None]
_API = "seedloop.explore"
#: After Ctrl-C, how long running chunks may take to hand back the seeds they
#: finished before their workers are killed (the whole stop stays under 1 s).
INTERRUPT_GRACE = 0.4
#: Run time a chunk should hold once the per-seed time is measured. Each
#: chunk costs about 0.5 ms of CPU (the parent's pool threads, the worker's
#: world held and released, two messages), which on a machine with one core
#: per worker comes out of the runs: 0.2 s makes that 0.25%. Chunk size does
#: not delay Ctrl-C or a failure's cut-off (both are read between seeds), and
#: the end of a known total is cut finer (TAIL_SECONDS), so the workers still
#: finish together.
CHUNK_SECONDS = 0.2
#: The smallest chunk near the end of a known total, in run time: how far
#: apart the workers may finish.
TAIL_SECONDS = 0.005
#: Seeds in the first chunks, sent before any run time is measured.
FIRST_CHUNK = 16
MAX_CHUNK = 1 << 16
#: How worker processes start: None chooses (fork on Linux when this process
#: runs no other thread, spawn elsewhere); "fork" or "spawn" forces one.
START_METHOD: str | None = None


# -- naming factories so other processes can import them --------------------


def factory_spec(
    factory: Factory | str,
    *,
    user: str = "parallel exploration (jobs > 1) imports the scenario in worker processes",
    instead: str = "use jobs=1",
) -> str:
    """``module:qualname`` naming ``factory``; raises InvalidFactoryError if none does.

    ``user`` says who needs the name, ``instead`` what works without one.
    """
    if isinstance(factory, str):
        resolve_factory(factory)  # fail here, with the reason, not in a worker
        return factory
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise InvalidFactoryError(
            f"{user}, but {qualname or factory!r} is not importable by name (a lambda or a "
            f"function defined inside another function); define it at module top level, "
            f"or {instead}"
        )
    spec = f"{module}:{qualname}"
    main = sys.modules.get("__main__")
    if module == "__main__" and not getattr(main, "__file__", None):
        raise InvalidFactoryError(
            f"{user}, but {qualname} was defined in an interactive session or with python -c, "
            "which they cannot import; put it in a module (or a script run as "
            f"python script.py), or {instead}"
        )
    try:
        found = resolve_factory(spec)
    except InvalidFactoryError:
        found = None
    if found is not factory:
        raise InvalidFactoryError(
            f"{user} as {spec!r}, but that name does not lead back to this function; define "
            f"it at module top level under its own name, or {instead}"
        )
    return spec


def resolve_factory(spec: str) -> Factory:
    """Import ``module:qualname`` (or ``path/to/file.py:qualname``) and return it."""
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise InvalidFactoryError(
            f"a scenario is named 'module:function' (e.g. 'examples.demo:scenario'), got {spec!r}"
        )
    module = _import_module(module_name, spec)
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidFactoryError(
                f"cannot find {qualname!r} in {module_name!r} (looking up {part!r}); "
                "check the spelling of 'module:function'"
            ) from None
    if not callable(obj):
        raise InvalidFactoryError(f"{spec!r} is a {type(obj).__name__}, not an async function")
    return obj  # type: ignore[no-any-return]


def _import_module(name: str, spec: str) -> Any:
    if name == "__main__" and "__mp_main__" in sys.modules:
        return sys.modules["__mp_main__"]
    if name.endswith(".py") or os.sep in name or "/" in name:
        path = os.path.abspath(name)
        if not os.path.isfile(path):
            raise InvalidFactoryError(f"no such file {name!r} (from scenario {spec!r})")
        mod_name = "_seedloop_file_" + os.path.splitext(os.path.basename(path))[0]
        if mod_name in sys.modules and getattr(sys.modules[mod_name], "__file__", "") == path:
            return sys.modules[mod_name]
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise InvalidFactoryError(f"cannot load {name!r} as Python source")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        loader_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise InvalidFactoryError(
            f"cannot import module {name!r} for scenario {spec!r}: {exc}; run from the "
            "directory that contains it, add it to PYTHONPATH, or name a file: "
            "path/to/file.py:function"
        ) from exc


# -- one run, one chunk ------------------------------------------------------


def outcome_of(result: RunResult) -> str:
    """A short text saying how a run ended, used to count distinct outcomes."""
    if result.exception is not None:
        text = f"raised {type(result.exception).__name__}: {result.exception}"
    else:
        try:
            text = repr(result.value)
        except Exception as exc:  # a broken __repr__ is still an outcome
            text = f"<unrepresentable {type(result.value).__name__}: {exc!r}>"
    text = " ".join(text.split())
    return text if len(text) <= _OUTCOME_WIDTH else text[: _OUTCOME_WIDTH - 3] + "..."


@dataclass
class Chunk:
    number: int
    start: int  # position of the first seed in the whole order
    stride: int  # distance between the positions of consecutive seeds (the shard count)
    seeds: Sequence[int]  # a list, or a range slice (a few bytes to send)


@dataclass(frozen=True)
class Mode:
    stop_on_failure: bool = False
    check_determinism: bool = False


@dataclass
class ChunkResult:
    number: int
    ran: int = 0
    failing: list[tuple[int, int]] = field(default_factory=list)
    failures: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    fingerprints: set[str] = field(default_factory=set)
    #: ``(position, seed, fingerprint, fingerprint of the second run)`` that differed.
    diverged: list[tuple[int, int, str, str]] = field(default_factory=list)
    #: Ctrl-C stopped the chunk: ``ran`` counts the seeds finished before it.
    interrupted: bool = False
    #: Assertion sites evaluated by the chunk's runs, summed.
    assertions: dict[tuple[str, str, str, int], list[int]] = field(default_factory=dict)
    #: Seconds the chunk's runs took in the worker: sizes the next chunks.
    elapsed: float = 0.0


class Shared:
    """The cells the parent and its workers share: the failure cut-off (the
    smallest failing position seen), a counter numbering the workers, and
    per worker ``pid, position, seed`` (position -1 while idle).

    One buffer from multiprocessing's shared heap, read and written as
    memoryviews (``cells`` signed, ``seeds`` the same bytes unsigned: seeds
    go up to 2**64-1), and one lock. No ctypes: importing it (for
    ``Value``/``Array``) cost ~3 ms before the first worker could start, and
    a memoryview store is a third of a ctypes item access.
    """

    _CUTOFF, _COUNTER, _SLOTS = 0, 1, 2

    def __init__(self, ctx: Any, jobs: int) -> None:
        from multiprocessing import heap  # only searches with workers need it

        self.jobs = jobs
        self.buffer = heap.BufferWrapper(8 * (self._SLOTS + 3 * jobs))
        self.lock = ctx.Lock()
        self._views()
        self.cells[self._CUTOFF] = 2**62
        self.cells[self._COUNTER] = 0
        for number in range(jobs):  # a heap block may be reused: not zeroed
            base = self.slot(number)
            self.cells[base] = self.cells[base + 2] = 0
            self.cells[base + 1] = -1

    def _views(self) -> None:
        raw = self.buffer.create_memoryview().cast("B")
        self.cells = raw.cast("q")
        self.seeds = raw.cast("Q")

    def __getstate__(self) -> tuple[Any, Any, int]:
        return self.buffer, self.lock, self.jobs  # a spawned worker maps the same buffer

    def __setstate__(self, state: tuple[Any, Any, int]) -> None:
        self.buffer, self.lock, self.jobs = state
        self._views()

    @property
    def cutoff(self) -> int:
        return self.cells[self._CUTOFF]

    def lower_cutoff(self, index: int) -> None:
        with self.lock:
            if index < self.cells[self._CUTOFF]:
                self.cells[self._CUTOFF] = index

    def claim(self) -> int:
        """A number for the calling worker, and its cell."""
        with self.lock:
            number = self.cells[self._COUNTER]
            self.cells[self._COUNTER] = number + 1
        self.cells[self.slot(number)] = os.getpid()
        return number

    def slot(self, number: int) -> int:
        """Index of worker ``number``'s pid cell (position and seed follow)."""
        return self._SLOTS + 3 * number

    def running(self) -> dict[int, tuple[int, int]]:
        """pid -> (position, seed) of every worker that claimed a cell."""
        found = {}
        for number in range(self.jobs):
            base = self.slot(number)
            found[self.cells[base]] = (self.cells[base + 1], self.seeds[base + 2])
        return found


class _Slot:
    """This worker's cell: it writes the seed it is about to run, so when the
    process dies (a segfault, ``os._exit``) the parent still knows which seed
    killed it."""

    def __init__(self, shared: Shared, number: int) -> None:
        self.cells = shared.cells
        self.seeds = shared.seeds
        self.base = shared.slot(number)


def run_chunk(
    factory: Factory,
    chunk: Chunk,
    opts: RunOptions,
    mode: Mode,
    cutoff: Shared | None = None,
    slot: _Slot | None = None,
) -> ChunkResult:
    out = ChunkResult(chunk.number)
    started = time.perf_counter()
    # Keep the deterministic world's patches across the chunk: each run then
    # only swaps its own world in and out.
    try:
        with _world.held(opts.world.world):
            _run_chunk_seeds(factory, chunk, opts, mode, cutoff, slot, out)
    except KeyboardInterrupt:
        # Ctrl-C in this process: hand back the seeds that finished.
        out.interrupted = True
    out.elapsed = time.perf_counter() - started
    return out


def _run_chunk_seeds(
    factory: Factory,
    chunk: Chunk,
    opts: RunOptions,
    mode: Mode,
    cutoff: Shared | None,
    slot: _Slot | None,
    out: ChunkResult,
) -> None:
    cells, seeds, base = (slot.cells, slot.seeds, slot.base) if slot else (None, None, 0)
    for offset, seed in enumerate(chunk.seeds):
        index = chunk.start + offset * chunk.stride
        if _interrupted:
            out.interrupted = True  # Ctrl-C reached this worker: stop between seeds
            return
        if cutoff is not None and index > cutoff.cutoff:
            return  # another worker already failed at a smaller position
        if cells is not None:
            seeds[base + 2] = seed  # type: ignore[index]
            cells[base + 1] = index
        result = run_seed(factory, seed, opts, api=_API)
        if mode.check_determinism:
            again = run_seed(factory, seed, opts, api=_API)
            if again.fingerprint != result.fingerprint:
                out.diverged.append((index, seed, result.fingerprint, again.fingerprint))
                return
        if cells is not None:
            cells[base + 1] = -1
        out.ran += 1
        out.outcomes[outcome_of(result)] += 1
        out.fingerprints.add(result.fingerprint)
        for key, (evaluations, satisfied) in result.assertions.items():
            stats = out.assertions.setdefault(key, [0, 0])
            stats[0] += evaluations
            stats[1] += satisfied
        if result.exception is not None:
            out.failures += 1
            if len(out.failing) < MAX_FAILING_SEEDS:
                out.failing.append((index, seed))
            if mode.stop_on_failure:
                if cutoff is not None:
                    cutoff.lower_cutoff(index)
                return


# Worker-process state, set once by the pool initializer: a chunk's message
# then carries only its seeds.
_worker_factory: Factory | None = None
_worker_cutoff: Shared | None = None
_worker_slot: _Slot | None = None
_worker_opts: RunOptions | None = None
_worker_mode = Mode()
#: Set by SIGINT in a worker: finish the current seed, then hand back the chunk.
_interrupted = False


def _on_sigint(signum: int, frame: Any) -> None:
    global _interrupted
    _interrupted = True


def _worker_init(spec: str, shared: Shared, opts: RunOptions, mode: Mode) -> None:
    global _worker_factory, _worker_cutoff, _worker_slot, _worker_opts, _worker_mode
    # Ctrl-C must not raise inside a scenario (user code may swallow it, and
    # the chunk's finished seeds would be lost): a flag checked between seeds.
    signal.signal(signal.SIGINT, _on_sigint)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _worker_slot = _Slot(shared, shared.claim())
    _worker_factory = resolve_factory(spec)
    # Only a search that stops at the first failure reads the shared cut-off.
    _worker_cutoff = shared if mode.stop_on_failure else None
    _worker_opts = opts
    _worker_mode = mode


def _worker_run_chunk(chunk: Chunk) -> ChunkResult:
    assert _worker_factory is not None and _worker_opts is not None
    return run_chunk(
        _worker_factory, chunk, _worker_opts, _worker_mode, _worker_cutoff, _worker_slot
    )


# -- the exploration ---------------------------------------------------------


def positions(
    seeds: Iterable[int], shard: tuple[int, int] | None
) -> Iterator[tuple[int, int]]:
    """``(position, seed)`` of the shard's seeds, checked; InvalidSeedError if none.

    A ``range`` whose seeds are all valid comes back as :class:`RangePositions`,
    which the :class:`Feeder` cuts into range slices: no per-seed check, no list.
    """
    if type(seeds) is range:
        part = seeds[shard[0] :: shard[1]] if shard is not None else seeds
        # A range is monotonic: its two ends bound every seed in it.
        if part and _valid(part[0]) and _valid(part[-1]):
            return RangePositions(part, shard or (0, 1))
    return _checked_positions(seeds, shard)


def _valid(seed: int) -> bool:
    try:
        check_seed(seed)
    except InvalidSeedError:
        return False
    return True


def _checked_positions(
    seeds: Iterable[int], shard: tuple[int, int] | None
) -> Iterator[tuple[int, int]]:
    any_seed = False
    for index, seed in enumerate(seeds):
        if shard is not None and index % shard[1] != shard[0]:
            continue
        any_seed = True
        yield index, check_seed(seed)
    if not any_seed:
        raise InvalidSeedError("seedloop.explore(): no seeds to run; pass e.g. range(1000)")


class RangePositions:
    """The shard's seeds as a range of valid seeds (``seeds[k]`` is at position
    ``first + k * stride``); iterates like the checked generator, and the
    Feeder takes slices of it instead."""

    def __init__(self, seeds: range, shard: tuple[int, int]) -> None:
        self.seeds = seeds
        self.first, self.stride = shard
        self.taken = 0  # seeds handed out so far, by iteration or slices

    def __iter__(self) -> RangePositions:
        return self

    def __next__(self) -> tuple[int, int]:
        start, piece = self.take(1)
        if not piece:
            raise StopIteration
        return start, piece[0]

    def take(self, size: int) -> tuple[int, range]:
        """The next ``size`` seeds (fewer at the end) and the position of the first."""
        # Slices, never len(): range(2**64) has more seeds than len() can count.
        k = self.taken
        piece = self.seeds[k : k + size]
        self.taken = k + len(piece)
        return self.first + k * self.stride, piece


class Feeder:
    """Cuts the seed positions into chunks, in order, sized from the measured run time.

    The first chunks hold FIRST_CHUNK seeds; once chunks come back, each new
    one holds about CHUNK_SECONDS of runs, and near the end of a known total
    smaller ones (down to TAIL_SECONDS), so that the workers finish together. Sizes change only how
    the work is cut, never the merged answer.
    """

    def __init__(
        self, positions: Iterator[tuple[int, int]], stride: int, total: int, jobs: int
    ) -> None:
        self.positions = positions
        self.stride = stride
        self.total = total
        self.jobs = jobs
        self.number = 0
        self.issued = 0
        self.ran = 0
        self.seconds = 0.0
        #: Run time each chunk should hold, and the least near the end.
        self.chunk_seconds = CHUNK_SECONDS
        self.tail_seconds = TAIL_SECONDS
        #: No chunk is left to submit (or none starts before the failure cut-off).
        self.exhausted = False

    def measured(self, result: ChunkResult) -> None:
        if result.ran and not result.interrupted:
            self.ran += result.ran
            self.seconds += result.elapsed

    def size(self) -> int:
        if not self.ran:
            return FIRST_CHUNK
        per_seed = max(self.seconds / self.ran, 1e-7)
        size = int(self.chunk_seconds / per_seed)
        if self.total:
            # Guided: each of the last chunks takes a share of what is left.
            left = self.total - self.issued
            floor = int(self.tail_seconds / per_seed)
            size = min(size, max(left // (2 * self.jobs), floor))
        return max(1, min(size, MAX_CHUNK))

    def to_submit(
        self, in_flight: int, window: int, merged: int, lookahead: int, cutoff: int
    ) -> Chunk | None:
        """The next chunk to hand a worker now, or None: ``in_flight`` fills the
        window (one small chunk per worker until run times are known), submission
        is ``lookahead`` chunks ahead of the in-order merge (chunk ``merged``), or
        no chunk starts before ``cutoff`` (a failure at a smaller position)."""
        limit = window if self.ran else self.jobs
        if self.exhausted or in_flight >= limit or self.number >= merged + lookahead:
            return None
        chunk = self.next()
        if chunk is None or chunk.start > cutoff:
            self.exhausted = True  # every later chunk starts later still
            return None
        return chunk

    def next(self) -> Chunk | None:
        size = self.size()
        seeds: Sequence[int]
        if isinstance(self.positions, RangePositions):
            start, seeds = self.positions.take(size)
        else:
            start, seeds = self._collect(size)
        if not seeds:
            return None
        chunk = Chunk(self.number, start, self.stride, seeds)
        self.number += 1
        self.issued += len(seeds)
        return chunk

    def _collect(self, size: int) -> tuple[int, list[int]]:
        seeds: list[int] = []
        start = 0
        for index, seed in self.positions:
            if not seeds:
                start = index
            seeds.append(seed)
            if len(seeds) >= size:
                break
        return start, seeds


def total_of(seeds: Iterable[int], shard: tuple[int, int] | None) -> int:
    """How many seeds the shard holds; 0 when ``seeds`` has no length."""
    try:
        total = len(seeds)  # type: ignore[arg-type]
    except (TypeError, OverflowError):  # no length, or more than len() can count
        return 0
    if shard:
        i, n = shard
        return len(range(i, total, n))
    return total


class Merger:
    """Folds chunk results into the summary in seed order."""

    def __init__(self, summary: Exploration, stop_on_failure: bool) -> None:
        self.summary = summary
        self.stop_on_failure = stop_on_failure
        self.fingerprints: set[str] = set()
        self.pending: dict[int, ChunkResult] = {}
        self.next_number = 0
        self.done = False

    def add(self, result: ChunkResult) -> None:
        self.pending[result.number] = result
        while not self.done and self.next_number in self.pending:
            self._fold(self.pending.pop(self.next_number))
            self.next_number += 1

    def flush(self) -> None:
        """Interrupted: fold every chunk that came back, gaps or not."""
        for number in sorted(self.pending):
            if self.done:
                break
            self._fold(self.pending.pop(number))
        self.summary.interrupted = True

    def _fold(self, r: ChunkResult) -> None:
        s = self.summary
        if r.diverged:
            index, seed, first, second = r.diverged[0]
            raise NondeterminismError(
                f"seed {seed} (position {index}, strategy {s.strategy}) ran twice with different "
                f"interleavings (fingerprints {first} and {second}): the scenario depends on "
                "something outside seedloop's control (real time, threads, real I/O, state left "
                f"by an earlier run); seedloop.find_failing_seed(scenario, [{seed}], "
                f"strategy={s.strategy!r}, check_determinism=True) names the first step where "
                "the two runs differ"
            )
        s.seeds_run += r.ran
        s.failures += r.failures
        for outcome, count in r.outcomes.items():
            if outcome in s.outcomes or len(s.outcomes) < MAX_OUTCOMES:
                s.outcomes[outcome] += count
            else:
                s.outcomes[_OTHER] += count
        self.fingerprints |= r.fingerprints
        _assertions.merge(s.assertions, r.assertions)
        s.interleavings = len(self.fingerprints)
        room = MAX_FAILING_SEEDS - len(s.failing_seeds)
        s.failing_seeds.extend(r.failing[:room])
        if r.failing and s.failure_index is None:
            s.failure_index = r.failing[0][0]
        if self.stop_on_failure and r.failures:
            self.done = True
            s.stopped_early = True


def check_picklable(opts: RunOptions, user: str, instead: str) -> None:
    """InvalidFactoryError unless ``opts`` can be sent to other processes."""
    try:
        pickle.dumps(opts)
    except Exception as exc:
        raise InvalidFactoryError(
            f"{user} sends the run options to worker processes, but they cannot be pickled "
            f"({exc}); {instead}"
        ) from None


def run_seeds(
    factory: Factory,
    spec: str | None,
    seeds: Iterable[int],
    opts: RunOptions,
    *,
    jobs: int,
    shard: tuple[int, int] | None,
    stop_on_failure: bool,
    check_determinism: bool,
    progress: ProgressCallback | None,
    isolate: bool = False,
) -> Exploration:
    """Run every seed (of the shard) with ``opts``; the summary, without a Failure.

    ``jobs > 1`` (or ``isolate``: worker processes even for one job, so a
    seed that kills its process is reported) needs ``spec``, the importable
    name of ``factory``. Ctrl-C stops the runs within a second: the summary
    then covers the seeds that finished and has ``interrupted`` set.
    """
    if jobs > 1 or isolate:
        check_picklable(opts, "parallel exploration", "use jobs=1")
    summary = Exploration(strategy=opts.strategy, options=opts.kwargs, jobs=jobs, shard=shard)
    merger = Merger(summary, stop_on_failure)
    mode = Mode(stop_on_failure, check_determinism)
    total = total_of(seeds, shard)
    feeder = Feeder(positions(seeds, shard), shard[1] if shard else 1, total, jobs)
    if jobs == 1 and not isolate:
        done = failed = 0
        try:
            while (chunk := feeder.next()) is not None:
                result = run_chunk(factory, chunk, opts, mode)
                feeder.measured(result)
                merger.add(result)
                done += result.ran
                failed += result.failures
                if result.interrupted:
                    raise KeyboardInterrupt
                if progress is not None:
                    progress(done, total, failed)
                if merger.done:
                    break
        except KeyboardInterrupt:
            merger.flush()
    else:
        assert spec is not None
        _run_parallel(spec, feeder, opts, mode, jobs, merger, progress, total)
    return summary


class _Workers:
    """The pool's processes and their shared cells: who runs which seed."""

    def __init__(self, ctx: Any, jobs: int) -> None:
        self.shared = Shared(ctx, jobs)
        #: pid -> multiprocessing.Process, every worker ever started.
        self.processes: dict[int, Any] = {}

    def submit(self, pool: ProcessPoolExecutor, *args: Any) -> Future[ChunkResult]:
        # Workers start with Ctrl-C blocked (the mask is inherited) and
        # unblock it once their handler is in place: a Ctrl-C while one boots
        # reaches it as the flag, never as a traceback from its start-up.
        blocked = hasattr(signal, "pthread_sigmask")
        if blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            fut = pool.submit(*args)
            self.processes.update(getattr(pool, "_processes", None) or {})
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return fut

    def interrupt(self) -> None:
        """Pass Ctrl-C on (a terminal sends it to them too; a ``kill`` does not)."""
        for pid, process in self.processes.items():
            if process.exitcode is None:
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass

    def stop(self) -> None:
        """Kill every worker still alive and reap it: none is left behind."""
        for process in self.processes.values():
            if process.exitcode is None:
                process.kill()
        for process in self.processes.values():
            process.join(timeout=2)

    def crash_report(self, spec: str, opts: RunOptions) -> WorkerCrashError:
        """Which seed ended which worker, once the pool broke."""
        slots = self.shared.running()
        deadline = time.monotonic() + 2
        dead: list[tuple[int, int]] = []
        while not dead and time.monotonic() < deadline:
            dead = [
                (pid, p.exitcode)
                for pid, p in self.processes.items()
                if p.exitcode not in (None, 0, -signal.SIGTERM, -signal.SIGKILL)
            ]
            if not dead:
                time.sleep(0.01)
        for pid, code in dead:
            index, seed = slots.get(pid, (-1, 0))
            if index >= 0:
                return WorkerCrashError(
                    f"seed {seed} (position {index}, strategy {opts.strategy}) crashed the worker "
                    f"process ({describe_exit(code)}); a run that ends its interpreter cannot "
                    f"report an exception: replay it alone with {replay_call(spec, seed, opts)} "
                    "(under a debugger, or python -X faulthandler, to see where)",
                    seed=seed,
                    exitcode=code,
                )
        running = sorted((index, seed) for index, seed in slots.values() if index >= 0)
        if not dead and running:
            # No exit status to tell which worker died (a Python without the
            # pool's process table): name every seed that was running.
            seeds = ", ".join(f"seed {seed} (position {index})" for index, seed in running)
            return WorkerCrashError(
                f"a worker process died while running one of: {seeds} (strategy "
                f"{opts.strategy}); replay each alone with "
                f"{replay_call(spec, running[0][1], opts)} (and the others' seeds)"
            )
        code = dead[0][1] if dead else None
        status = f" ({describe_exit(code)})" if code is not None else ""
        return WorkerCrashError(
            f"a worker process died{status} before running any seed: "
            + _startup_hint(spec),
            exitcode=code,
        )


def describe_exit(code: int | None) -> str:
    """``signal SIGSEGV`` or ``exit code 3``."""
    if code is None:
        return "unknown status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def replay_call(spec: str, seed: int, opts: RunOptions) -> str:
    """The Python call that runs ``seed`` alone, in this process."""
    extra = "".join(f", {k}={v!r}" for k, v in sorted(opts.kwargs.items()))
    name = spec.rpartition(":")[2]
    return f"seedloop.run({name}, seed={seed}, strategy={opts.strategy!r}{extra})"


def _startup_hint(spec: str) -> str:
    module = spec.partition(":")[0]
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if module == "__main__" and path and not _has_main_guard(path):
        return (
            f"{path} has no 'if __name__ == \"__main__\":' guard: worker processes import it "
            "and run its top-level code again, which starts the exploration again; put the "
            "call to seedloop.explore(...) under that guard (or use jobs=1)"
        )
    return (
        f"the scenario's module ({module}) fails to import or crashes in a fresh process "
        "(see the error printed above); run with jobs=1 to see it here"
    )


def _has_main_guard(path: str) -> bool:
    import ast

    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return True  # cannot tell: do not accuse the script
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.dump(node.test):
            return True
    return False


def start_method() -> str:
    """``fork`` where it is safe and cheap, else ``spawn``.

    A forked worker starts in about a millisecond with seedloop and the
    scenario's module already imported; a spawned one pays a fresh
    interpreter and those imports (about 0.1 CPU-s each). Fork is used on
    Linux only (macOS system libraries break in forked children) and only
    while this process runs no other thread (Python's or a C library's),
    which could hold a lock at the moment of the fork and leave it held
    forever in the child.
    """
    if START_METHOD is not None:
        return START_METHOD
    if (
        sys.platform.startswith("linux")
        and _threads() == 1
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        return "fork"
    return "spawn"


def _threads() -> int:
    """Threads of this process, native ones (a C library's pool) included."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _run_parallel(
    spec: str,
    feeder: Feeder,
    opts: RunOptions,
    mode: Mode,
    jobs: int,
    merger: Merger,
    progress: ProgressCallback | None,
    total: int,
) -> None:
    # A forked or spawned worker starts with no loop running, no world held
    # and no thread but its own: explore() refuses to run inside a loop.
    method = start_method()
    if method == "fork" and opts.world.world:
        _world.prepare()  # forked workers inherit what their runs patch
    ctx = multiprocessing.get_context(method)
    workers = _Workers(ctx, jobs)
    shared = workers.shared
    # Chunks queued or running at once: one running and one waiting per
    # worker, so a worker never waits for the parent to send its next chunk.
    window = jobs * 2
    # How far submission may run ahead of the in-order merge: bounds the
    # results held back while one slow chunk is still running.
    lookahead = max(jobs * 16, 64)
    done = failed = 0
    in_flight: dict[Future[ChunkResult], Chunk] = {}
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(spec, shared, opts, mode),
    )
    # Forked workers then never collect (nor, by collecting, copy) the
    # parent's objects: about 3% of a -j 2 command's time. Only when nothing
    # is frozen yet, since unfreeze thaws everything: objects the program froze
    # itself, or (CPython 3.12) a few hundred the interpreter starts with.
    thaw = method == "fork" and gc.get_freeze_count() == 0
    if thaw:
        gc.freeze()
    try:
        while True:
            while (chunk := feeder.to_submit(
                len(in_flight), window, merger.next_number, lookahead, shared.cutoff
            )) is not None:
                try:
                    fut = workers.submit(pool, _worker_run_chunk, chunk)
                except BrokenProcessPool:
                    # A worker died between two results: the pool refuses
                    # new chunks before any future reports it.
                    raise workers.crash_report(spec, opts) from None
                in_flight[fut] = chunk
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in finished:
                in_flight.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise workers.crash_report(spec, opts) from None
                feeder.measured(result)
                merger.add(result)
                done += result.ran
                failed += result.failures
            if progress is not None:
                progress(done, total, failed)
            if merger.done:
                break
            if mode.stop_on_failure:
                for fut, chunk in list(in_flight.items()):
                    if chunk.start > shared.cutoff and fut.cancel():
                        in_flight.pop(fut)
    except KeyboardInterrupt:
        _collect_interrupted(workers, in_flight, merger)
    except BaseException:
        workers.stop()  # a crash report or a bug: do not wait for the others' chunks
        raise
    finally:
        for fut in in_flight:
            fut.cancel()
        if merger.summary.interrupted:
            workers.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        workers.stop()  # reaped, whatever happened: no worker is left behind
        if thaw:
            gc.unfreeze()


def _collect_interrupted(
    workers: _Workers, in_flight: dict[Future[ChunkResult], Chunk], merger: Merger
) -> None:
    """Ctrl-C: let running chunks hand back their finished seeds, briefly."""
    try:
        for fut in in_flight:
            fut.cancel()
        workers.interrupt()
        finished, _ = wait(in_flight, timeout=INTERRUPT_GRACE)
        for fut in finished:
            if fut.cancelled() or fut.exception() is not None:
                continue
            result = fut.result()
            merger.pending[result.number] = result
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop now with what came back
    merger.flush()
