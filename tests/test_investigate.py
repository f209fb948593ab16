"""Replay, shrinking, timelines, deadlock/hang reports, nondeterminism detection."""

import asyncio
import itertools
import socket
import sys

import pytest

import seedloop
from seedloop._engine import tape_complexity


async def race():
    state = {"ready": False}

    async def producer():
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer():
        await asyncio.sleep(0)
        assert state["ready"], "consumer ran before producer"

    async def noise(n):
        for _ in range(n):
            await asyncio.sleep(0)

    await asyncio.gather(noise(5), producer(), noise(3), consumer())


def test_replay_reproduces_the_recorded_tape_under_any_strategy():
    for strategy in ("shuffle", "random", "pct", "pos"):
        for seed in range(10):
            result = seedloop.execute(race, seed, strategy)
            again = seedloop.execute(race, 12345, tape=result.tape)
            assert again.fingerprint != "" and again.tape == result.tape
            assert type(again.exception) is type(result.exception)


def test_shrunk_tape_still_fails_and_is_simpler():
    failure = seedloop.find_failing_seed(race, range(500))
    assert failure is not None and failure.shrunk_tape is not None
    assert tape_complexity(failure.shrunk_tape) <= tape_complexity(failure.tape)
    assert sum(1 for c in failure.shrunk_tape if c) == 1  # one reordering suffices
    with pytest.raises(AssertionError, match="consumer ran before producer"):
        seedloop.replay(race, failure.shrunk_tape, seed=failure.seed)
    with pytest.raises(AssertionError):
        seedloop.replay(race, failure)
    assert seedloop.replay(race, [], seed=failure.seed) is None  # empty tape = FIFO passes


def test_failure_report_has_timeline_and_verdict():
    failure = seedloop.find_failing_seed(race, range(500))
    report = failure.report()
    assert "#" in failure.timeline and "consumer" in failure.timeline
    assert "resumes" in failure.timeline and "await asyncio.sleep(0)" in failure.timeline
    assert "AssertionError" in failure.timeline
    assert "*" in failure.timeline  # the decisive reordering is marked
    assert failure.replay_tape_command in report
    assert failure.feasible_on_real_loop is False
    assert "depends on reordering ready callbacks" in failure.feasibility


async def timer_tie_race():
    log = []

    async def writer(name, delay):
        await asyncio.sleep(delay)
        log.append(name)

    await asyncio.gather(writer("a", 1.0), writer("b", 1.0))
    assert log == ["a", "b"], log


def test_timer_tie_bug_is_feasible_on_a_real_loop():
    assert seedloop.run(timer_tie_race, strategy="fifo") is None
    failure = seedloop.find_failing_seed(timer_tie_race, range(100), strategy="strict")
    assert failure is not None
    assert failure.feasible_on_real_loop is True


def test_deadlock_lists_waiting_tasks_and_lines():
    async def scenario():
        a, b = asyncio.Lock(), asyncio.Lock()

        async def one():
            async with a:
                await asyncio.sleep(0.1)
                async with b:
                    pass

        async def two():
            async with b:
                await asyncio.sleep(0.1)
                async with a:
                    pass

        await asyncio.gather(one(), two())

    with pytest.raises(seedloop.DeadlockError) as info:
        seedloop.run(scenario, seed=0)
    waiting = info.value.waiting
    assert len(waiting) == 3  # main, one, two
    assert any("one()" in w for w in waiting) and any("two()" in w for w in waiting)
    assert "test_investigate.py:" in str(info.value)


def test_hang_budget_reports_hang_error():
    async def poller():
        while True:
            await asyncio.sleep(0)

    with pytest.raises(seedloop.HangError, match="max_steps"):
        seedloop.run(poller, max_steps=1000)

    async def ticker():
        while True:
            await asyncio.sleep(60)

    with pytest.raises(seedloop.HangError, match="max_time"):
        seedloop.run(ticker, max_time=3600)


def test_nondeterminism_is_reported_with_the_diverging_step():
    calls = itertools.count()

    async def leaky():
        # Behaviour depends on state outside the seed: differs between the two runs.
        extra = next(calls) % 2
        for _ in range(3 + extra):
            await asyncio.sleep(0)

    with pytest.raises(seedloop.NondeterminismError, match="diverge at step"):
        seedloop.find_failing_seed(leaky, range(5), check_determinism=True)
    assert (
        seedloop.find_failing_seed(race, range(3), strategy="fifo", check_determinism=True) is None
    )


