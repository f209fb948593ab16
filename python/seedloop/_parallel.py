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

import importlib
import importlib.util
import multiprocessing
import os
import pickle
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from . import _world
from ._options import RunOptions, check_seed
from ._result import Exploration, RunResult
from ._run import Factory, run_seed
from .errors import InvalidFactoryError, InvalidSeedError, NondeterminismError, SeedloopError

#: How many distinct outcomes are counted one by one; the rest go to "(other)".
MAX_OUTCOMES = 1000
#: How many failing seeds ``Exploration.failing_seeds`` keeps (``failures`` counts all).
MAX_FAILING_SEEDS = 1000
_OTHER = "(other outcomes)"
_OUTCOME_WIDTH = 200

ProgressCallback = Callable[[int, int, int], None]
_API = "seedloop.explore"


# -- naming factories so other processes can import them --------------------


def factory_spec(factory: Factory | str) -> str:
    """``module:qualname`` naming ``factory``; raises InvalidFactoryError if none does."""
    if isinstance(factory, str):
        resolve_factory(factory)  # fail here, with the reason, not in a worker
        return factory
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise InvalidFactoryError(
            f"parallel exploration (jobs > 1) imports the scenario in worker processes, "
            f"but {qualname or factory!r} is not importable by name (a lambda or a function "
            "defined inside another function); define it at module top level, or use jobs=1"
        )
    spec = f"{module}:{qualname}"
    main = sys.modules.get("__main__")
    if module == "__main__" and not getattr(main, "__file__", None):
        raise InvalidFactoryError(
            f"parallel exploration (jobs > 1) imports the scenario in worker processes, but "
            f"{qualname} was defined in an interactive session or with python -c, which they "
            "cannot import; put it in a module (or a script run as python script.py), or use "
            "jobs=1"
        )
    try:
        found = resolve_factory(spec)
    except InvalidFactoryError:
        found = None
    if found is not factory:
        raise InvalidFactoryError(
            f"parallel exploration (jobs > 1) imports the scenario as {spec!r} in worker "
            "processes, but that name does not lead back to this function; define it at "
            "module top level under its own name, or use jobs=1"
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
class _Chunk:
    number: int
    start: int  # position of the first seed in the whole order
    stride: int  # distance between the positions of consecutive seeds (the shard count)
    seeds: list[int]


@dataclass(frozen=True)
class _Mode:
    stop_on_failure: bool = False
    check_determinism: bool = False


@dataclass
class _ChunkResult:
    number: int
    ran: int = 0
    failing: list[tuple[int, int]] = field(default_factory=list)
    failures: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    fingerprints: set[str] = field(default_factory=set)
    #: ``(position, seed, fingerprint, fingerprint of the second run)`` that differed.
    diverged: list[tuple[int, int, str, str]] = field(default_factory=list)


def _run_chunk(
    factory: Factory,
    chunk: _Chunk,
    opts: RunOptions,
    mode: _Mode,
    cutoff: Any = None,
) -> _ChunkResult:
    out = _ChunkResult(chunk.number)
    # Keep the deterministic world's patches across the chunk: each run then
    # only swaps its own world in and out.
    with _world.held(opts.world.world):
        for offset, seed in enumerate(chunk.seeds):
            index = chunk.start + offset * chunk.stride
            if cutoff is not None and index > cutoff.value:
                break  # another worker already failed at a smaller position
            result = run_seed(factory, seed, opts, api=_API)
            if mode.check_determinism:
                again = run_seed(factory, seed, opts, api=_API)
                if again.fingerprint != result.fingerprint:
                    out.diverged.append((index, seed, result.fingerprint, again.fingerprint))
                    break
            out.ran += 1
            out.outcomes[outcome_of(result)] += 1
            out.fingerprints.add(result.fingerprint)
            if result.exception is not None:
                out.failures += 1
                if len(out.failing) < MAX_FAILING_SEEDS:
                    out.failing.append((index, seed))
                if mode.stop_on_failure:
                    if cutoff is not None:
                        with cutoff.get_lock():
                            cutoff.value = min(cutoff.value, index)
                    break
    return out


# Worker-process state, set once by the pool initializer.
_worker_factory: Factory | None = None
_worker_cutoff: Any = None


def _worker_init(spec: str, cutoff: Any) -> None:
    global _worker_factory, _worker_cutoff
    _worker_factory = resolve_factory(spec)
    _worker_cutoff = cutoff


def _worker_run_chunk(chunk: _Chunk, opts: RunOptions, mode: _Mode) -> _ChunkResult:
    assert _worker_factory is not None
    return _run_chunk(_worker_factory, chunk, opts, mode, _worker_cutoff)


# -- the exploration ---------------------------------------------------------


def _positions(seeds: Iterable[int], shard: tuple[int, int] | None) -> Iterator[tuple[int, int]]:
    any_seed = False
    for index, seed in enumerate(seeds):
        if shard is not None and index % shard[1] != shard[0]:
            continue
        any_seed = True
        yield index, check_seed(seed)
    if not any_seed:
        raise InvalidSeedError("seedloop.explore(): no seeds to run; pass e.g. range(1000)")


def _chunks(positions: Iterator[tuple[int, int]], size: int, stride: int) -> Iterator[_Chunk]:
    """Groups of up to ``size`` consecutive positions of the shard, in order."""
    number = 0
    current: list[int] = []
    start = 0
    for index, seed in positions:
        if not current:
            start = index
        current.append(seed)
        if len(current) >= size:
            yield _Chunk(number, start, stride, current)
            number += 1
            current = []
    if current:
        yield _Chunk(number, start, stride, current)


def _chunk_size(seeds: Iterable[int], jobs: int, shard: tuple[int, int] | None) -> int:
    try:
        total = len(seeds)  # type: ignore[arg-type]
    except TypeError:
        return 256
    if shard:
        total //= shard[1]
    return max(8, min(1024, total // (jobs * 16) or 1))


def _total(seeds: Iterable[int], shard: tuple[int, int] | None) -> int:
    try:
        total = len(seeds)  # type: ignore[arg-type]
    except TypeError:
        return 0
    if shard:
        i, n = shard
        return len(range(i, total, n))
    return total


class _Merger:
    """Folds chunk results into the summary in seed order."""

    def __init__(self, summary: Exploration, stop_on_failure: bool) -> None:
        self.summary = summary
        self.stop_on_failure = stop_on_failure
        self.fingerprints: set[str] = set()
        self.pending: dict[int, _ChunkResult] = {}
        self.next_number = 0
        self.done = False

    def add(self, result: _ChunkResult) -> None:
        self.pending[result.number] = result
        while not self.done and self.next_number in self.pending:
            self._fold(self.pending.pop(self.next_number))
            self.next_number += 1

    def _fold(self, r: _ChunkResult) -> None:
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
        s.interleavings = len(self.fingerprints)
        room = MAX_FAILING_SEEDS - len(s.failing_seeds)
        s.failing_seeds.extend(r.failing[:room])
        if r.failing and s.failure_index is None:
            s.failure_index = r.failing[0][0]
        if self.stop_on_failure and r.failures:
            self.done = True
            s.stopped_early = True


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
) -> Exploration:
    """Run every seed (of the shard) with ``opts``; the summary, without a Failure.

    ``jobs > 1`` needs ``spec``, the importable name of ``factory``.
    """
    if jobs > 1:
        try:
            pickle.dumps(opts)
        except Exception as exc:
            raise InvalidFactoryError(
                f"parallel exploration sends the run options to worker processes, but they "
                f"cannot be pickled ({exc}); use jobs=1"
            ) from None
    summary = Exploration(strategy=opts.strategy, options=opts.kwargs, jobs=jobs, shard=shard)
    merger = _Merger(summary, stop_on_failure)
    mode = _Mode(stop_on_failure, check_determinism)
    total = _total(seeds, shard)
    positions = _positions(seeds, shard)
    chunks = _chunks(positions, _chunk_size(seeds, jobs, shard), shard[1] if shard else 1)
    if jobs == 1:
        done = failed = 0
        for chunk in chunks:
            result = _run_chunk(factory, chunk, opts, mode)
            merger.add(result)
            done += result.ran
            failed += result.failures
            if progress is not None:
                progress(done, total, failed)
            if merger.done:
                break
    else:
        assert spec is not None
        _run_parallel(spec, chunks, opts, mode, jobs, merger, progress, total)
    return summary


def _run_parallel(
    spec: str,
    chunks: Iterator[_Chunk],
    opts: RunOptions,
    mode: _Mode,
    jobs: int,
    merger: _Merger,
    progress: ProgressCallback | None,
    total: int,
) -> int:
    # spawn: workers start clean (no inherited loop, patched modules or
    # threads), on every platform.
    ctx = multiprocessing.get_context("spawn")
    cutoff = ctx.Value("q", 2**62)
    window = jobs * 3  # chunks queued or running at once
    # How far submission may run ahead of the in-order merge: bounds the
    # results held back while one slow chunk is still running.
    lookahead = max(jobs * 16, 64)
    held: _Chunk | None = None
    done = failed = 0
    in_flight: dict[Future[_ChunkResult], _Chunk] = {}
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(spec, cutoff)
    ) as pool:
        try:
            exhausted = False
            while True:
                while not exhausted and len(in_flight) < window:
                    chunk = held if held is not None else next(chunks, None)
                    held = None
                    if chunk is None:
                        exhausted = True
                        break
                    if chunk.start > cutoff.value:
                        exhausted = True  # every later chunk starts later still
                        break
                    if chunk.number >= merger.next_number + lookahead:
                        held = chunk
                        break
                    fut = pool.submit(_worker_run_chunk, chunk, opts, mode)
                    in_flight[fut] = chunk
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    in_flight.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool as exc:
                        raise SeedloopError(
                            f"a worker process died ({exc}); the scenario may crash the "
                            "interpreter or fail to import in a fresh process: run with jobs=1 "
                            "to see the error here"
                        ) from exc
                    merger.add(result)
                    done += result.ran
                    failed += result.failures
                if progress is not None:
                    progress(done, total, failed)
                if merger.done:
                    break
                if mode.stop_on_failure:
                    for fut, chunk in list(in_flight.items()):
                        if chunk.start > cutoff.value and fut.cancel():
                            in_flight.pop(fut)
        finally:
            for fut in in_flight:
                fut.cancel()
    return done
