"""Bad input gets a clear, typed seedloop error: never a panic or a hang."""

import asyncio
import math

import pytest

import seedloop


async def ok():
    return 1


def test_non_callable_factory():
    with pytest.raises(seedloop.InvalidFactoryError, match="zero-argument callable"):
        seedloop.run(42)


def test_coroutine_object_instead_of_factory():
    with pytest.raises(
        seedloop.InvalidFactoryError, match=r"run\(scenario\), not run\(scenario\(\)\)"
    ):
        seedloop.run(ok())


def test_factory_returning_no_coroutine():
    with pytest.raises(seedloop.InvalidFactoryError, match="not a coroutine"):
        seedloop.run(lambda: 5)


def test_factory_needing_arguments():
    async def needs(x):
        return x

    with pytest.raises(seedloop.InvalidFactoryError, match="lambda"):
        seedloop.find_failing_seed(needs, range(3))


@pytest.mark.parametrize("seeds", [range(0), [], iter(())])
def test_empty_seed_range(seeds):
    with pytest.raises(seedloop.InvalidSeedError, match="empty"):
        seedloop.find_failing_seed(ok, seeds)


def test_int_instead_of_seed_range():
    with pytest.raises(seedloop.InvalidSeedError, match=r"range\(100\)"):
        seedloop.find_failing_seed(ok, 100)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "7", True])
def test_invalid_seed(seed):
    with pytest.raises(seedloop.InvalidSeedError):
        seedloop.run(ok, seed=seed)


def test_unknown_strategy():
    with pytest.raises(seedloop.InvalidStrategyError, match="shuffle"):
        seedloop.run(ok, strategy="bogus")


@pytest.mark.parametrize("delay", [-1, math.nan, "soon"])
def test_bad_delay(delay):
    async def scenario():
        asyncio.get_running_loop().call_later(delay, lambda: None)

    with pytest.raises(seedloop.InvalidDelayError):
        seedloop.run(scenario)


def test_nan_deadline():
    async def scenario():
        asyncio.get_running_loop().call_at(math.nan, lambda: None)

    with pytest.raises(seedloop.InvalidDelayError, match="NaN"):
        seedloop.run(scenario)


def test_errors_are_seedloop_errors():
    for cls in (
        seedloop.InvalidFactoryError,
        seedloop.InvalidSeedError,
        seedloop.InvalidDelayError,
        seedloop.DeadlockError,
        seedloop.HangError,
    ):
        assert issubclass(cls, seedloop.SeedloopError)


def test_sleep_forever_with_inf_is_a_deadlock_not_a_hang():
    async def scenario():
        await asyncio.sleep(math.inf)

    with pytest.raises(seedloop.DeadlockError):
        seedloop.run(scenario)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"max_steps": -1}, "max_steps"),
        ({"max_steps": "x"}, "max_steps"),
        ({"max_time": float("nan")}, "max_time"),
        ({"max_time": -1}, "max_time"),
        ({"depth": "a"}, "depth"),
        ({"depth": 10**30}, "depth"),
        ({"executor": "x"}, "executor"),
        ({"bogus": 1}, "unknown option"),
        ({"tape": [2**70]}, "tape"),
    ],
)
def test_bad_run_options_are_typed_errors_without_noise(options, fragment, recwarn, capsys):
    import gc

    with pytest.raises(seedloop.SeedloopError, match=fragment):
        seedloop.run(ok, **options)
    gc.collect()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
    assert "Exception ignored" not in capsys.readouterr().err


def test_predicate_must_be_callable():
    with pytest.raises(seedloop.InvalidOptionError, match="predicate"):
        seedloop.find_seed_where(ok, 5, range(3))


@pytest.mark.parametrize("seeds", [5, range(0)])
def test_simulate_rejects_bad_seeds_when_decorating(seeds):
    with pytest.raises(seedloop.InvalidSeedError):
        seedloop.simulate(seeds=seeds)


def test_run_inside_a_running_loop_says_what_to_do():
    async def outer():
        with pytest.raises(seedloop.SeedloopError, match="simulate"):
            seedloop.run(ok)

    asyncio.run(outer())


def test_timers_beyond_the_clock_range_are_named_in_the_deadlock():
    async def scenario():
        await asyncio.sleep(1e12)

    with pytest.raises(seedloop.DeadlockError, match="never fire"):
        seedloop.run(scenario)


def test_searches_refuse_to_start_inside_a_running_loop():
    async def outer():
        with pytest.raises(seedloop.SeedloopError, match="running event loop"):
            seedloop.find_failing_seed(ok, range(3), jobs=2)
        with pytest.raises(seedloop.SeedloopError, match="running event loop"):
            seedloop.explore(ok, range(3))

    asyncio.run(outer())
