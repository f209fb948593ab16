"""seedloop.explore: serial and parallel exploration give the serial answer."""

from __future__ import annotations

import gc
import os
import sys
import threading

import pytest
import seedloop_scenarios as sc

import seedloop
from seedloop import _parallel
from seedloop._options import parse_seeds, parse_shard
from seedloop._parallel import ChunkResult, Feeder, factory_spec, positions


def _counts(e: seedloop.Exploration) -> tuple:
    return (
        e.seeds_run,
        e.failures,
        e.failure_index,
        e.failure.seed if e.failure else None,
        dict(e.outcomes),
        e.interleavings,
        e.failing_seeds,
    )


def test_serial_exploration_summarises_the_demo_race() -> None:
    e = seedloop.explore(sc.race, range(400))
    assert e.seeds_run == 400
    assert 120 < e.failures < 280
    assert set(e.outcomes) == {"42", "raised AssertionError: consumer missed the data"}
    assert e.outcomes["42"] + e.failures == 400
    assert e.interleavings >= 2
    serial = seedloop.find_failing_seed(sc.race, range(400))
    assert e.failure is not None and e.failure.seed == serial.seed
    assert e.failure_index == serial.seed
    assert isinstance(e.failure.exception, AssertionError)
    assert e.failing_seeds[0] == (serial.seed, serial.seed)
    assert "seeds/s" in str(e)
    # The failure carries find_failing_seed's investigation...
    assert e.failure.timeline and e.failure.shrunk_tape is not None
    # ...unless asked not to.
    quick = seedloop.explore(sc.race, range(400), shrink=False, explain=False)
    assert quick.failure.seed == serial.seed and quick.failure.timeline is None


def test_parallel_equals_serial_and_keeps_the_earliest_failure() -> None:
    seeds = list(range(400))
    serial_all = seedloop.explore(sc.slow_early_failure, seeds)
    serial_stop = seedloop.explore(sc.slow_early_failure, seeds, stop_on_failure=True)
    parallel_all = seedloop.explore(sc.slow_early_failure, seeds, jobs=2)
    # Seed 300 fails long before the slow seed 40 does; the answer is still 40.
    parallel_stop = seedloop.explore(
        "seedloop_scenarios:slow_early_failure", seeds, jobs=2, stop_on_failure=True
    )
    assert serial_all.failure_index == sc.SLOW_SEED
    assert serial_all.failures == 2
    assert _counts(parallel_all) == _counts(serial_all)
    assert _counts(parallel_stop) == _counts(serial_stop)
    assert parallel_stop.seeds_run == sc.SLOW_SEED + 1
    assert parallel_stop.stopped_early
    assert str(parallel_stop.failure.exception) == f"bad seed {sc.SLOW_SEED}"
    assert parallel_all.jobs == 2


def test_shards_cover_the_range_once_and_combine_to_the_serial_answer() -> None:
    seeds = range(50, 250)
    whole = seedloop.explore(sc.race, seeds)
    shards = [seedloop.explore(sc.race, seeds, shard=f"{i}/3") for i in range(3)]
    assert sum(s.seeds_run for s in shards) == whole.seeds_run == 200
    assert sum(s.failures for s in shards) == whole.failures
    assert min(s.failure_index for s in shards if s.failure_index is not None) == (
        whole.failure_index
    )
    positions = sorted(p for s in shards for p, _ in s.failing_seeds)
    assert positions == [p for p, _ in whole.failing_seeds]
    assert all(p % 3 == i for i, s in enumerate(shards) for p, _ in s.failing_seeds)


