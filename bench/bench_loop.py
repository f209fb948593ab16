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

    # 1. demo scenario: runs per second
    demo_runs = int(500 * scale)
    cases = {name: (lambda f=f: f(demo_scenario, demo_runs)) for name, f in impls.items()}
    for strategy in ("auto", "shuffle", "feasible", "fifo"):
        cases[f"seedloop {strategy}"] = lambda s=strategy: seeded(s)(demo_scenario, demo_runs)
    # The same runs as one search (the scenario returns, never raises, so
    # every seed runs): the world stays installed across the search.
    cases["seedloop find_failing_seed"] = lambda: seedloop.find_failing_seed(
        demo_scenario, range(demo_runs)
    )
    best = measure(cases, repeat)
    table_rows(f"demo scenario x{demo_runs} runs", "runs/s", demo_runs, best, rows)

    # 2. 100 tasks x 1000 sleep(0)
    tasks, iters = 100, int(1000 * scale)
    factory = sleep0_factory(tasks, iters)
    cases = {name: (lambda f=f: f(factory)) for name, f in impls.items()}
    for strategy in ("auto", "shuffle", "random", "pct", "pos", "feasible", "fifo"):
        cases[_label(strategy)] = lambda s=strategy: seeded(s)(factory)
    table_rows(
        f"{tasks} tasks x {iters} sleep(0)",
        "steps/s",
        tasks * iters,
        measure(cases, repeat),
        rows,
    )

    # 3. timers: 100 tasks x 50 random sleeps in [0, 1 ms)
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

    # 4. ping-pong through two asyncio.Queues
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
