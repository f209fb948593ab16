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
import os
import platform
import sys
import time
from collections.abc import Callable

from workloads import (
    call_soon_chain_factory,
    demo_scenario,
    floor_demo,
    floor_sleep0,
    future_pingpong_factory,
    queue_pingpong_factory,
    sleep0_factory,
    task_churn_factory,
    timers_factory,
)

import seedloop

try:  # optional
    import uvloop
except ImportError:  # pragma: no cover - depends on the machine
    uvloop = None
try:  # optional: a Rust event loop (pip install rloop)
    import rloop
except ImportError:  # pragma: no cover - depends on the machine
    rloop = None


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
