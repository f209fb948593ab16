"""SeedLoop is a real asyncio event loop: the documented API and pure-coroutine asyncio."""

import asyncio
import contextvars
import socket
import sys

import pytest

import seedloop
from seedloop import SeedLoop

STRATEGIES = seedloop.STRATEGIES


@pytest.fixture
def loop():
    loop = SeedLoop(seed=7)
    yield loop
    loop.close()


def test_call_soon_call_later_call_at_and_cancel(loop):
    log = []
    loop.call_soon(log.append, "soon")
    h = loop.call_soon(log.append, "cancelled")
    h.cancel()
    assert h.cancelled()
    later = loop.call_later(5, log.append, "later")
    assert later.when() == pytest.approx(5)
    loop.call_at(2, log.append, "at")
    loop.call_later(10, loop.stop)
    loop.run_forever()
    assert log == ["soon", "at", "later"]
    assert loop.time() == pytest.approx(10)


def test_stop_finishes_the_current_iteration_like_asyncio(loop):
    log = []
    loop.call_soon(loop.stop)
    loop.call_soon(log.append, 1)
    loop.run_forever()
    assert log == [1]
    loop.call_soon(log.append, 2)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == [1, 2]


def test_cancelled_timers_do_not_move_the_clock(loop):
    async def main():
        await asyncio.wait_for(asyncio.sleep(1), timeout=3600)
        return loop.time()

    assert loop.run_until_complete(main()) == pytest.approx(1)


def test_create_task_with_name_and_context(loop):
    var = contextvars.ContextVar("var", default="unset")

    async def read():
        return var.get()

    async def main():
        ctx = contextvars.copy_context()
        ctx.run(var.set, "in-context")
        kwargs = {"context": ctx} if sys.version_info >= (3, 11) else {}
        task = loop.create_task(read(), name="reader", **kwargs)
        assert task.get_name() == "reader"
        return await task

    expected = "in-context" if sys.version_info >= (3, 11) else "unset"
    assert loop.run_until_complete(main()) == expected


def test_create_task_names_counts_and_falls_back_like_the_python_method():
    # The engine's create_task does the common call itself; everything else
    # (a hook, a factory, debug mode, a closed loop) keeps the Python path.
    loop = SeedLoop(seed=1)

    async def noop():
        return asyncio.current_task().get_name()

    tasks = [loop.create_task(noop()), loop.create_task(noop(), name="named")]
    tasks.append(loop.create_task(noop(), name=None))
    assert [t.get_name() for t in tasks] == ["Task-1", "named", "Task-3"]
    assert type(tasks[0]).__name__ == "Task" and type(tasks[0]) is not asyncio.Task
    assert (loop._tasks_created, loop._seed_tasks_created) == (3, 3)
    for n in (1, 9, 10, 99, 100, 101, 12345, 10**15, -5):
        loop._tasks_created = n - 1  # the counters read and write like attributes
        named = loop.create_task(noop())
        assert named.get_name() == f"Task-{n}"
        tasks.append(named)
    loop._tasks_created = 10
    tasks.append(loop.create_task(noop()))
    assert tasks[-1].get_name() == "Task-11"
    expected = ["Task-1", "named", "Task-3", *(f"Task-{n}" for n in (1, 9, 10, 99, 100, 101, 12345, 10**15, -5))]
    assert loop.run_until_complete(asyncio.gather(*tasks)) == [*expected, "Task-11"]
    assert loop.pending_tasks() == []

    seen = []
    loop._on_task_created = lambda task, parent: seen.append((task.get_name(), parent))
    hooked = loop.create_task(noop())
    assert seen == [("Task-12", None)]
    loop._on_task_created = None
    loop.set_task_factory(lambda loop, coro, **kwargs: asyncio.Task(coro, loop=loop, **kwargs))
    made = loop.create_task(noop())
    assert type(made) is asyncio.Task and made.get_name() == "Task-13"
    assert (loop._tasks_created, loop._seed_tasks_created, loop._factory_tasks_created) == (13, 14, 1)
    loop.set_task_factory(None)
    loop.run_until_complete(asyncio.gather(hooked, made))

    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    traced = loop.create_task(noop())
    # The caller's line ends the source traceback, as with the stock loop.
    assert traced._source_traceback[-1].name == "test_create_task_names_counts_and_falls_back_like_the_python_method"
    loop.set_debug(False)
    loop.run_until_complete(traced)

    with pytest.raises(TypeError):
        loop.create_task()
    coro = noop()
    with pytest.raises(TypeError):
        loop.create_task(coro, "positional name")
    loop.close()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.create_task(coro)
    coro.close()
    assert loop._tasks_created == 15  # counted before the check, as the Python method did


