"""Instructions per operation with callgrind: load-independent figures for bench/RESULTS.md.

Wall-clock ratios (bench_loop.py) move with the machine's load; instruction
counts do not. Each figure runs one workload under ``valgrind
--tool=callgrind`` at two sizes and divides the difference by the operations
between them, so interpreter start-up and imports cancel out. CPython's
dict probe lengths (and with them every attribute lookup) depend on the hash
seed, so PYTHONHASHSEED is pinned (0 unless set).

    python bench/instructions.py                       # every workload x loop below
    python bench/instructions.py callsoon --loops shuffle rloop --top 20

Needs valgrind; rloop/uvloop rows only where they are installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# workload -> (small size, large size, what one unit is)
SIZES = {
    "callsoon": (50_000, 150_000, "call_soon callback"),
    "sleep0": (20_000, 60_000, "sleep(0) step, 100 tasks"),
    "churn": (50_000, 150_000, "task created, run and awaited"),
    "search": (2_000, 6_000, "demo run inside find_failing_seed"),
    "lone": (1_000, 3_000, "lone seedloop.run of the demo"),
}
LOOPS = ("shuffle", "random", "pct", "pos", "feasible", "auto", "rloop", "stock")


def child(workload: str, n: int, loop: str) -> None:
    """Run ``n`` units of ``workload`` on ``loop`` (inside valgrind)."""
    sys.path.insert(0, str(HERE))
    from workloads import call_soon_chain_factory, demo_scenario, sleep0_factory, task_churn_factory

    import seedloop

    if workload == "search":
        seedloop.find_failing_seed(demo_scenario, range(n), strategy="shuffle")
        return
    if workload == "lone":
        for seed in range(n):
            seedloop.run(demo_scenario, seed=seed, strategy="shuffle")
        return
    factory = {
        "callsoon": lambda: call_soon_chain_factory(n),
        "sleep0": lambda: sleep0_factory(100, max(n // 100, 1)),
        "churn": lambda: task_churn_factory(n),
    }[workload]()
    if loop == "stock":
        asyncio.run(factory())
    elif loop == "rloop":
        import rloop

        with asyncio.Runner(loop_factory=rloop.new_event_loop) as runner:
            runner.run(factory())
    else:
        options = {"steps": 1000} if loop == "pct" else {}
        seedloop.run(factory, strategy=loop, max_wall=None, **options)


def per_function(out: Path) -> tuple[int, dict[str, int]]:
    """Total and exclusive instructions per function of one callgrind profile."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(out)], capture_output=True, text=True, check=True
    ).stdout
    total, functions = 0, {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if not m:
            continue
        count, name = int(m.group(1).replace(",", "")), re.sub(r" \[.*\]$", "", m.group(2))
        if "PROGRAM TOTALS" in name:
            total = count
        else:
            name = name.split(":", 1)[-1] if "/" in name.split(":", 1)[0] else name
            functions[name] = functions.get(name, 0) + count
    return total, functions


def profile(workload: str, n: int, loop: str, tmp: Path) -> tuple[int, dict[str, int]]:
    out = tmp / f"{workload}.{loop}.{n}.out"
    env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}
    cmd = [sys.executable, __file__, "--child", workload, str(n), loop]
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return per_function(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=f"of {', '.join(SIZES)} (default: all)")
    parser.add_argument("--loops", nargs="+", choices=LOOPS, default=["shuffle", "rloop", "stock"])
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest functions per unit")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        workload, n, loop = args.child
        child(workload, int(n), loop)
        return 0
    unknown = [w for w in args.workloads if w not in SIZES]
    if unknown:
        parser.error(f"unknown workload {unknown[0]!r}; choose from {', '.join(SIZES)}")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    print(f"Python {sys.version.split()[0]}; PYTHONHASHSEED={os.environ.get('PYTHONHASHSEED', '0')}")
    print("\n| workload | loop | instructions per unit |\n|---|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads or list(SIZES):
            small, large, unit = SIZES[workload]
            loops = ["shuffle"] if workload in ("search", "lone") else args.loops
            for loop in loops:
                try:
                    (a, fa), (b, fb) = (profile(workload, n, loop, Path(tmp)) for n in (small, large))
                except subprocess.CalledProcessError:
                    print(f"| {unit} | {loop} | (did not run: not installed?) |")
                    continue
                print(f"| {unit} | {loop} | {round((b - a) / (large - small)):,} |")
                if args.top:
                    diff = {k: (fb.get(k, 0) - fa.get(k, 0)) / (large - small) for k in {*fa, *fb}}
                    for name, cost in sorted(diff.items(), key=lambda kv: -kv[1])[: args.top]:
                        print(f"|  | {name[:90]} | {cost:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