def test_pct_runs_do_not_depend_on_earlier_seeds() -> None:
    e = seedloop.explore(sc.race, range(200), strategy="pct", depth=2)
    steps = e.options["steps"]
    assert steps == max(seedloop.execute(sc.race, 0, "fifo").steps, 10)
    assert e.failure is not None
    # The same answer as the serial search with the measured estimate...
    f = seedloop.find_failing_seed(sc.race, range(200), strategy="pct", depth=2, steps=steps)
    assert f.seed == e.failure.seed
    # ...and the seed fails alone, in a fresh exploration of just that seed.
    alone = seedloop.explore(sc.race, [e.failure.seed], strategy="pct", depth=2)
    assert alone.failures == 1 and alone.options == e.options
    with pytest.raises(AssertionError):
        seedloop.run(sc.race, seed=e.failure.seed, strategy="pct", **e.options)
    # seedloop.run estimates the same k by itself.
    with pytest.raises(AssertionError):
        seedloop.run(sc.race, seed=e.failure.seed, strategy="pct", depth=2)


def test_a_passing_exploration_has_no_failure() -> None:
    e = seedloop.explore(sc.race, range(100), strategy="fifo")
    assert e.failure is None and e.failures == 0 and e.failure_index is None
    assert dict(e.outcomes) == {"42": 100}
    assert e.interleavings == 1


def test_progress_is_reported_up_to_the_total() -> None:
    calls: list[tuple[int, int, int]] = []
    seedloop.explore(sc.race, range(300), progress=lambda *a: calls.append(a))
    assert calls and calls[-1][:2] == (300, 300)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_nondeterminism_between_processes_is_reported() -> None:
    with pytest.raises(seedloop.NondeterminismError, match="passes when rerun"):
        seedloop.explore(sc.fails_only_in_workers, range(4), jobs=2)


def test_check_determinism_names_the_seed_whose_runs_differ() -> None:
    assert seedloop.explore(sc.leaks_state_between_runs, range(6)).failures == 0
    with pytest.raises(seedloop.NondeterminismError, match="seed 3 .position 0.*check_determinism"):
        seedloop.explore(sc.leaks_state_between_runs, [3, 4], check_determinism=True)
    for jobs in (1, 2):
        clean = seedloop.explore(sc.race, range(40), check_determinism=True, jobs=jobs)
        assert clean.seeds_run == 40