def test_a_loop_class_with_debug_as_a_property_is_read_through_it():
    # get_debug and create_task read the instance dict only where
    # ``self._debug`` would: a class's data descriptor wins over it.
    class AlwaysDebug(SeedLoop):
        @property
        def _debug(self):
            return True

        @_debug.setter
        def _debug(self, value):
            pass

    loop = AlwaysDebug(seed=1)
    assert loop.get_debug() is True

    async def noop():
        return None

    task = loop.create_task(noop())
    # Debug mode: the task recorded where it was created, ending at the caller.
    assert task._source_traceback[-1].name == "test_a_loop_class_with_debug_as_a_property_is_read_through_it"
    loop.run_until_complete(task)
    loop.close()


def test_create_task_context_is_a_type_error_on_310_only(loop):
    async def noop():
        return None

    coro = noop()
    if sys.version_info < (3, 11):
        with pytest.raises(TypeError, match="^create_task\\(\\) got an unexpected keyword argument 'context'$"):
            loop.create_task(coro, context=contextvars.copy_context())
        coro.close()
        task = loop.create_task(noop(), context=None)  # None is no context
    else:
        task = loop.create_task(coro, context=contextvars.copy_context())
    loop.run_until_complete(task)


def test_a_pooled_handle_reused_for_a_plain_callback_is_collected_in_a_cycle():
    import gc
    import weakref

    loop = SeedLoop(seed=3)

    async def noop():
        return None

    async def many():
        await asyncio.gather(*[noop() for _ in range(50)])

    # Task steps leave handles the collector does not track in the pool ...
    loop.run_until_complete(many())

    class Holder:
        def tick(self):
            pass

    refs = []
    for _ in range(20):
        holder = Holder()
        # ... reused here, in a cycle through the holder: tracked again.
        holder.handle = loop.call_soon(holder.tick)
        assert gc.is_tracked(holder.handle)
        refs.append(weakref.ref(holder))
        del holder
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    gc.collect()
    assert [r() for r in refs] == [None] * 20


def test_exception_handler_receives_callback_errors(loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))

    def boom():
        raise ValueError("boom")

    loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert isinstance(seen[0]["exception"], ValueError)
    assert "Exception in callback" in seen[0]["message"]


