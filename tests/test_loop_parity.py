"""Loop behaviour existing suites rely on: patched time, stock messages, freed objects, time budgets, threads."""

import asyncio
import gc
import logging
import sys
import threading
import time
import weakref
from unittest import mock

import pytest

import seedloop
from seedloop import SeedLoop
from seedloop.errors import BlockingCallError, HangError, InvalidOptionError, SimulationEscapeError

# -- a patched loop.time() is honoured as the stock loop honours it -----------------


async def _frozen_clock_spin() -> list[str]:
    """A library test's pattern: freeze loop.time, move it by hand, spin wait(timeout=0)."""
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    base = loop.time()
    loop.call_at(base + 5, fired.append, "at5")
    now = [base]
    with mock.patch.object(loop, "time", side_effect=lambda: now[0]):
        loop.call_later(7, fired.append, "later7")  # deadline from the patched clock
        for t in (1, 6, 8):
            now[0] = base + t
            for _ in range(3):
                await asyncio.wait([loop.create_future()], timeout=0)
            fired.append(f"t={t}")
    return fired


def test_patched_time_decides_which_timers_are_due():
    expected = ["t=1", "at5", "t=6", "later7", "t=8"]
    assert asyncio.run(_frozen_clock_spin()) == expected  # stock
    for strategy in ("fifo", "shuffle", "random", "pct"):
        assert seedloop.run(_frozen_clock_spin, strategy=strategy) == expected, strategy


def test_unpatched_time_keeps_the_virtual_clock():
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.25)
        return loop.time()

    assert seedloop.run(main) == 0.25


def test_a_subclass_overriding_time_is_asked():
    class Clocked(SeedLoop):
        now = 100.0

        def time(self) -> float:
            return self.now

    loop = Clocked(0, "fifo")
    try:
        fired: list[float] = []
        handle = loop.call_later(1, lambda: fired.append(loop.now))
        assert handle.when() == 101.0
        loop.now = 101.0
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert fired == [101.0]
    finally:
        loop.close()


def test_time_set_on_the_instance_is_seen_like_stock_and_removed_again():
    loop = SeedLoop(0, "fifo")
    try:
        assert SeedLoop.time(loop) == loop.time() == 0.0  # callable from the class too
        loop.time = lambda: 50.0  # a plain assignment, no mock
        assert vars(loop)["time"]() == 50.0  # where stock keeps it
        assert loop.call_later(1, print).when() == 51.0
        del loop.time
        assert "time" not in vars(loop)
        assert loop.call_later(1, print).when() == 1.0  # the virtual clock again
        with pytest.raises(AttributeError, match="'SeedLoop' object has no attribute 'time'"):
            del loop.time
        object.__setattr__(loop, "time", lambda: 7.0)  # the generic setattr path
        assert loop.call_later(1, print).when() == 8.0
    finally:
        loop.close()


def test_a_run_keeps_every_loop_attribute_out_of_the_instance_dict():
    # Attributes in slots, `time` a descriptor: nothing creates the loop's
    # __dict__, so CPython specializes `loop.call_soon` in every callback.
    async def main() -> dict[str, object]:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(asyncio.sleep(d) for d in (0, 0.5, 1)))
        async for _ in _agen():
            pass
        return dict(vars(loop))

    assert seedloop.run(main, seed=3) == {}


async def _agen():  # an async generator: the loop's asyncgen set is made
    yield 1


# -- asyncio's own wording and timing for never-retrieved exceptions ------------------


async def _drop_failed_task() -> list[str]:
    events: list[str] = []

    async def boom() -> None:
        raise ValueError("lost")

    task = asyncio.get_running_loop().create_task(boom())
    await asyncio.sleep(0)
    events.append(repr(task).split(" ")[0])
    del task
    events.append("dropped")
    return events


def _logged_run(run) -> tuple[list[str], list[str]]:
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("asyncio")
    log.addHandler(handler)
    try:
        events = run()
    finally:
        log.removeHandler(handler)
    return events, records


def test_exception_never_retrieved_reads_and_comes_as_on_stock():
    stock = _logged_run(lambda: asyncio.run(_drop_failed_task()))
    for strategy in ("fifo", "shuffle"):
        ours = _logged_run(lambda s=strategy: seedloop.run(_drop_failed_task, strategy=s))
        assert ours[0] == stock[0] == ["<Task", "dropped"]
        first = [r.splitlines()[0] for r in ours[1]]
        assert first == [r.splitlines()[0] for r in stock[1]] == ["Task exception was never retrieved"]


