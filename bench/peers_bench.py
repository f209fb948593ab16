"""Issue 10's table with the deterministic-simulation peers: seedloop, the loops and each DST tool side by side.

Four rows, each a workload of bench/workloads.py (the ones bench_loop.py
times): 100 tasks x 1000 ``sleep(0)`` (us/step), a 200k ``call_soon`` chain
(us/callback), 200k task churn (us/task) and the demo's tiny two-task
scenario (us/run), the last both as lone runs (each tool's "run one seed"
entry point, one call per seed) and inside each tool's own multi-seed search.

Every figure is one measurement in a fresh process that imports only the tool
it times (a warm-up of the same workload first, untimed); the rounds
interleave the tools, and the table shows each figure's minimum over the
rounds. The peers need Python >= 3.12 (simloom, simloop); install them and
the loops with bench/requirements-peers.txt into a separate environment:

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -r bench/requirements-peers.txt
    PYTHONPATH=python /tmp/peers-venv/bin/python bench/peers_bench.py --repeat 5
    PYTHONPATH=python /tmp/peers-venv/bin/python bench/peers_bench.py --quick   # a tenth of the work, 1 round

A tool that is not installed shows "-". Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workloads import (
    call_soon_chain_factory,
    demo_scenario,
    floor_demo,
    floor_sleep0,
    sleep0_factory,
    task_churn_factory,
)

HERE = Path(__file__).resolve().parent

# The table's rows: key -> (title, unit of one operation).
ROWS = {
    "sleep0": "100 tasks x 1000 `sleep(0)`, us/step",
    "call_soon": "200k `call_soon` chain, us/callback",
    "churn": "200k task churn, us/task",
    "tiny": "tiny two-task scenario, us/run: a lone run per seed",
    "search": "tiny two-task scenario, us/run: in the tool's own search",
}

# The table's columns, in order: case -> header.
COLUMNS = {
    "floor": "floor (bare coroutines)",
    "rloop": "rloop",
    "uvloop": "uvloop",
    "stock": "stock asyncio",
    "seedloop-shuffle": "seedloop shuffle",
    "seedloop-auto": "seedloop auto",
    "simloom": "simloom",
    "simloop": "simloop",
    "detangle": "detangle",
    "frontrun": "frontrun",
}
REFERENCE = "seedloop-shuffle"  # every ratio in the table is to this column

# Why a cell is "-": (case, row) -> footnote. These are limits of the tool's
# model, not of this harness.
CANNOT = {
    ("floor", "call_soon"): "the floor steps coroutines with no loop: no `call_soon`, no tasks",
    ("floor", "churn"): "the floor steps coroutines with no loop: no `call_soon`, no tasks",
    ("floor", "search"): "no search: the floor is one schedule",
    ("rloop", "search"): "an event loop has no seeds to search",
    ("uvloop", "search"): "an event loop has no seeds to search",
    ("stock", "search"): "an event loop has no seeds to search",
    ("frontrun", "call_soon"): (
        "frontrun schedules the worker coroutines it is given at their awaits; a `call_soon` callback "
        "runs on the stock loop underneath, outside its scheduler, so the row would time stock asyncio"
    ),
    ("frontrun", "churn"): (
        "frontrun schedules only the worker coroutines it is given; tasks a worker creates run on the "
        "stock loop underneath, outside its scheduler, so the row would time stock asyncio"
    ),
}

# Cases measured once per invocation, not once per round: frontrun's random
# async explorer spends over 2 ms per `sleep(0)` on 100 workers (about 220 s
# for the row), so repeating it would take the whole window.
ONCE = {("frontrun", "sleep0")}

PACKAGES = {
    "rloop": "rloop",
    "uvloop": "uvloop",
    "simloom": "simloom",
    "simloop": "simloop",
    "detangle": "detangle",
    "frontrun": "frontrun",
}


# -- the child: one measurement ------------------------------------------------------


def _sizes(scale: float) -> dict[str, int]:
    return {
        "iterations": max(10, int(1000 * scale)),
        "callbacks": max(1000, int(200_000 * scale)),
        "tasks": max(1000, int(200_000 * scale)),
        "runs": max(20, int(300 * scale)),
    }


def _loop_runner(case: str) -> Callable[[Callable[[], object]], None]:
    """One ``asyncio.run`` of a workload on the named event loop."""
    if case == "stock":
        return lambda factory: asyncio.run(factory())
    new_loop = __import__(case).new_event_loop
    return lambda factory: asyncio.run(factory(), loop_factory=new_loop)


def _single(case: str) -> Callable[[Callable[[], object], int], object]:
    """Each tool's documented way to run one coroutine factory under one seed."""
    if case.startswith("seedloop-"):
        import seedloop

        strategy = case.removeprefix("seedloop-")
        return lambda factory, seed: seedloop.run(factory, seed=seed, strategy=strategy)
    if case == "simloom":
        import simloom

        # simloom.run returns a RunResult (it raises on an error by default).
        return lambda factory, seed: simloom.run(factory, seed=seed).value
    if case == "simloop":
        import simloop

        # simloop has no lone-run function: its pytest replay option runs
        # explore() over the one seed, so that is its "run one seed".
        def run(factory, seed):
            report = simloop.explore(factory, (seed,))
            if report is not None:
                raise report.exception

        return run
    if case == "detangle":
        import detangle

        # detangle.run's default step budget (200,000) is below the call_soon
        # and churn rows; raising it changes no schedule.
        return lambda factory, seed: detangle.run(factory, seed=seed, max_steps=10_000_000)
    raise ValueError(case)