def test_shutdown_asyncgens_and_default_executor(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        async for _ in agen():
            break

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    assert closed == [True]


def test_run_in_executor_and_to_thread_are_inline_and_deterministic(loop):
    async def main():
        a = await loop.run_in_executor(None, sum, [1, 2, 3])
        b = await asyncio.to_thread(lambda: "threadless")
        return a, b

    assert loop.run_until_complete(main()) == (6, "threadless")


def test_no_selector_pipe_or_socket(monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("SeedLoop opened a real socket/pipe")

    monkeypatch.setattr(socket, "socketpair", forbidden)
    monkeypatch.setattr(socket.socket, "__init__", forbidden)
    loop = SeedLoop(seed=1)
    loop.run_until_complete(asyncio.sleep(1))
    loop.close()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory is 3.12+")
def test_asyncio_runner_with_loop_factory():
    async def main():
        await asyncio.sleep(100)
        return asyncio.get_running_loop().time()

    with asyncio.Runner(loop_factory=lambda: SeedLoop(seed=3)) as runner:
        assert runner.run(main()) == pytest.approx(100)
    assert asyncio.run(main(), loop_factory=lambda: SeedLoop(seed=3)) == pytest.approx(100)


async def everything():
    """gather, wait, wait_for, timeout, TaskGroup, shield, Queue, Lock, Event,
    Condition, Semaphore and contextvars, together."""
    results = {}
    var = contextvars.ContextVar("v", default=0)

    async def worker(i, sem, lock, shared):
        async with sem:
            var.set(i)
            await asyncio.sleep(0.01 * (i % 3))
            async with lock:
                shared.append(var.get())
        return i

    sem, lock, shared = asyncio.Semaphore(2), asyncio.Lock(), []
    results["gather"] = await asyncio.gather(*(worker(i, sem, lock, shared) for i in range(5)))
    results["shared"] = sorted(shared)

    done, pending = await asyncio.wait(
        [asyncio.ensure_future(asyncio.sleep(d, result=d)) for d in (0.1, 0.2)],
        return_when=asyncio.FIRST_COMPLETED,
    )
    results["wait"] = ([t.result() for t in done], len(pending))
    for p in pending:
        p.cancel()

    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.3)
    except asyncio.TimeoutError:
        results["wait_for"] = "timeout"

    if sys.version_info >= (3, 11):
        try:
            async with asyncio.timeout(0.1):
                await asyncio.sleep(5)
        except TimeoutError:
            results["timeout"] = "timeout"

        async def fail():
            await asyncio.sleep(0.1)
            raise KeyError("x")

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(asyncio.sleep(0.5))
                tg.create_task(fail())
        except BaseException as group:  # ExceptionGroup; `except*` is 3.11+ syntax
            assert [type(e) for e in group.exceptions] == [KeyError]
            results["taskgroup"] = "KeyError"

    inner = asyncio.ensure_future(asyncio.sleep(0.2, result="shielded"))
    results["shield"] = await asyncio.shield(inner)

    q = asyncio.Queue(maxsize=1)
    cond = asyncio.Condition()
    event = asyncio.Event()
    got = []

    async def consumer():
        for _ in range(3):
            got.append(await q.get())
            q.task_done()
        async with cond:
            await cond.wait_for(lambda: event.is_set())

    c = asyncio.ensure_future(consumer())
    for i in range(3):
        await q.put(i)
    await q.join()
    event.set()
    async with cond:
        cond.notify_all()
    await c
    results["queue"] = got
    return results


@pytest.fixture(scope="module")
def stock_results():
    return asyncio.run(everything())  # ~1 s of real sleeping, once


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pure_coroutine_asyncio_works_under_every_strategy(strategy, stock_results):
    expected = stock_results
    for seed in range(10):
        assert seedloop.run(everything, seed=seed, strategy=strategy) == expected


def test_thread_mode_clock_moves_by_the_real_time_a_thread_took():
    import concurrent.futures
    import time

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # no timer pending meanwhile
            await loop.run_in_executor(pool, time.sleep, 0.05)
        return time.monotonic() - start

    # The clock moved by the real time the loop waited (before: not at all);
    # how much depends on when the loop began to wait, so only that it moved.
    assert seedloop.run(timed, executor="thread") > 0


def test_thread_mode_virtual_time_waits_for_real_thread_work():
    import time

    loop = SeedLoop(seed=0, strategy="fifo", executor="thread")

    async def main():
        # The job takes real time; the virtual timeout must not fire first.
        await asyncio.wait_for(loop.run_in_executor(None, time.sleep, 0.05), timeout=5)
        after_job = loop.time()
        await asyncio.sleep(1000)  # nothing in flight: instant again
        return after_job, loop.time() - after_job

    try:
        after_job, slept = loop.run_until_complete(main())
    finally:
        loop.close()
    # The clock moved by the real time the loop waited, which is the job's
    # 0.05 s less what passed before the loop began to wait (under load, most of it).
    assert 0 < after_job < 5
    assert slept == pytest.approx(1000)


def test_task_names_are_per_loop_and_a_factorys_names_are_kept():
    async def child():
        return asyncio.current_task().get_name()

    async def main():
        first = await asyncio.create_task(child())
        loop = asyncio.get_running_loop()

        def factory(loop, coro, **kwargs):
            task = asyncio.Task(coro, loop=loop, **kwargs)
            task.set_name("from-factory")
            return task

        loop.set_task_factory(factory)
        second = await asyncio.create_task(child())
        return first, second

    assert seedloop.run(main, seed=1) == seedloop.run(main, seed=2) == ("Task-2", "from-factory")


def test_a_task_factory_may_return_a_future_without_names():
    class Minimal(asyncio.Future):  # what some tests and tools return: no get_name/set_name
        def __init__(self, coro, loop):
            super().__init__(loop=loop)
            inner = asyncio.Task(coro, loop=loop)
            inner.add_done_callback(lambda t: self.set_result(t.result()))

    async def child():
        return 7

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda loop, coro, **kwargs: Minimal(coro, loop))
        return await loop.create_task(child())

    assert seedloop.run(main) == 7


