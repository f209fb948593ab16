"""Loop benchmarks: seedloop against stock asyncio (and uvloop, rloop when installed).

Every ratio compares numbers measured in this one process run, each the
minimum over ``--repeat`` repetitions; the implementations are interleaved
inside every repetition so machine load hits them alike. Nothing here is a
test: there are no timed assertions, only a markdown table.

    python bench/bench_loop.py            # full run (about a minute)
    python bench/bench_loop.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import seedloop

try:  # optional
    import uvloop
except ImportError:  # pragma: no cover - depends on the machine
    uvloop = None
try:  # optional: a Rust event loop (pip install rloop)
    import rloop
except ImportError:  # pragma: no cover - depends on the machine
    rloop = None

ROOT = Path(__file__).resolve().parent.parent


def _load_demo_scenario() -> Callable[[], object]:
    """The scenario of examples/demo.py itself, not a copy."""
    spec = importlib.util.spec_from_file_location("seedloop_demo", ROOT / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.scenario


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


# -- runners ------------------------------------------------------------------


def stock(factory, runs: int = 1) -> None:
    for _ in range(runs):
        asyncio.run(factory())


def _with_loop(new_event_loop):
    def run(factory, runs: int = 1) -> None:
        for _ in range(runs):
            if sys.version_info >= (3, 12):
                asyncio.run(factory(), loop_factory=new_event_loop)
            else:
                with asyncio.Runner(loop_factory=new_event_loop) as runner:
                    runner.run(factory())

    return run


def stock_runner(factory, runs: int = 1) -> None:
    """asyncio on one reused ``asyncio.Runner`` (no loop built per run)."""
    with asyncio.Runner() as runner:
        for _ in range(runs):
            runner.run(factory())


def seeded(strategy: str):
    def runner(factory, runs: int = 1) -> None:
        options = {}
        if strategy == "pct":
            # Give PCT its k up front: without it every seedloop.run(strategy="pct")
            # first runs a fifo pilot to estimate k (find_failing_seed does that
            # once per search), which would time two runs instead of one.
            options["steps"] = _pilot_steps(factory)
        for s in range(runs):
            seedloop.run(factory, seed=s, strategy=strategy, **options)

    return runner


def _label(strategy: str) -> str:
    return "seedloop pct (k given)" if strategy == "pct" else f"seedloop {strategy}"


_PILOT: dict[object, int] = {}


def _pilot_steps(factory) -> int:
    if factory not in _PILOT:
        _PILOT[factory] = seedloop.execute(factory, 0, "fifo").steps
    return _PILOT[factory]


def measure(cases: dict[str, Callable[[], None]], repeat: int) -> dict[str, float]:
    """Min wall time per case over ``repeat`` rounds, cases interleaved per round.

    One untimed warm-up round first (imports, caches, PCT's pilot estimate).
    """
    for fn in cases.values():
        fn()
    best = {name: float("inf") for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def table_rows(title: str, unit: str, work: float, best: dict[str, float], rows: list[list[str]]):
    base = best["asyncio.run"]
    for name, secs in best.items():
        rate = work / secs
        rows.append(
            [
                title,
                name,
                f"{secs * 1000:.1f} ms",
                f"{rate:,.0f} {unit}",
                f"{base / secs:.2f}x",
            ]
        )
        title = ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="3 repetitions, smaller workloads")
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    scale = 0.5 if args.quick else 1.0

    impls: dict[str, Callable] = {"asyncio.run": stock}
    if uvloop is not None:
        impls["uvloop"] = _with_loop(uvloop.new_event_loop)
    if rloop is not None:
        impls["rloop"] = _with_loop(rloop.new_event_loop)

    rows: list[list[str]] = []
    summary: dict[str, dict[str, float]] = {}  # workload -> case -> us per operation

    # 1. demo scenario: runs per second
    demo_runs = int(500 * scale)
    cases = {name: (lambda f=f: f(demo_scenario, demo_runs)) for name, f in impls.items()}
    if hasattr(asyncio, "Runner"):
        cases["asyncio Runner (reused)"] = lambda: stock_runner(demo_scenario, demo_runs)
    cases["floor: bare coroutines"] = lambda: floor_demo(demo_runs)
    for strategy in ("auto", "shuffle", "feasible", "fifo"):
        cases[f"seedloop {strategy}"] = lambda s=strategy: seeded(s)(demo_scenario, demo_runs)
    # The same runs as one search (the scenario returns, never raises, so
    # every seed runs): the world stays installed across the search.
    cases["seedloop find_failing_seed"] = lambda: seedloop.find_failing_seed(
        demo_scenario, range(demo_runs)
    )
    cases["seedloop find_failing_seed shuffle"] = lambda: seedloop.find_failing_seed(
        demo_scenario, range(demo_runs), strategy="shuffle"
    )
    best = measure(cases, repeat)
    table_rows(f"demo scenario x{demo_runs} runs", "runs/s", demo_runs, best, rows)
    summary["tiny"] = {k: v / demo_runs * 1e6 for k, v in best.items()}

    # 2. 100 tasks x 1000 sleep(0)
    tasks, iters = 100, int(1000 * scale)
    factory = sleep0_factory(tasks, iters)
    cases = {name: (lambda f=f: f(factory)) for name, f in impls.items()}
    cases["floor: bare coroutines"] = lambda: floor_sleep0(tasks, iters)
    for strategy in ("auto", "shuffle", "random", "pct", "pos", "feasible", "fifo"):
        cases[_label(strategy)] = lambda s=strategy: seeded(s)(factory)
    best = measure(cases, repeat)
    table_rows(f"{tasks} tasks x {iters} sleep(0)", "steps/s", tasks * iters, best, rows)
    summary["sleep0"] = {k: v / (tasks * iters) * 1e6 for k, v in best.items()}

    # 3. a call_soon chain and task churn (per callback, per task)
    for key, label, unit, count, factory in (
        (
            "call_soon",
            f"{int(200_000 * scale)} call_soon chain",
            "callbacks/s",
            int(200_000 * scale),
            call_soon_chain_factory(int(200_000 * scale)),
        ),
        (
            "churn",
            f"{int(200_000 * scale)} tasks churned",
            "tasks/s",
            int(200_000 * scale),
            task_churn_factory(int(200_000 * scale)),
        ),
    ):
        cases = {name: (lambda f=f, g=factory: f(g)) for name, f in impls.items()}
        for strategy in ("shuffle", "random", "pct", "feasible"):
            cases[_label(strategy)] = lambda s=strategy, g=factory: seeded(s)(g)
        best = measure(cases, repeat)
        table_rows(label, unit, count, best, rows)
        summary[key] = {k: v / count * 1e6 for k, v in best.items()}

    # 4. timers: 100 tasks x 50 random sleeps in [0, 1 ms)
    tasks, sleeps = 100, int(50 * scale)
    factory = timers_factory(tasks, sleeps)
    cases = {name: (lambda f=f: f(factory)) for name, f in impls.items()}
    for strategy in ("auto", "shuffle", "pct"):
        cases[_label(strategy)] = lambda s=strategy: seeded(s)(factory)
    table_rows(
        f"{tasks} tasks x {sleeps} random sleeps <1 ms",
        "timers/s",
        tasks * sleeps,
        measure(cases, repeat),
        rows,
    )

    # 5. ping-pong through two asyncio.Queues
    messages = int(10_000 * scale)
    for label, factory in (
        (f"Queue ping-pong x{messages}", queue_pingpong_factory(messages)),
        (f"Future ping-pong x{messages}", future_pingpong_factory(messages)),
    ):
        cases = {name: (lambda f=f, g=factory: f(g)) for name, f in impls.items()}
        for strategy in ("auto", "shuffle", "pct"):
            cases[_label(strategy)] = lambda s=strategy, g=factory: seeded(s)(g)
        table_rows(label, "round trips/s", messages, measure(cases, repeat), rows)

    load = os.getloadavg()
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"min of {repeat} repetitions; uvloop "
        f"{getattr(uvloop, '__version__', 'not installed')}, rloop "
        f"{getattr(rloop, '__version__', 'installed') if rloop else 'not installed'}\n"
    )
    header = ["workload", "loop", "best time", "throughput", "vs asyncio.run"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 2 + ["---:"] * 3) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print_summary(summary)
    return 0


def print_summary(summary: dict[str, dict[str, float]]) -> None:
    """The same minima per operation, one row per workload (issue 10's layout)."""

    def cell(work: str, case: str, floor: str | None = "floor: bare coroutines") -> str:
        us = summary.get(work, {}).get(case)
        if us is None:
            return "-"
        base = summary[work].get(floor) if floor else None
        return f"{us:.2f}" + (f" ({us / base:.1f}x)" if base and case != floor else "")

    print(
        "\nPer operation (us; in brackets: times the floor, the scenario's own "
        "coroutines stepped with no loop)\n"
    )
    cols = [
        ("floor", "floor: bare coroutines"),
        ("rloop", "rloop"),
        ("uvloop", "uvloop"),
        ("asyncio.run", "asyncio.run"),
        ("seedloop shuffle", "seedloop shuffle"),
        ("random", "seedloop random"),
        ("pct (k given)", "seedloop pct (k given)"),
        ("feasible", "seedloop feasible"),
    ]
    print("| work | " + " | ".join(c for c, _ in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for work, title in (
        ("sleep0", "100 tasks x sleep(0), us/step"),
        ("call_soon", "call_soon chain, us/callback"),
        ("churn", "task churn, us/task"),
    ):
        print(f"| {title} | " + " | ".join(cell(work, case) for _, case in cols) + " |")
    tiny = summary.get("tiny", {})
    if tiny:
        print(
            "\n| tiny two-task run (the demo), us/run | floor | asyncio.run | asyncio Runner "
            "(reused) | rloop (Runner per run) | seedloop.run shuffle | seedloop.run auto | "
            "find_failing_seed shuffle | find_failing_seed auto |"
        )
        print("|---|" + "---:|" * 8)
        cases = (
            "floor: bare coroutines",
            "asyncio.run",
            "asyncio Runner (reused)",
            "rloop",
            "seedloop shuffle",
            "seedloop auto",
            "seedloop find_failing_seed shuffle",
            "seedloop find_failing_seed",
        )
        print("| | " + " | ".join(cell("tiny", c) for c in cases) + " |")


if __name__ == "__main__":
    sys.exit(main())
