"""Systematic exploration: every schedule within a preemption bound, with sound partial-order reduction."""

import asyncio
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import seedloop
from seedloop.errors import InvalidOptionError, InvalidSeedError, InvalidStrategyError

ROOT = Path(__file__).resolve().parent.parent


async def lost_update():
    """A read-modify-write split by an await: FIFO is fine; one preemption (second
    running two steps ahead of first) loses an update."""
    counter = [0]

    async def first():
        v = counter[0]
        await asyncio.sleep(0)
        counter[0] = v + 1

    async def second():
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        v = counter[0]
        counter[0] = v + 1

    await asyncio.gather(first(), second())
    return counter[0]


async def lock_order():
    lock = asyncio.Lock()
    order = []

    async def worker(name):
        async with lock:
            order.append(name)
            await asyncio.sleep(0)
            order.append(name)

    await asyncio.gather(worker("a"), worker("b"))
    return "".join(order)


async def event_wakeups():
    ev = asyncio.Event()
    seen = []

    async def waiter(n):
        await ev.wait()
        seen.append(n)

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0)
    ev.set()
    await asyncio.gather(*tasks)
    return seen


async def timer_tie():
    """Three timers due at the same instant: their order is a choice."""
    order = []

    async def sleeper(name):
        await asyncio.sleep(1)
        order.append(name)

    await asyncio.gather(*(sleeper(n) for n in "abc"))
    return "".join(order)


async def cancel_race():
    """A cancellation due at the same instant as the timer it cancels."""

    async def sleeper():
        try:
            await asyncio.sleep(1)
            return "woke"
        except asyncio.CancelledError:
            return "cancelled"

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(1)
    task.cancel()
    return await task


async def noisy_timers():
    """Independent sleepers beside a two-task race: most orders only reorder timers."""
    box = []

    async def noise(i):
        await asyncio.sleep(1)
        await asyncio.sleep(1)
        return i

    async def writer(v):
        await asyncio.sleep(1)
        box.append(v)

    await asyncio.gather(noise(0), noise(1), writer("x"), writer("y"))
    return "".join(box)


async def subclassed_futures():
    """Timers completing futures of a user subclass whose set_result writes shared state:
    not loop-internal steps, so their order must still be explored."""
    log = []

    class LoggingFuture(asyncio.Future):
        def set_result(self, result):
            log.append(result)
            super().set_result(result)

    loop = asyncio.get_running_loop()
    futures = [LoggingFuture() for _ in range(3)]
    for i, fut in enumerate(futures):
        loop.call_later(1, fut.set_result, i)
    await asyncio.gather(*futures)
    return log


SCENARIOS = [
    lost_update,
    lock_order,
    event_wakeups,
    timer_tie,
    cancel_race,
    noisy_timers,
    subclassed_futures,
]


def _explore(factory, **kw):
    return seedloop.explore(factory, strategy="systematic", max_runs=20_000, **kw)