def test_pct_seeds_reproduce_alone():
    failure = seedloop.find_failing_seed(race, range(1000), strategy="pct", shrink=False)
    assert failure is not None
    with pytest.raises(AssertionError):
        seedloop.run(race, seed=failure.seed, strategy="pct")
    # The run-length estimate does not depend on which seeds ran before.
    later = seedloop.find_failing_seed(
        race, range(failure.seed, 1000), strategy="pct", shrink=False
    )
    assert later.seed == failure.seed and later.options == failure.options


_leaked = []


async def leaky_state():
    _leaked.append(1)
    assert len(_leaked) == 1, f"state leaked from an earlier run: {len(_leaked)}"


def test_nondeterminism_check_compares_outcomes_too():
    _leaked.clear()
    with pytest.raises(seedloop.NondeterminismError, match="ended differently"):
        seedloop.find_failing_seed(leaky_state, range(3), check_determinism=True)


async def done_order_race():
    tasks = [asyncio.ensure_future(asyncio.sleep(0.01, result=i)) for i in range(6)]
    done, _ = await asyncio.wait(tasks)
    order = [t.result() for t in done]
    assert order != sorted(order) or order[0] != 0, f"done-set order {order}"


def test_timeline_replays_the_failing_run_exactly():
    failure = seedloop.find_failing_seed(done_order_race, range(50), strategy="fifo")
    assert failure is not None
    assert f"=> AssertionError: {failure.exception} at test_investigate.py:" in failure.timeline
    assert failure.timeline.rstrip().endswith(failure.timeline_outcome)
    assert "same exception type and message" in failure.timeline_outcome
    assert "replay ended differently" not in failure.timeline


def test_a_long_lived_loop_forgets_finished_tasks():
    loop = seedloop.SeedLoop(seed=1)

    async def noop():
        return None

    async def main():
        for _ in range(20_000):
            await loop.create_task(noop())

    loop.run_until_complete(main())
    assert loop._engine_tasks_tracked() < 5_000
    assert loop.pending_tasks() == []
    loop.close()


def test_a_deterministic_deadlock_is_not_called_nondeterministic():
    async def stuck_forever():
        async def stuck():
            await asyncio.Event().wait()

        await asyncio.create_task(stuck())

    failure = seedloop.find_failing_seed(stuck_forever, range(2), check_determinism=True)
    assert isinstance(failure.exception, seedloop.DeadlockError)


def test_tasks_built_directly_are_unwound_inside_their_own_run():
    unwound = []

    async def scenario():
        seed = asyncio.get_running_loop().seed

        async def background():
            try:
                await asyncio.sleep(10)
            finally:
                unwound.append(seed)

        asyncio.Task(background())  # not through loop.create_task
        await asyncio.sleep(0)

    for seed in range(5):
        seedloop.run(scenario, seed=seed)
        assert unwound == list(range(seed + 1))


def test_failures_while_unwinding_are_reported():
    seen = []

    async def scenario():
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: seen.append(ctx))

        async def background():
            try:
                await asyncio.sleep(10)
            finally:
                raise RuntimeError("bug in clean-up code")

        asyncio.create_task(background())
        await asyncio.sleep(0)

    seedloop.run(scenario)
    assert [type(c.get("exception")) for c in seen] == [RuntimeError]


@pytest.mark.parametrize("strategy", ["auto", "feasible"])
def test_a_refused_real_world_call_is_not_called_reproducible_on_a_real_loop(strategy):
    async def binds_a_real_socket():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))

    failure = seedloop.find_failing_seed(binds_a_real_socket, range(3), strategy=strategy)
    assert isinstance(failure.exception, seedloop.SimulationEscapeError)
    assert failure.feasible_on_real_loop is False
    assert failure.feasibility.startswith("not a failure a real loop would show")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup")
def test_a_refusal_inside_an_exception_group_is_named_so_too():
    async def group():
        async def binds():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))

        async with asyncio.TaskGroup() as tg:  # type: ignore[attr-defined]
            tg.create_task(binds())

    failure = seedloop.find_failing_seed(group, range(3), strategy="feasible")
    assert type(failure.exception).__name__ == "ExceptionGroup"
    assert failure.feasible_on_real_loop is False
    assert "(SimulationEscapeError)" in failure.feasibility