def test_tasks_and_futures_hash_in_the_order_first_hashed():
    # Sets of tasks (asyncio.wait's done/pending, all_tasks) must iterate the
    # same way in every run: the hash is the loop's first-hash order, not an address.
    loop = seedloop.SeedLoop(seed=0)

    async def noop():
        return None

    late, early = loop.create_future(), loop.create_future()
    assert (hash(early), hash(late)) == (1, 2)
    assert hash(early) == 1  # stable once drawn
    first, second = loop.create_task(noop()), loop.create_task(noop())
    assert (hash(first), hash(second)) == (3, 4)  # tasks are hashed when created
    assert list({second, first, late, early}) == [early, late, first, second]
    loop.run_until_complete(asyncio.gather(first, second))
    loop.close()
    with pytest.raises(TypeError, match="tasks and futures only"):
        type(first).__hash__(object())


def test_a_task_keeps_the_number_its_own_loop_gave_it():
    # A task stepped more than once carries its ordinal (the trace's task
    # identity) on itself; another loop, or a number overwritten from Python,
    # never changes what a loop says a task is.
    async def spawn(scribble=False):
        async def worker():
            for junk in ("not a number", 10**30):
                if scribble:
                    asyncio.current_task()._seedloop_ordinal = junk
                await asyncio.sleep(0)

        tasks = [asyncio.ensure_future(worker()) for _ in range(6)]
        await asyncio.gather(*tasks)
        loop = asyncio.get_running_loop()
        return tasks, [loop.task_ordinal(t) for t in tasks]

    tasks, ordinals = seedloop.run(spawn, strategy="fifo")
    assert ordinals == [2, 3, 4, 5, 6, 7]  # main is 1
    assert [t._seedloop_ordinal for t in tasks] == ordinals

    async def ask_about(stranger):
        loop = asyncio.get_running_loop()
        first = loop.task_ordinal(stranger)
        return first, loop.task_ordinal(stranger), loop.task_ordinal(asyncio.current_task())

    # To a second loop, a task of the first is new: it numbers it itself.
    assert seedloop.run(lambda: ask_about(tasks[-1])) == (2, 2, 1)

    assert seedloop.run(lambda: spawn(scribble=True), strategy="fifo")[1] == ordinals
    for seed in range(5):  # the same decisions as runs that kept their numbers
        kept = seedloop.execute(spawn, seed, "shuffle")
        scribbled = seedloop.execute(lambda: spawn(scribble=True), seed, "shuffle")
        assert scribbled.fingerprint == kept.fingerprint


def test_a_run_is_in_asyncio_debug_mode_when_the_environment_asks(monkeypatch):
    async def debug_mode():
        return asyncio.get_running_loop().get_debug()

    assert seedloop.run(debug_mode) is False
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    assert seedloop.run(debug_mode) is True
    monkeypatch.delenv("PYTHONASYNCIODEBUG")
    monkeypatch.setattr(asyncio.coroutines, "_is_debug_mode", lambda: True)
    assert seedloop.run(debug_mode) is True


def test_call_soon_checks_its_arguments_like_the_stock_loop():
    loop = SeedLoop(seed=7, strategy="fifo")
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'callback'"):
        loop.call_soon()
    with pytest.raises(TypeError, match="unexpected keyword argument 'delay'"):
        loop.call_soon(print, delay=1)
    with pytest.raises(TypeError, match="a callable object was expected by call_soon"):
        loop.call_soon(42)
    seen = []
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    handle = loop.call_soon(lambda *a: seen.append((a, var.get())), 1, 2, context=ctx)
    assert handle._args == (1, 2) and handle.get_context() is ctx
    loop.call_soon(lambda: seen.append(((), var.get())))
    loop.run_until_complete(asyncio.sleep(0))
    assert sorted(seen) == [((), "outer"), ((1, 2), "inner")]
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)


def test_callbacks_get_every_argument_count_and_handles_in_cycles_are_collected():
    import gc
    import weakref

    loop = SeedLoop(seed=3, strategy="fifo")
    seen = []

    def record(*args):
        seen.append(args)

    handles = [loop.call_soon(record, *range(n)) for n in range(5)]
    assert [h._args for h in handles] == [tuple(range(n)) for n in range(5)]
    assert all(h._callback is record for h in handles)
    timer = loop.call_later(1, record, "t", "u", "v")
    assert timer._args == ("t", "u", "v")

    class Holder:
        """Keeps its own handles (as aiohttp and redis-py clients do): a cycle through them."""

        def tick(self, *args):
            seen.append(("tick", len(args)))

    refs = []
    for n in range(4):
        holder = Holder()
        holder.handle = loop.call_soon(holder.tick, *([holder] * n))
        holder.timer = loop.call_later(2, holder.tick, holder)
        refs.append(weakref.ref(holder))
        del holder
    loop.run_until_complete(asyncio.sleep(3))
    assert all(tuple(range(n)) in seen for n in range(5))
    assert ("t", "u", "v") in seen and seen.count(("tick", 1)) == 5
    loop.close()
    gc.collect()
    assert [r() for r in refs] == [None] * 4