@pytest.mark.parametrize("factory", SCENARIOS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bound", [None, 1, 2])
def test_reduction_keeps_every_outcome_of_brute_force(factory, bound):
    if factory is noisy_timers and bound is None:
        pytest.skip("brute force without a bound is too large here; bounded runs cover it")
    reduced = _explore(factory, bound=bound)
    brute = _explore(factory, bound=bound, reduction=False)
    assert brute.complete and reduced.complete
    assert set(reduced.outcomes) == set(brute.outcomes)
    assert reduced.interleavings <= brute.interleavings
    assert reduced.seeds_run <= brute.seeds_run


def test_a_future_subclass_is_not_taken_for_a_loop_internal_step():
    reduced = _explore(subclassed_futures, bound=None)
    assert len(reduced.outcomes) == 6  # every order of the three set_result calls


def test_reduction_explores_fewer_schedules_where_steps_are_independent():
    for factory in (timer_tie, cancel_race):
        reduced = _explore(factory, bound=None)
        brute = _explore(factory, bound=None, reduction=False)
        assert reduced.complete and brute.complete
        assert reduced.interleavings < brute.interleavings, factory.__name__
    # Three timers tied at one instant: 3! orders of firing collapse into one.
    assert _explore(timer_tie, bound=None).interleavings * 3 <= (
        _explore(timer_tie, bound=None, reduction=False).interleavings
    )


def test_a_bug_within_the_bound_is_found_with_a_replayable_tape():
    exploration = seedloop.explore(lost_update, strategy="systematic", fail_if="result != 2")
    failure = exploration.failure
    assert failure is not None and not exploration.complete
    assert failure.strategy == "systematic"
    # The rounds deepen the bound: the failure found needs the fewest preemptions (one).
    assert exploration.round_bound == 1
    assert any(failure.tape)
    with pytest.raises(AssertionError):
        seedloop.replay(lost_update, failure.tape, fail_if="result != 2")
    assert seedloop.replay(lost_update, [0] * len(failure.tape)) == 2
    assert failure.replay_command.startswith("seedloop.replay(lost_update, [")
    assert "systematic schedule" in str(exploration)
    assert failure.shrunk_tape is not None and failure.timeline


def test_find_failing_seed_takes_the_systematic_strategy_without_seeds():
    failure = seedloop.find_failing_seed(
        lost_update, strategy="systematic", fail_if="result != 2", explain=False
    )
    assert failure is not None
    assert seedloop.find_failing_seed(lock_order, strategy="systematic") is None


def test_a_bug_beyond_the_bound_is_not_claimed_and_completeness_is_stated():
    exploration = seedloop.explore(lost_update, strategy="systematic", bound=0, fail_if="result != 2")
    assert exploration.failure is None and exploration.complete and not exploration.exhaustive
    assert exploration.interleavings == 1
    assert str(exploration).startswith("all 1 interleavings within bound 0 explored: no failure")
    full = seedloop.explore(lock_order, strategy="systematic", bound=50)
    assert full.complete and full.exhaustive
    assert "these are all the interleavings" in str(full)


async def unlucky_draw():
    await asyncio.sleep(0)
    return random.random() < 0.2  # the world seeds `random`


def test_seeds_only_seed_the_world_and_each_gets_every_schedule():
    alone = seedloop.explore(unlucky_draw, strategy="systematic", fail_if="result")
    many = seedloop.explore(unlucky_draw, range(30), strategy="systematic", fail_if="result")
    failing_seed = many.failing_seeds[0][1]
    assert alone.complete != (failing_seed == 0)
    assert many.failure is not None and many.failure.seed == failing_seed
    with pytest.raises(AssertionError, match="fail_if"):
        seedloop.replay(unlucky_draw, many.failure.tape, seed=failing_seed, fail_if="result")
    passing = [s for s in range(30) if not seedloop.run(unlucky_draw, s, strategy="fifo")][:3]
    covered = seedloop.explore(unlucky_draw, passing, strategy="systematic", fail_if="result")
    assert covered.complete and covered.world_seeds == 3
    assert "within bound 2 explored for 3 world seeds: no failure" in str(covered)


def test_max_runs_stops_an_incomplete_exploration_and_says_so():
    exploration = seedloop.explore(noisy_timers, strategy="systematic", max_runs=5)
    assert not exploration.complete and exploration.failure is None
    assert exploration.seeds_run == 5
    assert "not complete: max_runs=5" in str(exploration)


def test_same_result_in_another_process():
    code = textwrap.dedent(
        """
        import seedloop, test_systematic as t
        e = seedloop.explore(t.noisy_timers, strategy="systematic", bound=2)
        f = seedloop.explore(t.lost_update, strategy="systematic", fail_if="result != 2",
                             shrink=False, explain=False)
        print(e.interleavings, e.seeds_run, sorted(e.outcomes.items()), list(f.failure.tape))
        """
    )
    # The seedloop under test, wherever it is installed (a wheel, or python/ in place).
    package_root = Path(seedloop.__file__).resolve().parent.parent
    env_path = f"{ROOT / 'tests'}:{package_root}"
    outs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": env_path, "PYTHONHASHSEED": str(i)},
        ).stdout
        for i in (1, 2)
    ]
    assert outs[0] == outs[1] and outs[0].strip()


def test_arguments_are_checked():
    with pytest.raises(InvalidSeedError, match="empty"):
        seedloop.explore(lost_update, [], strategy="systematic")
    with pytest.raises(InvalidSeedError, match="needs seeds"):
        seedloop.explore(lost_update)
    with pytest.raises(InvalidOptionError, match="bound"):
        seedloop.explore(lost_update, strategy="systematic", bound=-1)
    with pytest.raises(InvalidOptionError, match="strategy='systematic' only"):
        seedloop.explore(lost_update, range(3), bound=3)
    with pytest.raises(InvalidOptionError, match="jobs"):
        seedloop.explore(lost_update, strategy="systematic", jobs=2)
    with pytest.raises(InvalidStrategyError, match="search over schedules"):
        seedloop.run(lost_update, strategy="systematic")


def test_a_scenario_that_is_not_deterministic_is_reported():
    rng = random.Random()

    async def flaky():
        async def t():
            await asyncio.sleep(0)

        n = 2 + rng.randrange(3)  # a module-level Random the world does not seed
        await asyncio.gather(*(t() for _ in range(n)))

    with pytest.raises(seedloop.NondeterminismError, match="replaying a recorded schedule"):
        for _ in range(20):
            seedloop.explore(flaky, strategy="systematic", bound=None, max_runs=200)