def test_task_and_future_names_read_like_stock():
    async def main() -> tuple[str, str, str, str]:
        loop = asyncio.get_running_loop()
        task = loop.create_task(asyncio.sleep(0))
        fut = loop.create_future()
        names = (type(task).__name__, repr(task)[:6], type(fut).__name__, repr(fut)[:8])
        await task
        return names

    assert seedloop.run(main) == ("Task", "<Task ", "Future", "<Future ")
    assert issubclass(seedloop._loop.SeedTask, asyncio.Task)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_leaves_no_never_retrieved_traceback(exc):
    async def main() -> None:
        raise exc

    def run() -> list[str]:
        with pytest.raises(exc):
            seedloop.run(main)
        gc.collect()
        return []

    _, records = _logged_run(run)
    assert records == []


# -- nothing kept alive that stock would free ------------------------------------------


class _Payload:
    pass


async def _collectable() -> list[bool]:
    freed = []

    async def result() -> _Payload:
        return _Payload()

    async def failure() -> None:
        raise ValueError(_Payload())

    value = await asyncio.create_task(result())
    ref = weakref.ref(value)
    del value
    await asyncio.sleep(0)
    gc.collect()
    freed.append(ref() is None)
    try:
        await asyncio.create_task(failure())
    except ValueError as e:
        ref = weakref.ref(e.args[0])
        del e
    await asyncio.sleep(0)
    gc.collect()
    freed.append(ref() is None)
    task = asyncio.create_task(result())
    task_ref = weakref.ref(task)
    await task
    del task
    await asyncio.sleep(0)
    gc.collect()
    freed.append(task_ref() is None)
    return freed


def test_finished_tasks_and_their_results_are_freed_during_the_run():
    assert asyncio.run(_collectable()) == [True, True, True]
    for strategy in ("fifo", "shuffle"):
        assert seedloop.run(_collectable, strategy=strategy) == [True, True, True]


def test_results_are_freed_after_run_and_on_an_open_loop():
    refs: list[weakref.ref[_Payload]] = []

    async def child() -> _Payload:
        p = _Payload()
        refs.append(weakref.ref(p))
        return p

    async def main() -> None:
        await asyncio.create_task(child())
        await asyncio.create_task(child())

    seedloop.run(main)
    assert [r() for r in refs] == [None, None]
    refs.clear()
    loop = SeedLoop(0)
    try:
        loop.run_until_complete(main())
        assert [r() for r in refs] == [None, None]  # without gc, the loop still open
    finally:
        loop.close()


# -- simulated CPU time: polling code sees time pass --------------------------------


async def _poll_while_writer_sleeps() -> float:
    lock = asyncio.Lock()
    done = False

    async def writer() -> None:
        nonlocal done
        async with lock:
            await asyncio.sleep(0.01)
        done = True

    async def reader() -> None:
        while not done:
            if not lock.locked():
                await lock.acquire()
                lock.release()
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader(), reader())
    return asyncio.get_running_loop().time()


def test_polling_readers_do_not_livelock():
    start = time.perf_counter()
    t = seedloop.run(_poll_while_writer_sleeps, strategy="fifo")
    assert 0.01 <= t < 0.02
    assert time.perf_counter() - start < 5
    assert seedloop.run(_poll_while_writer_sleeps, strategy="shuffle", seed=3) >= 0.01


def test_step_time_zero_keeps_the_pure_clock_and_a_step_budget_catches_the_spin():
    with pytest.raises(HangError, match="max_steps=50000"):
        seedloop.run(_poll_while_writer_sleeps, strategy="fifo", step_time=0, max_steps=50_000)


def test_explicit_step_time_charges_every_step():
    async def main() -> float:
        for _ in range(10):
            await asyncio.sleep(0)
        return asyncio.get_running_loop().time()

    assert seedloop.run(main, step_time=0) == 0.0
    assert seedloop.run(main) == 0.0  # the automatic rule: exact times for ordinary runs
    assert seedloop.run(main, step_time=1e-3) == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [-1e-6, 2.0, float("nan"), "1us", True])
def test_step_time_is_validated(bad):
    with pytest.raises(InvalidOptionError, match="step_time"):
        seedloop.run(lambda: asyncio.sleep(0), step_time=bad)


# -- a real-time budget: HangError within seconds ---------------------------------------


async def _spin_forever() -> None:
    while True:
        await asyncio.sleep(0)


def test_max_wall_gives_a_hang_error_that_says_it_is_machine_dependent():
    start = time.perf_counter()
    with pytest.raises(HangError, match=r"max_wall=0.3s of real time.*machine's speed"):
        seedloop.run(_spin_forever, max_wall=0.3, max_steps=None)
    assert time.perf_counter() - start < 3


