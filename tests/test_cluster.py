"""Exploring on a Dask cluster gives the serial answer: counts, first failing seed, failing seeds."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import seedloop_scenarios as sc

import seedloop
from seedloop import _cluster

TESTS = Path(__file__).parent
SRC = Path(seedloop.__file__).parent.parent
needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="Dask distributed is not installed (pip install 'seedloop[cluster]')",
)


def _counts(e: seedloop.Exploration) -> tuple:
    return (
        e.seeds_run,
        e.failures,
        e.failure_index,
        e.failure.seed if e.failure else None,
        dict(e.outcomes),
        e.interleavings,
        e.failing_seeds,
        e.stopped_early,
    )


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Two single-threaded workers in this process: a cluster that starts in milliseconds."""
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("Dask distributed is not installed (pip install 'seedloop[cluster]')")
    import distributed

    with distributed.Client(
        processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
    ) as c:
        yield c


@needs_dask
def test_cluster_exploration_equals_the_serial_one(client: object) -> None:
    seeds = list(range(400))
    serial = seedloop.explore(sc.slow_early_failure, seeds)
    on_cluster = seedloop.explore(sc.slow_early_failure, seeds, backend=client)
    assert serial.failure_index == sc.SLOW_SEED and serial.failures == 2
    assert _counts(on_cluster) == _counts(serial)
    assert on_cluster.jobs == 2  # the cluster's worker threads
    race = seedloop.explore(sc.race, range(300))
    race_on_cluster = seedloop.explore("seedloop_scenarios:race", range(300), backend=client)
    assert _counts(race_on_cluster) == _counts(race)
    assert race.failures > 50 and race.interleavings >= 2


@needs_dask
def test_stopping_at_the_first_failure_counts_what_a_serial_run_counts(client: object) -> None:
    seeds = list(range(400))
    serial = seedloop.explore(sc.slow_early_failure, seeds, stop_on_failure=True)
    on_cluster = seedloop.explore(
        sc.slow_early_failure, seeds, stop_on_failure=True, backend=client
    )
    # Seed 300 fails long before the slow seed 40 does; the answer is still 40.
    assert _counts(on_cluster) == _counts(serial)
    assert on_cluster.seeds_run == sc.SLOW_SEED + 1 and on_cluster.stopped_early
    found = seedloop.find_failing_seed(sc.race, range(400), backend=client, shrink=False)
    alone = seedloop.find_failing_seed(sc.race, range(400), shrink=False)
    assert found is not None and alone is not None and found.seed == alone.seed
    assert str(found.exception) == str(alone.exception)
    # The failure is investigated here as a serial search investigates it.
    assert found.timeline


@needs_dask
def test_shards_and_checks_run_on_the_cluster(client: object) -> None:
    whole = seedloop.explore(sc.race, range(50, 250))
    shards = [
        seedloop.explore(sc.race, range(50, 250), shard=(i, 3), backend=client) for i in range(3)
    ]
    assert sum(s.seeds_run for s in shards) == 200
    assert sum(s.failures for s in shards) == whole.failures
    assert min(s.failure_index for s in shards if s.failure_index is not None) == (
        whole.failure_index
    )
    checked = seedloop.explore(sc.race, range(40), check_determinism=True, backend=client)
    assert _counts(checked) == _counts(seedloop.explore(sc.race, range(40)))
    with pytest.raises(seedloop.NondeterminismError, match="seed 3 .position 0"):
        seedloop.explore(
            "seedloop_scenarios:leaks_state_between_runs", [3, 4], check_determinism=True,
            backend=client,
        )


@needs_dask
def test_a_scenario_workers_cannot_import_is_refused_before_any_work(client: object) -> None:
    async def closure() -> None:
        await asyncio.sleep(0)

    for factory in (closure, lambda: closure()):
        with pytest.raises(seedloop.InvalidFactoryError, match="cluster's workers.*top level"):
            seedloop.explore(factory, range(10), backend=client)
    with pytest.raises(seedloop.InvalidFactoryError, match="cluster's workers"):
        seedloop.find_failing_seed(closure, range(10), backend=client)


def test_backend_arguments_are_checked() -> None:
    with pytest.raises(seedloop.InvalidOptionError, match="backend must be 'dask'"):
        seedloop.explore(sc.race, range(3), backend="ray")
    with pytest.raises(seedloop.InvalidOptionError, match="backend must be 'dask'"):
        seedloop.explore(sc.race, range(3), backend=42)
    with pytest.raises(seedloop.InvalidOptionError, match="pass backend='dask'"):
        seedloop.explore(sc.race, range(3), address="tcp://127.0.0.1:8786")
    with pytest.raises(seedloop.InvalidOptionError, match="scheduler address"):
        seedloop.find_failing_seed(sc.race, range(3), backend="dask", address=8786)


def test_without_distributed_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(seedloop.ClusterError, match=r"pip install 'seedloop\[cluster\]'"):
        seedloop.explore(sc.race, range(3), backend="dask")


@needs_dask
def test_an_unreachable_scheduler_is_a_cluster_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cluster, "CONNECT_TIMEOUT", 0.5)
    with pytest.raises(seedloop.ClusterError, match="dask scheduler"):
        seedloop.explore(sc.race, range(3), backend="dask", address="tcp://127.0.0.1:9")


@needs_dask
def test_the_cli_explores_on_a_local_cluster_of_processes() -> None:
    """``--cluster local``: real worker processes that import the scenario by name."""
    env = dict(os.environ, COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(SRC), env.get("PYTHONPATH", "")])
    args = ["seedloop_scenarios:slow_early_failure", "--seeds", "0:400", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-m", "seedloop", "explore", *args, "--cluster", "local", "-j", "2"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    text = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 1, text
    assert f"seed {sc.SLOW_SEED}" in text and "bad seed 40" in text, text
    assert "failing seeds" in text and "2 (0.5%)" in text, text
