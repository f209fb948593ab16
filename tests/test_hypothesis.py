"""Hypothesis drives the seed or the schedule; shrinking and its database keep failures."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.extra
hypothesis = pytest.importorskip("hypothesis")

import seedloop_scenarios as sc  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.database import InMemoryExampleDatabase  # noqa: E402

import seedloop  # noqa: E402
from seedloop.hypothesis import Schedule, run, schedules, seeds, simulate  # noqa: E402

FAST = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def test_hypothesis_finds_shrinks_and_remembers_a_failing_seed() -> None:
    db = InMemoryExampleDatabase()
    tried: list[int] = []
    failing: list[int] = []

    @settings(FAST, database=db)
    @given(seed=seeds(max_value=10_000))
    def check(seed: int) -> None:
        tried.append(seed)
        try:
            run(sc.race, seed)
        except AssertionError:
            failing.append(seed)
            raise

    with pytest.raises(AssertionError, match="consumer missed the data"):
        check()
    shrunk = tried[-1]  # Hypothesis reruns its minimal example last
    assert shrunk == min(failing)
    with pytest.raises(AssertionError):
        seedloop.run(sc.race, seed=shrunk)
    assert list(db.data.values()), "the failing example was not saved"

    # The next run starts from the saved failure.
    tried.clear()
    with pytest.raises(AssertionError):
        check()
    assert tried[0] == shrunk


def test_schedules_shrink_to_one_departure_from_asyncio_order() -> None:
    found: list[Schedule] = []

    @settings(FAST, database=None)
    @given(schedule=schedules(max_steps=40, max_choice=3))
    def check(schedule: Schedule) -> None:
        result = schedule.execute(sc.race)
        if result.exception is not None:
            found.append(schedule)
            raise result.exception

    with pytest.raises(AssertionError, match="consumer missed"):
        check()
    minimal = found[-1]
    assert minimal.departures == 1  # the race needs exactly one reordering
    assert minimal.tape[-1] != 0  # trailing asyncio-order steps were shrunk away
    assert Schedule(()).execute(sc.race).exception is None  # asyncio's own order passes
    with pytest.raises(AssertionError):
        minimal.run(sc.race)


def test_simulate_decorator_draws_seed_and_arguments() -> None:
    calls: list[tuple[int, int]] = []

    @settings(FAST, database=None, max_examples=30)
    @simulate(strategy="random", n=st.integers(1, 4))
    async def check(n: int, seed: int) -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, seedloop.SeedLoop) and loop.seed == seed
        calls.append((seed, n))
        await asyncio.gather(*(asyncio.sleep(i) for i in range(n)))

    check()
    assert len(calls) >= 10
    assert {n for _, n in calls} <= {1, 2, 3, 4}

    @settings(FAST, database=None)
    @simulate()
    async def racy() -> None:
        await sc.race()

    with pytest.raises(AssertionError, match="consumer missed"):
        racy()


def test_simulate_rejects_what_it_cannot_run() -> None:
    with pytest.raises(seedloop.InvalidFactoryError, match="async def"):
        simulate()(lambda: None)
    with pytest.raises(seedloop.InvalidFactoryError, match="no such parameter"):

        @simulate(m=st.integers())
        async def f(n: int) -> None:
            pass

    with pytest.raises(seedloop.InvalidStrategyError):
        simulate(strategy="chaos")


def test_simulate_works_as_a_pytest_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_h="""
import asyncio
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from seedloop.hypothesis import simulate

@pytest.fixture
def limit():
    return 3

@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@simulate(k=st.integers(0, 5))
async def test_with_fixture(limit, k):
    await asyncio.sleep(k)
    assert k <= 5 and limit == 3
"""
    )
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


pytest_plugins = ["pytester"]