def _frontrun_demo_workers():
    """The demo's producer and consumer as frontrun workers over one shared state.

    frontrun explores a list of worker coroutines (each given the state that
    ``setup`` built) instead of running a coroutine under a loop, so the
    demo's two gathered coroutines become its two workers; the bodies are the
    demo's.
    """

    def setup():
        return {"ready": False, "data": None, "seen": None}

    async def producer(state):
        state["data"] = 42
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer(state):
        await asyncio.sleep(0)
        state["seen"] = state["data"] if state["ready"] else "MISSED"

    return setup, [producer, consumer]


def _frontrun_explore(seeds: range, **options) -> int:
    """frontrun's async explorer, awaited once per seed inside one stock loop; returns the runs made.

    ``frontrun.explore`` is a coroutine for async workers, awaited by an
    async test; one ``asyncio.run`` around all the seeds keeps the caller's
    loop out of the per-run figure.
    """
    import frontrun

    setup, workers = _frontrun_demo_workers()

    async def main():
        made = 0
        for seed in seeds:
            result = await frontrun.explore(
                setup=setup, workers=workers, invariant=lambda state: True, seed=seed, **options
            )
            made += result.num_explored
        return made

    return asyncio.run(main())


def _search(case: str, runs: int) -> Callable[[], int]:
    """Each tool's own multi-seed search over ``runs`` seeds; returns the runs it made.

    The demo returns rather than raises, so every search runs every seed.
    """
    if case.startswith("seedloop-"):
        import seedloop

        strategy = case.removeprefix("seedloop-")

        def run() -> int:
            assert seedloop.find_failing_seed(demo_scenario, range(runs), strategy=strategy) is None
            return runs

        return run
    if case == "simloom":
        import simloom

        return lambda: simloom.explore(demo_scenario, runs=runs).runs
    if case == "simloop":
        import simloop

        def run() -> int:
            assert simloop.explore(demo_scenario, range(runs)) is None
            return runs

        return run
    if case == "detangle":
        import detangle

        # strategy="random": the default ("auto") may stop early once its
        # bounded search is exhausted; database=False keeps the run off disk.
        return lambda: detangle.explore(
            demo_scenario, runs=runs, strategy="random", seed=0, database=False, shrink=False
        ).runs
    if case == "frontrun":
        return lambda: _frontrun_explore(range(1), strategy="random", max_attempts=runs)
    raise ValueError(case)


def _frontrun_steps(tasks: int, iterations: int) -> None:
    import frontrun

    async def worker(state):
        for _ in range(iterations):
            await asyncio.sleep(0)

    async def main():
        result = await frontrun.explore(
            setup=dict,
            workers=worker,
            count=tasks,
            invariant=lambda state: True,
            strategy="random",
            max_attempts=1,
            seed=0,
            # its defaults (100 schedule entries, 5 s per run) end the row early
            max_ops=10 * tasks * iterations,
            timeout_per_run=3600,
        )
        assert result.property_holds, result

    asyncio.run(main())