def test_a_dying_worker_is_reported() -> None:
    with pytest.raises(
        seedloop.WorkerCrashError,
        match=r"seed \d+ .*crashed the worker process .exit code 3.*run.kills_its_process, seed=",
    ):
        seedloop.explore(sc.kills_its_process, range(4), jobs=2)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_crash_names_a_seed_past_2_63(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if method == "fork" and not sys.platform.startswith("linux"):
        pytest.skip("workers fork on Linux only")
    monkeypatch.setattr(_parallel, "START_METHOD", method)
    seeds = range(2**64 - 6, 2**64)
    with pytest.raises(seedloop.WorkerCrashError, match=f"seed {sc.HUGE_CRASHING_SEED} ") as info:
        seedloop.explore(sc.exits_at_a_huge_seed, seeds, jobs=2)
    assert info.value.seed == sc.HUGE_CRASHING_SEED


def test_unimportable_factories_are_refused_for_workers() -> None:
    async def local() -> None:
        pass

    with pytest.raises(seedloop.InvalidFactoryError, match="top level"):
        seedloop.explore(local, range(3), jobs=2)
    with pytest.raises(seedloop.InvalidFactoryError, match="top level"):
        factory_spec(lambda: local())
    # In-process exploration takes any factory.
    assert seedloop.explore(lambda: local(), range(3)).seeds_run == 3
    with pytest.raises(seedloop.InvalidFactoryError, match="cannot import module"):
        seedloop.explore("no_such_module_xyz:scenario", range(3))
    with pytest.raises(seedloop.InvalidFactoryError, match="module:function"):
        seedloop.explore("seedloop_scenarios", range(3))
    with pytest.raises(seedloop.InvalidFactoryError, match="cannot find 'nope'"):
        seedloop.explore("seedloop_scenarios:nope", range(3))
    assert factory_spec(sc.race) == "seedloop_scenarios:race"


def test_seed_and_shard_syntax() -> None:
    assert parse_seeds("500") == range(500)
    assert parse_seeds("100:200") == range(100, 200)
    assert parse_seeds("0:10:5") == range(0, 10, 5)
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("0:3,7") == [0, 1, 2, 7]
    assert parse_shard("2/8") == (2, 8)
    for bad in ("", "x", "1:2:3:4", "5:2", "-1"):
        with pytest.raises(seedloop.InvalidSeedError):
            parse_seeds(bad)
    for bad in ("3/3", "1", "a/b", "0/0"):
        with pytest.raises(seedloop.InvalidSeedError, match="shard"):
            parse_shard(bad)
    with pytest.raises(seedloop.InvalidSeedError, match="range\\(10\\)"):
        seedloop.explore(sc.race, 10)  # type: ignore[arg-type]
    with pytest.raises(seedloop.InvalidSeedError, match="no seeds"):
        seedloop.explore(sc.race, [])
    with pytest.raises(seedloop.InvalidStrategyError, match="choose one of"):
        seedloop.explore(sc.race, range(3), strategy="chaos")


def test_find_failing_seed_with_jobs_gives_the_serial_answer() -> None:
    serial = seedloop.find_failing_seed(sc.race, range(400), shrink=False, explain=False)
    parallel = seedloop.find_failing_seed(sc.race, range(400), jobs=2, shrink=False, explain=False)
    assert parallel is not None and parallel.seed == serial.seed
    assert type(parallel.exception) is type(serial.exception)


def test_chunks_are_sized_from_the_measured_run_time() -> None:
    feeder = Feeder(positions(range(10_000), None), 1, 10_000, jobs=2)
    first = feeder.next()
    assert first is not None and len(first.seeds) == _parallel.FIRST_CHUNK
    # 1 ms a seed: a chunk holds CHUNK_SECONDS of runs.
    feeder.measured(ChunkResult(0, ran=16, elapsed=0.016))
    assert feeder.size() == round(_parallel.CHUNK_SECONDS / 0.001)
    second = feeder.next()
    assert second is not None and second.start == 16 and second.number == 1
    # Near the end of a known total, chunks shrink so the workers finish together.
    feeder.issued = 9_900
    assert feeder.size() == 25
    # A chunk that Ctrl-C cut short does not count as a measurement.
    feeder.measured(ChunkResult(2, ran=1, elapsed=5.0, interrupted=True))
    assert feeder.seconds == 0.016


def test_a_range_of_seeds_is_cut_into_range_slices_at_the_positions_a_list_gets() -> None:
    for seeds in (range(1000), range(7, 3000, 3), range(999, -1, -2), range(2**64 - 50, 2**64)):
        for shard in (None, (0, 1), (1, 3), (4, 5)):
            fast = positions(seeds, shard)
            assert isinstance(fast, _parallel.RangePositions)
            assert list(fast) == list(positions(list(seeds), shard))
            feeder = Feeder(positions(seeds, shard), shard[1] if shard else 1, 0, jobs=2)
            cut = []
            while (chunk := feeder.next()) is not None:
                assert isinstance(chunk.seeds, range)  # a few bytes to send, whatever its length
                cut += [(chunk.start + k * chunk.stride, s) for k, s in enumerate(chunk.seeds)]
            assert cut == list(positions(list(seeds), shard))
    # A range holding an invalid seed is checked seed by seed, failing where a list fails.
    checked = positions(range(-2, 5), None)
    assert not isinstance(checked, _parallel.RangePositions)
    with pytest.raises(seedloop.InvalidSeedError, match="got -2"):
        next(checked)
    with pytest.raises(seedloop.InvalidSeedError, match="no seeds"):
        seedloop.explore(sc.race, range(5, 5))
    with pytest.raises(seedloop.InvalidSeedError, match="no seeds"):
        seedloop.explore(sc.race, range(2), shard=(2, 3))
    assert _counts(seedloop.explore(sc.race, range(300, 0, -1), jobs=2, shard="1/2")) == (
        _counts(seedloop.explore(sc.race, list(range(300, 0, -1)), shard="1/2"))
    )


def test_every_seed_is_a_range_too_long_for_len() -> None:
    # range(2**64) is every seed; len() cannot count it, the searches still walk it.
    every = range(2**64)
    for jobs in (1, 2):
        found = seedloop.explore(
            "seedloop_scenarios:race", every, jobs=jobs, stop_on_failure=True, shrink=False
        )
        assert found.failure is not None and found.seeds_run == found.failure_index + 1
    first = seedloop.find_failing_seed(sc.race, every, shrink=False, explain=False)
    assert first is not None and first.seed == found.failure.seed


def test_the_answer_does_not_depend_on_chunk_sizes_or_start_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeds = list(range(300))
    serial = seedloop.explore(sc.slow_early_failure, seeds)
    serial_stop = seedloop.explore(sc.slow_early_failure, seeds, stop_on_failure=True)
    monkeypatch.setattr(_parallel, "CHUNK_SECONDS", 0.0005)  # many tiny chunks
    monkeypatch.setattr(_parallel, "TAIL_SECONDS", 0.0001)
    monkeypatch.setattr(_parallel, "FIRST_CHUNK", 1)
    for method in ("fork", "spawn") if sys.platform.startswith("linux") else ("spawn",):
        monkeypatch.setattr(_parallel, "START_METHOD", method)
        assert _counts(seedloop.explore(sc.slow_early_failure, seeds, jobs=2)) == _counts(serial)
        # The shared failure cut-off, read by the workers of either start method.
        stop = seedloop.explore(sc.slow_early_failure, seeds, jobs=2, stop_on_failure=True)
        assert _counts(stop) == _counts(serial_stop)


def test_workers_fork_only_on_linux_while_no_other_thread_runs() -> None:
    alone = len(os.listdir("/proc/self/task")) == 1 if sys.platform.startswith("linux") else True
    # (an earlier test's library may have left threads running)
    expected = "fork" if sys.platform.startswith("linux") and alone else "spawn"
    assert _parallel.start_method() == expected
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        # Another thread could hold a lock at the fork: spawn instead, same answer.
        assert _parallel.start_method() == "spawn"
        found = seedloop.find_failing_seed(sc.race, range(200), jobs=2, shrink=False)
        assert found is not None
        assert found.seed == seedloop.find_failing_seed(sc.race, range(200), shrink=False).seed
    finally:
        stop.set()
        thread.join()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")
def test_forked_workers_leave_the_collector_as_they_found_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_parallel, "START_METHOD", "fork")
    frozen = []  # the freeze count whenever the parent freezes

    def freeze(real=gc.freeze) -> None:
        frozen.append(gc.get_freeze_count())
        real()

    monkeypatch.setattr(_parallel.gc, "freeze", freeze)
    # The parent freezes its objects for the fork and thaws them afterwards...
    before = gc.get_freeze_count()  # (3.12 starts with a few hundred frozen)
    seedloop.explore(sc.race, range(60), jobs=2)
    assert frozen == ([0] if before == 0 else [])
    assert gc.get_freeze_count() <= before  # thawed, or never frozen
    # ...and never thaws what the program itself had frozen.
    monkeypatch.undo()
    monkeypatch.setattr(_parallel, "START_METHOD", "fork")
    gc.freeze()
    try:
        held = gc.get_freeze_count()
        seedloop.explore(sc.race, range(60), jobs=2)
        # Not thawed (frozen objects may still die of their last reference).
        assert gc.get_freeze_count() > held // 2 > 0
    finally:
        gc.unfreeze()  # (on 3.12 the interpreter's own too: harmless in a test process)
