"""The bug corpus in bench/corpus cannot rot: a handful of its bugs stay
invisible in stock asyncio order and are found within a small seed budget by
the strategies that should find them. (bench/corpus_bench.py measures the
whole corpus; this only guards it. Nothing here is timed.)"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

import seedloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import corpus  # noqa: E402

BUDGET = 300

# bug -> strategies that must find it within BUDGET seeds
EXPECTED = {
    "lost_update": ["random", "pct", "pos"],
    "lock_order_deadlock": ["random", "pct", "pos"],
    "queue_task_done_early": ["shuffle", "random", "pos"],
    "lease_expiry_tie": ["strict", "shuffle"],
    "reconnect_stale_conn": ["pct", "pos"],
    "late_subscriber": ["random", "pct"],
    "on_call_write_skew": ["auto", "pct"],
    "recycle_after_uses": ["auto", "random"],
    "ring_overrun": ["auto", "random", "pos"],
    "legacy_semaphore_cancel": ["auto"],
    "timeout_tie_abandoned_charge": ["auto", "feasible"],
}

# Bugs whose failing schedules a real loop can produce by timing alone:
# `feasible` (stock order, seeded CPU time and timer lateness) must find them.
TIMING_BUGS = ["lease_expiry_tie", "timeout_tie_abandoned_charge", "wait_for_tie_double_charge"]


@pytest.fixture(autouse=True)
def _quiet_asyncio():
    # Failing runs log "Exception in callback": expected here.
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def _scenario(name: str):
    modules = corpus.load([name])
    if not modules:
        pytest.skip(f"{name} needs a newer Python")
    return modules[0]


def test_corpus_is_complete():
    modules = corpus.load()
    assert len(modules) >= (20 if sys.version_info >= (3, 11) else 18)
    for m in modules:
        assert m.__doc__ and m.KIND and m.DEPTH >= 1 and m.TASKS >= 2, m.__name__


ALL = [m.__name__.rsplit(".", 1)[-1] for m in corpus.load()]


@pytest.mark.parametrize("name", ALL)
def test_every_bug_passes_under_asyncio_run_and_fifo(name):
    module = _scenario(name)
    asyncio.run(module.scenario())
    assert seedloop.find_failing_seed(module.scenario, range(1), strategy="fifo") is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invisible_in_stock_order(name):
    module = _scenario(name)
    assert seedloop.find_failing_seed(module.scenario, range(3), strategy="fifo") is None


@pytest.mark.parametrize(
    "name,strategy", [(n, s) for n, strategies in sorted(EXPECTED.items()) for s in strategies]
)
def test_found_within_budget(name, strategy):
    module = _scenario(name)
    failure = seedloop.find_failing_seed(module.scenario, range(BUDGET), strategy=strategy)
    assert failure is not None, f"{strategy} no longer finds {name} within {BUDGET} seeds"
    assert isinstance(failure.exception, (AssertionError, seedloop.DeadlockError))
    # and the seed reproduces it
    again = seedloop.execute(module.scenario, failure.seed, strategy, **failure.options)
    assert type(again.exception) is type(failure.exception)


@pytest.mark.parametrize("name", ALL)
def test_every_feasible_failure_replays_under_fifo_from_its_timing(name):
    module = _scenario(name)
    budget = 150 if name in TIMING_BUGS else 20
    failures = 0
    for seed in range(budget):
        loops = []
        run = seedloop.execute(module.scenario, seed, "feasible", instrument=loops.append)
        if run.exception is None:
            continue
        failures += 1
        assert run.strict_order, "feasible keeps asyncio's order in every decision"
        timing = loops[0]._engine_timing_tape()
        again = seedloop.execute(
            module.scenario,
            0,
            "fifo",
            instrument=lambda loop, timing=timing: loop._engine_set_timing_tape(timing),
        )
        assert type(again.exception) is type(run.exception)
        assert again.fingerprint == run.fingerprint
        if failures >= 3:
            break
    if name in TIMING_BUGS:
        assert failures, f"feasible no longer finds {name} within {budget} seeds"


def test_auto_seed_reproduces_through_run_and_execute():
    module = _scenario("on_call_write_skew")
    failure = seedloop.find_failing_seed(module.scenario, range(BUDGET), strategy="auto")
    assert failure is not None and failure.options == {}
    with pytest.raises(type(failure.exception)):
        seedloop.run(module.scenario, seed=failure.seed, strategy="auto")
    again = seedloop.execute(module.scenario, failure.seed, "auto")
    assert again.fingerprint == failure.fingerprint


# bug -> runs systematic (default bound 2) took to its first failure in
# bench/RESULTS.md section 8: each must stay found within SYSTEMATIC_RUNS.
SYSTEMATIC_FOUND = {
    "cancel_inflight_item": 12,
    "lost_update": 4,
    "lock_order_deadlock": 4,
    "lease_expiry_tie": 2,
    "timeout_tie_abandoned_charge": 2,
    "watchdog_false_kill": 3,
    "ring_overrun": 3,
    "lock_cycle_three": 55,
    "rate_limiter_overdraw": 7,
    "torn_config_read": 18,
}
SYSTEMATIC_RUNS = 150


@pytest.mark.parametrize("name", sorted(SYSTEMATIC_FOUND))
def test_systematic_finds_bugs_within_the_bound_and_their_tapes_replay(name):
    module = _scenario(name)
    found = seedloop.explore(
        module.scenario, strategy="systematic", max_runs=SYSTEMATIC_RUNS, explain=False
    )
    failure = found.failure
    assert failure is not None, f"systematic no longer finds {name} within {SYSTEMATIC_RUNS} runs"
    assert found.round_bound is not None and 1 <= found.round_bound <= 2
    assert isinstance(failure.exception, (AssertionError, seedloop.DeadlockError))
    with pytest.raises(type(failure.exception)):
        seedloop.replay(module.scenario, failure.tape)
    with pytest.raises(type(failure.exception)):
        seedloop.replay(module.scenario, failure)  # its shrunk tape