def _job(case: str, row: str, sizes: dict[str, int]) -> tuple[Callable[[int], object], int, int]:
    """(do(size), full size, warm-up size) for one case and row; size counts operations."""
    tasks = 100
    if row == "sleep0":
        full, warm = tasks * sizes["iterations"], tasks * 10
        if case == "floor":
            return (lambda n: floor_sleep0(tasks, n // tasks)), full, warm
        if case == "frontrun":
            return (lambda n: _frontrun_steps(tasks, n // tasks)), full, warm
        factory: Callable[[int], Callable[[], object]] = lambda n: sleep0_factory(tasks, n // tasks)  # noqa: E731
    elif row == "call_soon":
        full, warm, factory = sizes["callbacks"], 1000, call_soon_chain_factory
    elif row == "churn":
        full, warm, factory = sizes["tasks"], 1000, task_churn_factory
    elif row == "tiny":
        full, warm = sizes["runs"], 10
        if case == "floor":
            return floor_demo, full, warm
        if case == "frontrun":
            return (lambda n: _frontrun_explore(range(n), strategy="random", max_attempts=1)), full, warm
        if case in ("rloop", "uvloop", "stock"):
            run = _loop_runner(case)
            return (lambda n: [run(demo_scenario) for _ in range(n)]), full, warm
        single = _single(case)
        return (lambda n: [single(demo_scenario, s) for s in range(n)]), full, warm
    elif row == "search":
        full, warm = sizes["runs"], 10

        def search(n: int) -> None:
            made = _search(case, n)()
            assert made == n, f"{case} ran {made} of {n} seeds"

        return search, full, warm
    else:
        raise ValueError(row)
    if case in ("rloop", "uvloop", "stock"):
        run = _loop_runner(case)
        return (lambda n: run(factory(n))), full, warm
    single = _single(case)
    return (lambda n: single(factory(n), 0)), full, warm


def child(case: str, row: str, scale: float) -> None:
    do, full, warm = _job(case, row, _sizes(scale))
    do(warm)
    gc.collect()
    started = time.perf_counter()
    do(full)
    elapsed = time.perf_counter() - started
    print(json.dumps({"us": elapsed / full * 1e6}))


# -- the parent: rounds of fresh processes --------------------------------------------


def _installed(case: str) -> bool:
    if case.startswith("seedloop-"):
        probe = subprocess.run(
            [sys.executable, "-c", "import seedloop"], capture_output=True, env=os.environ.copy()
        )
        return probe.returncode == 0
    package = PACKAGES.get(case)
    if package is None:
        return True
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _versions() -> str:
    seedloop = subprocess.run(
        [sys.executable, "-c", "import seedloop; print(seedloop.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    parts = [f"CPython {platform.python_version()}", f"seedloop {seedloop or '?'} ({commit or '?'})"]
    for package in PACKAGES.values():
        try:
            parts.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def _measure(case: str, row: str, scale: float, timeout: float) -> float | None:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", case, row, str(scale)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {case} / {row}: no result within {timeout:.0f} s", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"  {case} / {row} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["us"]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _cell(us: float | None, ref: float | None, mark: str = "") -> str:
    if us is None:
        return "-" + mark
    figure = f"{us:,.0f}" if us >= 100 else f"{us:.2f}" if us < 10 else f"{us:.1f}"
    ratio = f" ({us / ref:.2f}x)" if ref else ""
    return figure + ratio + mark


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="rounds (the table shows minima)")
    ap.add_argument("--quick", action="store_true", help="a tenth of the work, 1 round")
    ap.add_argument("--only", nargs="+", choices=list(COLUMNS), help="measure only these columns")
    ap.add_argument("--rows", nargs="+", choices=list(ROWS), help="measure only these rows")
    ap.add_argument("--skip-slow", action="store_true", help="leave out frontrun's row 1 (minutes)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    ap.add_argument("--child", nargs=3, metavar=("CASE", "ROW", "SCALE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        case, row, scale = args.child
        child(case, row, float(scale))
        return 0

    repeat = 1 if args.quick else args.repeat
    scale = 0.1 if args.quick else 1.0
    cases = [c for c in (args.only or COLUMNS) if _installed(c)]
    rows = args.rows or list(ROWS)
    jobs = [(c, r) for r in rows for c in cases if (c, r) not in CANNOT]
    if args.skip_slow:
        jobs = [job for job in jobs if job not in ONCE]
    best: dict[tuple[str, str], float] = {}
    loads = [_load()]
    started = time.monotonic()
    for round_no in range(repeat):
        for case, row in jobs:
            if (case, row) in ONCE and round_no:
                continue
            us = _measure(case, row, scale, args.timeout)
            if us is not None:
                best[(case, row)] = min(best.get((case, row), us), us)
        loads.append(_load())
        print(f"round {round_no + 1}/{repeat} done, load average {loads[-1]}", file=sys.stderr)

    minutes = (time.monotonic() - started) / 60
    print(
        f"{_versions()}; {os.cpu_count()} CPUs; {platform.machine()}; min of {repeat} round(s) of fresh "
        f"processes, {minutes:.1f} min; load average (1/5/15 min) before {loads[0]}, "
        f"after each round {' | '.join(loads[1:])}\n"
    )
    columns = [c for c in COLUMNS if c in cases]
    print(f"Per operation, us; in brackets: the figure / {COLUMNS[REFERENCE]}'s on the same row (above 1 = slower than seedloop)\n")
    print("| work | " + " | ".join(COLUMNS[c] for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    notes: dict[str, int] = {}  # footnote -> its number (one number per distinct reason)
    for row in rows:
        ref = best.get((REFERENCE, row))
        cells = []
        for case in columns:
            mark = ""
            why = CANNOT.get((case, row))
            if (case, row) in ONCE:
                why = None if (case, row) in best else f"{case}: left out (--skip-slow) or no result"
                mark = " (1 run)" if why is None else ""
            if why is not None:
                mark = f" [{notes.setdefault(why, len(notes) + 1)}]"
            cells.append(_cell(best.get((case, row)), ref if case != REFERENCE else None, mark))
        print(f"| {ROWS[row]} | " + " | ".join(cells) + " |")
    if notes:
        print()
        for note, n in notes.items():
            print(f"[{n}] {note}")
    if args.quick:
        print("\n(--quick: a tenth of each row's work, so the row titles overstate the sizes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