def test_runs_have_a_real_time_budget_by_default_and_hand_built_loops_none():
    from seedloop._options import DEFAULT_MAX_WALL, RunOptions

    assert RunOptions().max_wall == DEFAULT_MAX_WALL <= 10
    assert RunOptions.build("t", "fifo", {"max_wall": None}).max_wall is None
    loop = SeedLoop(0)
    try:
        assert loop._max_wall is None
    finally:
        loop.close()


@pytest.mark.parametrize("bad", [0, -1, "10", float("nan")])
def test_max_wall_is_validated(bad):
    with pytest.raises(InvalidOptionError, match="max_wall"):
        seedloop.run(lambda: asyncio.sleep(0), max_wall=bad)


# -- real threads calling into the loop -------------------------------------------------


async def _thread_calls_in() -> list[int]:
    loop = asyncio.get_running_loop()
    got: list[int] = []
    done = asyncio.Event()

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    def worker() -> None:
        got.append(asyncio.run_coroutine_threadsafe(add(1, 2), loop).result(5))
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=worker).start()
    await done.wait()
    return got


def test_real_threads_call_into_the_loop_with_executor_thread():
    assert asyncio.run(_thread_calls_in()) == [3]
    assert seedloop.run(_thread_calls_in, executor="thread") == [3]


def test_threads_without_executor_thread_name_the_option():
    with pytest.raises(SimulationEscapeError, match="executor=\"thread\""):
        seedloop.run(_thread_calls_in)


def test_thread_bridge_queue_with_executor_thread():
    import queue

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        to_async: asyncio.Queue[int] = asyncio.Queue()
        to_sync: queue.Queue[int] = queue.Queue()

        def sync_side() -> None:
            for i in range(5):
                loop.call_soon_threadsafe(to_async.put_nowait, i)
                to_sync.get(timeout=5)

        threading.Thread(target=sync_side).start()
        out = []
        for _ in range(5):
            out.append(await to_async.get())
            to_sync.put(1)
        return out

    assert seedloop.run(main, executor="thread") == [0, 1, 2, 3, 4]


def test_a_thread_that_never_calls_back_ends_in_deadlock_not_a_hang():
    async def main() -> None:
        threading.Thread(target=time.sleep, args=(0.05,)).start()
        await asyncio.get_running_loop().create_future()

    with pytest.raises(seedloop.DeadlockError):
        seedloop.run(main, executor="thread")


def _run_coroutine_threadsafe_from_executor(loop: SeedLoop) -> int:
    async def add() -> int:
        await asyncio.sleep(0.05)
        return 3

    def target() -> int:
        coro = add()
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop).result()
        finally:
            coro.close()  # never started when the inline wait is refused

    return loop.run_until_complete(loop.run_in_executor(None, target))


def test_run_coroutine_threadsafe_from_executor_work():
    # CPython's RunCoroutineThreadsafeTests pattern.
    loop = SeedLoop(0, "fifo", executor="thread")
    try:
        assert _run_coroutine_threadsafe_from_executor(loop) == 3
    finally:
        loop.close()
    loop = SeedLoop(0, "fifo")  # inline: a clear error instead of hanging forever
    try:
        with pytest.raises(BlockingCallError, match="executor='thread'"):
            _run_coroutine_threadsafe_from_executor(loop)
    finally:
        loop.close()
    assert threading.Condition.wait.__module__ == "threading"  # the guard is gone again


if sys.version_info >= (3, 12):

    def test_eager_tasks_still_freed():
        async def main() -> bool:
            loop = asyncio.get_running_loop()
            loop.set_task_factory(asyncio.eager_task_factory)

            async def quick() -> _Payload:
                return _Payload()

            ref = weakref.ref(await asyncio.create_task(quick()))
            await asyncio.sleep(0)
            gc.collect()
            return ref() is None

        assert seedloop.run(main) is True


def test_jobs_a_test_submits_to_its_own_pool_are_waited_for():
    # janus' test_get_notifies_sync_not_full: jobs submitted straight to the
    # test's own ThreadPoolExecutor hand results back with call_soon_threadsafe;
    # an idle loop must wait for them, not report a deadlock.
    from concurrent.futures import ThreadPoolExecutor

    async def scenario():
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def job():
            time.sleep(0.02)  # a worker thread: real time
            loop.call_soon_threadsafe(done.set)

        with ThreadPoolExecutor(2) as pool:
            pool.submit(job)
            await done.wait()
        return "handed back"

    for seed in range(3):
        assert seedloop.run(scenario, seed=seed, executor="thread") == "handed back"
