"""The seed's public API, exactly as its README shows it."""

import asyncio

import pytest

import seedloop


async def scenario():
    state = {"ready": False, "data": None}

    async def producer():
        state["data"] = 42
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer():
        await asyncio.sleep(0)
        assert state["ready"], "consumer observed data before producer was ready"

    await asyncio.gather(producer(), consumer())


async def returning_scenario():
    state = {"ready": False, "data": None}

    async def producer():
        state["data"] = 42
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer():
        await asyncio.sleep(0)
        return state["data"] if state["ready"] else "MISSED"

    _, seen = await asyncio.gather(producer(), consumer())
    return seen


def test_find_failing_seed_finds_and_reproduces_the_race():
    failure = seedloop.find_failing_seed(scenario, range(1000))
    assert failure is not None
    assert isinstance(failure.exception, AssertionError)
    for _ in range(20):
        with pytest.raises(AssertionError, match="before producer was ready"):
            seedloop.run(scenario, seed=failure.seed)


def test_about_half_of_the_seeds_fail():
    outcomes = [seedloop.run(returning_scenario, seed=s) for s in range(1000)]
    missed = outcomes.count("MISSED")
    assert 350 < missed < 650
    assert set(outcomes) == {42, "MISSED"}


def test_find_seed_where_returns_seed_and_result():
    hit = seedloop.find_seed_where(returning_scenario, lambda r: r == "MISSED", range(1000))
    assert hit is not None
    seed, result = hit
    assert result == "MISSED"
    assert seedloop.run(returning_scenario, seed=seed) == "MISSED"
    assert seedloop.find_seed_where(returning_scenario, lambda r: r == "never", range(50)) is None


def test_run_returns_the_result_and_sleep_is_virtual():
    async def slow():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - t0

    assert seedloop.run(slow, seed=1) == pytest.approx(3600)


def test_failure_names_seed_and_replay_command():
    failure = seedloop.find_failing_seed(scenario, range(1000))
    assert f"seed={failure.seed}" in failure.replay_command
    assert str(failure.seed) in str(failure)


def test_simulate_names_the_failing_seed():
    @seedloop.simulate(seeds=range(200))
    async def test_race():
        await scenario()

    with pytest.raises(seedloop.SimulationFailure) as info:
        test_race()
    message = str(info.value)
    seed = info.value.failure.seed
    assert f"seed {seed}" in message
    assert "--seedloop-replay" in message

    @seedloop.simulate(seeds=range(50))
    async def test_fine():
        await asyncio.sleep(1)

    test_fine()


@pytest.mark.parametrize("strategy", seedloop.STRATEGIES)
def test_every_strategy_runs_pure_asyncio(strategy):
    async def work():
        q: asyncio.Queue[int] = asyncio.Queue()
        lock = asyncio.Lock()
        total = 0

        async def worker():
            nonlocal total
            while True:
                item = await q.get()
                async with lock:
                    total += item
                q.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(3)]
        for i in range(10):
            await q.put(i)
        await q.join()
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return total

    for seed in range(20):
        assert seedloop.run(work, seed=seed, strategy=strategy) == 45


def test_fifo_matches_stock_asyncio_order():
    async def ordered():
        log = []

        async def task(name):
            for i in range(3):
                log.append((name, i))
                await asyncio.sleep(0)

        await asyncio.gather(task("a"), task("b"), task("c"))
        return log

    assert seedloop.run(ordered, seed=5, strategy="fifo") == asyncio.run(ordered())


def test_fail_if_turns_a_bad_return_value_into_a_failure() -> None:
    """fail_if= judges the result, so every search, shrink and replay sees a failure."""
    import seedloop_scenarios

    missed = seedloop_scenarios.missed
    seed, _ = seedloop.find_seed_where(missed, lambda r: r == "MISSED", range(100))
    failure = seedloop.find_failing_seed(missed, range(100), fail_if="result == 'MISSED'")
    assert failure is not None and failure.seed == seed
    assert "fail_if=\"result == 'MISSED'\"" in failure.replay_command
    assert "fail_if=" in (failure.replay_tape_command or "")
    with pytest.raises(AssertionError, match="the scenario returned 'MISSED'"):
        seedloop.run(missed, seed=seed, fail_if="result == 'MISSED'")
    with pytest.raises(AssertionError, match="the scenario returned 'MISSED'"):
        seedloop.replay(missed, failure)
    assert seedloop.run(missed, seed=seed) == "MISSED"
    with pytest.raises(seedloop.InvalidOptionError, match="not a Python expression"):
        seedloop.run(missed, fail_if="result ==")
    with pytest.raises(seedloop.InvalidOptionError, match="Python expression"):
        seedloop.run(missed, fail_if=lambda r: r)


def test_public_classes_show_as_seedloop_names() -> None:
    import pickle

    for cls in (seedloop.SimulationFailure, seedloop.Failure, seedloop.RunResult,
                seedloop.Exploration, seedloop.SeedLoop):
        assert f"{cls.__module__}.{cls.__qualname__}" == f"seedloop.{cls.__name__}"
    result = seedloop.execute(lambda: asyncio.sleep(0), 3)
    assert repr(result).startswith("RunResult(")
    assert pickle.loads(pickle.dumps(seedloop.RunResult)) is seedloop.RunResult