@pytest.mark.parametrize("method", ["call_later", "call_at"])
def test_timer_methods_check_their_arguments_like_the_stock_loop(method):
    loop = SeedLoop(seed=7, strategy="fifo")
    schedule = getattr(loop, method)
    first = "delay" if method == "call_later" else "when"
    with pytest.raises(TypeError, match=f"missing 2 required positional arguments: '{first}'"):
        schedule()
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'callback'"):
        schedule(1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'name'"):
        schedule(1, print, name="x")
    with pytest.raises(TypeError, match=f"a callable object was expected by {method}"):
        schedule(1, 42)
    with pytest.raises(seedloop.SeedloopError):
        schedule(float("nan"), print)
    if method == "call_later":
        with pytest.raises(seedloop.SeedloopError, match="delay must be >= 0"):
            schedule(-1, print)
    seen = []
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    handle = schedule(0.5, lambda *a: seen.append((a, var.get(), loop.time())), 1, 2, context=ctx)
    assert handle._args == (1, 2) and handle.get_context() is ctx and handle.when() == 0.5
    schedule(0.25, lambda: seen.append(((), var.get(), loop.time())))
    cancelled = schedule(0.1, seen.append, "cancelled")
    cancelled.cancel()
    loop.run_until_complete(asyncio.sleep(1))
    assert seen == [((), "outer", 0.25), ((1, 2), "inner", 0.5)]
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        schedule(1, print)


# -- handles are reused only when nobody else can see them ----------------------


def test_a_handle_the_caller_keeps_is_never_reused(loop):
    log = []
    kept = [loop.call_soon(log.append, i) for i in range(3)]
    for i in range(3, 200):
        loop.call_soon(log.append, i)  # handles dropped by the caller: reusable
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert sorted(log) == list(range(200))
    assert [h._args for h in kept] == [(0,), (1,), (2,)]
    assert len({id(h) for h in kept}) == 3
    assert all(h._callback == log.append for h in kept)


def test_a_weakly_referenced_handle_dies_after_it_runs_like_the_stock_one():
    import gc
    import weakref

    def watched(loop):
        ref = weakref.ref(loop.call_soon(lambda: None))
        loop.call_soon(loop.stop)
        loop.run_forever()
        gc.collect()
        return ref() is None

    stock = asyncio.new_event_loop()
    try:
        assert watched(stock)
    finally:
        stock.close()
    ours = SeedLoop(seed=1)
    try:
        assert watched(ours)
        # and a new callback does not bring the old handle back to life
        ours.call_soon(ours.stop)
        ours.run_forever()
    finally:
        ours.close()


# -- loop.stop() and a patched clock, whichever way they are written ----------------


def test_stopping_written_under_a_name_built_at_run_time_stops_the_loop(loop):
    ran = []

    def tick():
        ran.append(1)
        if len(ran) == 3:
            setattr(loop, "_stop" + "ping", True)  # not the interned name
        loop.call_soon(tick)

    loop.call_soon(tick)
    loop.run_forever()
    assert len(ran) == 3
    assert loop._stopping is False  # reset by run_forever, as stock


def test_a_loop_class_that_redefines_stopping_still_stops():
    class Audited(SeedLoop):
        _stopping = False  # a class attribute: instances write their own

    loop = Audited(seed=3)
    try:
        fired = []
        loop.call_later(5, fired.append, "later")
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert fired == []
        loop.call_later(10, loop.stop)
        loop.run_forever()
        assert fired == ["later"]
    finally:
        loop.close()


def test_a_handle_an_exception_handler_keeps_stays_what_it_was(loop):
    kept = []
    loop.set_exception_handler(lambda lp, context: kept.append(context["handle"]))

    def boom(tag):
        raise ValueError(tag)

    loop.call_soon(boom, "first")
    for i in range(100):
        loop.call_soon(str, i)  # spent handles: reused meanwhile
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(kept) == 1
    assert kept[0]._callback is boom and kept[0]._args == ("first",)
    assert "boom('first')" in repr(kept[0])


def test_the_engine_create_task_called_on_something_else_raises_instead_of_crashing():
    # The C-level method is installed on a mixin, so its descriptor accepts any object.
    from seedloop._loop.tasks import _SeedTasks

    class LooksLikeALoop:  # every attribute the fast path reads, and no engine behind it
        _task_factory = _on_task_created = _seedloop_net = None
        _closed = _debug = False

    coro = asyncio.sleep(0)
    try:
        with pytest.raises(AttributeError, match="_create_task_slow"):
            _SeedTasks.create_task(LooksLikeALoop(), coro)
    finally:
        coro.close()


@pytest.mark.parametrize("how", ["alone", "behind a live timer", "purged"])
def test_a_dropped_cancelled_timer_may_call_back_into_the_loop(how):
    """The loop drops a cancelled timer it takes off its heap, and with it the
    timer's context; the last reference to an object whose ``__del__``
    schedules a callback may go with it. That callback must be scheduled (it
    deadlocked the loop before), before the clock moves on."""

    async def main():
        loop = asyncio.get_running_loop()
        called = []
        var = contextvars.ContextVar("var")

        class Sentinel:
            def __del__(self):
                called.append(("del at", loop.time()))
                loop.call_soon(called.append, "del")

        count = 300 if how == "purged" else 1
        if how == "behind a live timer":
            loop.call_later(5, called.append, "live")
        handles = []
        for _ in range(count):
            context = contextvars.copy_context()
            context.run(var.set, Sentinel())  # only the timer's context holds it
            handles.append(loop.call_later(10, called.append, "ran", context=context))
            del context
        for handle in handles:
            handle.cancel()  # drops the callback, not the context (as stock)
        del handles, handle
        if how == "purged":
            loop.call_later(1, called.append, "after")  # the purge runs here
        await asyncio.sleep(20)
        return called

    called = seedloop.run(main, seed=3)
    assert called.count("del") == (300 if how == "purged" else 1)
    assert "ran" not in called
    assert called.count("live") == (how == "behind a live timer")
    # Dropped when the loop reached the timer: at 10 s, or at 5 s right after
    # the live one (the heap's top), never after the clock passed on to 20.
    times = {t for item in called if isinstance(item, tuple) for t in item[1:]}
    assert times == ({0.0} if how == "purged" else {5.0} if how == "behind a live timer" else {0.0})


def test_handles_are_asyncio_handles_to_isinstance_as_on_a_stock_loop():
    async def kinds():
        loop = asyncio.get_running_loop()
        handles = [loop.call_soon(print), loop.call_later(1, print), loop.call_at(2, print)]
        for h in handles:
            h.cancel()
        return [
            (isinstance(h, asyncio.Handle), isinstance(h, asyncio.TimerHandle), h.__class__)
            for h in handles
        ]

    assert seedloop.run(kinds) == asyncio.run(kinds())


@pytest.mark.parametrize("kind", ["call_soon", "call_later"])
def test_cancelling_a_handle_releases_its_callback_as_stock_does(kind):
    """Stock asyncio's ``Handle.cancel()`` drops the callback and its arguments
    at once: a leak test that cancels a timer and checks a weak reference
    passes on it, and must pass under seedloop too."""
    import gc
    import weakref

    class Obj:
        def method(self, arg):
            pass

    async def main():
        loop = asyncio.get_running_loop()
        obj, arg = Obj(), Obj()
        refs = weakref.ref(obj), weakref.ref(arg)
        schedule = loop.call_soon if kind == "call_soon" else (lambda *a: loop.call_later(10, *a))
        handle = schedule(obj.method, arg)
        handle.cancel()
        del obj, arg
        gc.collect()
        own = []
        done = loop.create_future()

        def cancels_itself():
            own.append(mine._callback is not None)  # still there while it runs
            mine.cancel()
            done.set_result(None)

        mine = loop.call_soon(cancels_itself)
        await done
        shown = repr(handle).split(" when=")[0].rstrip(">")
        return (
            [r() is None for r in refs],
            handle._callback,
            shown,
            own,
            mine._callback,
            handle.cancelled(),
        )

    assert seedloop.run(main, seed=1) == asyncio.run(main())
