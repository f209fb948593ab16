"""The loop benchmarks' workloads, defined once, importable without seedloop or any loop.

bench/bench_loop.py and bench/peers_bench.py both time these. Nothing here
imports seedloop, uvloop or rloop: peers_bench.py measures each tool in a
fresh process holding only that tool, and a tool whose runs end in a full
``gc.collect()`` pays for every object another package put on the heap.
"""

from __future__ import annotations

import ast
import asyncio
import random
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_demo_scenario() -> Callable[[], object]:
    """The ``scenario`` of examples/demo.py itself, not a copy.

    Only that function is compiled (with the ``asyncio`` it uses), so loading
    it does not import seedloop the way running demo.py's module would.
    """
    path = ROOT / "examples" / "demo.py"
    tree = ast.parse(path.read_text(), str(path))
    (node,) = [n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "scenario"]
    namespace: dict[str, object] = {"asyncio": asyncio}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["scenario"]  # type: ignore[return-value]


demo_scenario = _load_demo_scenario()


# -- workloads ----------------------------------------------------------------


def sleep0_factory(tasks: int = 100, iterations: int = 1000):
    async def scenario():
        async def worker():
            for _ in range(iterations):
                await asyncio.sleep(0)

        await asyncio.gather(*(worker() for _ in range(tasks)))

    return scenario


def timers_factory(tasks: int = 100, sleeps: int = 50, max_delay: float = 0.001):
    """Many tasks sleeping random durations (virtual on seedloop, real on stock)."""

    async def scenario():
        rng = random.Random(1234)
        delays = [[rng.random() * max_delay for _ in range(sleeps)] for _ in range(tasks)]

        async def worker(mine):
            for d in mine:
                await asyncio.sleep(d)

        await asyncio.gather(*(worker(d) for d in delays))

    return scenario


def queue_pingpong_factory(messages: int = 10_000):
    async def scenario():
        ping: asyncio.Queue[int] = asyncio.Queue()
        pong: asyncio.Queue[int] = asyncio.Queue()

        async def server():
            while True:
                n = await ping.get()
                if n < 0:
                    return
                await pong.put(n + 1)

        srv = asyncio.ensure_future(server())
        total = 0
        for i in range(messages):
            await ping.put(i)
            total += await pong.get()
        await ping.put(-1)
        await srv
        return total

    return scenario


def future_pingpong_factory(messages: int = 10_000):
    async def scenario():
        loop = asyncio.get_running_loop()
        box: list[asyncio.Future[int]] = [loop.create_future()]
        back: list[asyncio.Future[int]] = [loop.create_future()]

        async def echo():
            for _ in range(messages):
                n = await box[0]
                box[0] = loop.create_future()
                back[0].set_result(n)

        task = asyncio.ensure_future(echo())
        total = 0
        for i in range(messages):
            fut = back[0]
            box[0].set_result(i)
            total += await fut
            back[0] = loop.create_future()
        await task
        return total

    return scenario


def call_soon_chain_factory(callbacks: int = 200_000):
    """One callback that schedules the next with ``call_soon``, ``callbacks`` times."""

    async def scenario():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        left = [callbacks]

        def step():
            left[0] -= 1
            if left[0]:
                loop.call_soon(step)
            else:
                done.set_result(None)

        loop.call_soon(step)
        await done

    return scenario


def task_churn_factory(tasks: int = 200_000, batch: int = 1000):
    """``tasks`` short tasks, created ``batch`` at a time and awaited in order."""

    async def scenario():
        loop = asyncio.get_running_loop()

        async def noop():
            return None

        for _ in range(tasks // batch):
            pending = [loop.create_task(noop()) for _ in range(batch)]
            for task in pending:
                await task

    return scenario


# -- the floor: bare coroutine stepping, no event loop ----------------------------


class _Switch:
    """Awaiting it suspends the coroutine once (what ``sleep(0)`` does, minus the loop)."""

    __slots__ = ()

    def __await__(self):
        yield


_SWITCH = _Switch()


class _RoundRobin:
    """Awaits coroutines by stepping them in turn: a gather without tasks or a loop."""

    __slots__ = ("coros",)

    def __init__(self, *coros):
        self.coros = coros

    def __await__(self):
        results = [None] * len(self.coros)
        live = list(enumerate(self.coros))
        while live:
            still = []
            for i, coro in live:
                try:
                    coro.send(None)
                    still.append((i, coro))
                except StopIteration as stop:
                    results[i] = stop.value
            live = still
            if live:
                yield
        return results


def _drive(coro):
    while True:
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value


async def _floor_demo():
    """The demo scenario's three coroutines and switches (examples/demo.py), stepped bare."""
    state = {"ready": False, "data": None}

    async def producer():
        state["data"] = 42
        await _SWITCH
        state["ready"] = True

    async def consumer():
        await _SWITCH
        return state["data"] if state["ready"] else "MISSED"

    _, seen = await _RoundRobin(producer(), consumer())
    return seen


def floor_demo(runs: int) -> None:
    for _ in range(runs):
        _drive(_floor_demo())


def floor_sleep0(tasks: int, iterations: int) -> None:
    async def worker():
        for _ in range(iterations):
            await _SWITCH

    _drive(_RoundRobin(*(worker() for _ in range(tasks))).__await__())
