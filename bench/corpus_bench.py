"""How fast does each strategy find the bugs of bench/corpus?

For every bug and strategy, ``seedloop.find_failing_seed`` searches
``--seeds`` seeds starting at several independent offsets (0, 10000,
20000, ...); the number of seeds tried until the first failure at each
offset gives a distribution, summarised by its median. A search that finds
nothing within the budget counts as "> budget" (censored): medians that are
censored are printed as ``>N``, and ratios computed from them are lower
bounds. Nothing is timed.

    python bench/corpus_bench.py                       # the full table
    python bench/corpus_bench.py --offsets 3 --bugs lost_update lock_order_deadlock
    python bench/corpus_bench.py --strategies pct --pct-depth 2   # one PCT variant
    python bench/corpus_bench.py --strategies pct --pct-steps auto  # k = true run length
    python bench/corpus_bench.py --offsets 1 --strategies auto random pos pct:2 pct:4
    python bench/corpus_bench.py --first-seed 1000000 --strategies random guided  # held out

A strategy written ``pct:D`` is pct with ``depth=D``. ``systematic`` is not
a seed strategy: it enumerates schedules (``explore(strategy="systematic")``,
default bound 2), with ``--seeds`` as its cap on runs; its cell is the number
of runs up to and including the first failing schedule (stopped runs
included), the same for every offset since nothing in it depends on a seed.
The last table gives,
per strategy, the bugs found and the total seeds to failure over all bugs
(a bug not found counts as budget + 1, so totals with misses are lower
bounds), and each total as a fraction of random's.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402

import seedloop  # noqa: E402

STRATEGIES = ("auto", "shuffle", "random", "pct", "pos", "strict", "guided")


def _quiet() -> None:
    # Failing runs log "Exception in callback" / "Task was destroyed": expected here.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")


def search(job: tuple[str, str, int, int, dict[str, object]]) -> tuple[str, str, int, int | None]:
    """Seeds tried until the first failure (None: none within the budget)."""
    _quiet()
    name, strategy, start, budget, options = job
    (module,) = corpus.load([name])
    if strategy == "systematic":
        summary = seedloop.explore(
            module.scenario, strategy="systematic", max_runs=budget, shrink=False, explain=False
        )
        return name, strategy, start, None if summary.failure is None else summary.seeds_run
    base, _, depth = strategy.partition(":")
    if depth:
        options = {**options, "depth": int(depth)}
    failure = seedloop.find_failing_seed(
        module.scenario, range(start, start + budget), strategy=base, **options
    )
    return name, strategy, start, None if failure is None else failure.seed - start + 1


def passes_in_stock_order(name: str) -> bool:
    _quiet()
    (module,) = corpus.load([name])
    try:
        seedloop.run(module.scenario, seed=0, strategy="fifo")
        return True
    except Exception:
        return False


def censored_median(samples: list[int | None], budget: int) -> tuple[float, bool]:
    """Median where None means '> budget'; returns (value, censored?)."""
    values = sorted(budget + 1 if s is None else s for s in samples)
    med = statistics.median(values)
    return med, med > budget


def fmt(value: float, censored: bool, budget: int) -> str:
    if censored:
        return f">{budget}"
    return f"{value:g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=1000, help="seed budget per search")
    ap.add_argument("--offsets", type=int, default=5, help="independent searches per cell")
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="start seed of the first search (others 10000 apart): a held-out set of searches",
    )
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--bugs", nargs="+", default=None, help="corpus module names")
    ap.add_argument("--pct-depth", type=int, default=None, help="depth= for pct")
    ap.add_argument(
        "--pct-steps",
        default=None,
        help="k (steps=) for pct: a number, or 'auto' for each bug's stock-order run length",
    )
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    _quiet()

    modules = corpus.load(args.bugs)
    names = [m.__name__.rsplit(".", 1)[-1] for m in modules]
    depth = {n: m.DEPTH for n, m in zip(names, modules, strict=True)}
    module_of = dict(zip(names, modules, strict=True))
    budget = args.seeds
    starts = [args.first_seed + i * 10_000 for i in range(args.offsets)]
    jobs = []
    for name in names:
        for strategy in args.strategies:
            options: dict[str, object] = {}
            if strategy.partition(":")[0] == "pct":
                if args.pct_depth is not None:
                    options["depth"] = args.pct_depth
                if args.pct_steps == "auto":
                    options["steps"] = seedloop.execute(module_of[name].scenario, 0, "fifo").steps
                elif args.pct_steps is not None:
                    options["steps"] = int(args.pct_steps)
            # systematic depends on no seed: one search stands for every offset.
            for start in starts[:1] if strategy == "systematic" else starts:
                jobs.append((name, strategy, start, budget, options))

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        stock_ok = dict(zip(names, pool.map(passes_in_stock_order, names), strict=True))
        results: dict[tuple[str, str], list[int | None]] = {}
        for name, strategy, _, tries in pool.map(search, jobs, chunksize=1):
            copies = len(starts) if strategy == "systematic" else 1
            results.setdefault((name, strategy), []).extend([tries] * copies)
    elapsed = time.perf_counter() - started

    load = os.getloadavg()
    print(
        f"{len(names)} bugs, {budget} seeds per search, {len(starts)} searches per cell "
        f"(start seeds {', '.join(map(str, starts))}); Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {load[0]:.2f}; {elapsed:.0f} s\n"
    )

    # Per bug: median seeds to first failure (found in how many searches).
    head = ["bug", "kind", "depth", "fifo"] + list(args.strategies)
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * 2 + [":-:"] * 2 + ["---:"] * len(args.strategies)) + "|")
    for m, name in zip(modules, names, strict=True):
        cells = []
        for strategy in args.strategies:
            samples = results[(name, strategy)]
            med, cens = censored_median(samples, budget)
            found = sum(s is not None for s in samples)
            cells.append(f"{fmt(med, cens, budget)} ({found}/{len(samples)})")
        fifo = "passes" if stock_ok[name] else "**FAILS**"
        print(f"| {name} | {m.KIND} | {m.DEPTH} | {fifo} | " + " | ".join(cells) + " |")

    # Per strategy: bugs found, medians, over all bugs and over depth >= 2.
    print()
    print(
        "| strategy | bugs found (any search) | bugs found (every search) "
        "| median seeds, all bugs | median seeds, depth >= 2 | depth >= 2 found |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    summary: dict[str, float] = {}
    deep = [n for n in names if depth[n] >= 2]
    for strategy in args.strategies:
        any_found = sum(any(s is not None for s in results[(n, strategy)]) for n in names)
        all_found = sum(all(s is not None for s in results[(n, strategy)]) for n in names)
        pooled = [s for n in names for s in results[(n, strategy)]]
        pooled_deep = [s for n in deep for s in results[(n, strategy)]]
        med, cens = censored_median(pooled, budget)
        med_d, cens_d = censored_median(pooled_deep, budget) if deep else (0.0, False)
        summary[strategy] = med_d
        deep_found = sum(any(s is not None for s in results[(n, strategy)]) for n in deep)
        print(
            f"| {strategy} | {any_found}/{len(names)} | {all_found}/{len(names)} "
            f"| {fmt(med, cens, budget)} | {fmt(med_d, cens_d, budget)} "
            f"| {deep_found}/{len(deep)} |"
        )
    # Per strategy: total seeds to first failure over every bug and search.
    print()
    print("| strategy | bugs found (every search) | total seeds to failure | vs random |")
    print("|---|---:|---:|---:|")
    totals = {
        st: sum(budget + 1 if s is None else s for n in names for s in results[(n, st)])
        for st in args.strategies
    }
    for strategy in args.strategies:
        all_found = sum(all(s is not None for s in results[(n, strategy)]) for n in names)
        missed = all_found < len(names)
        ratio = f"{totals[strategy] / totals['random']:.2f}" if "random" in totals else "-"
        print(
            f"| {strategy} | {all_found}/{len(names)} | {'>=' if missed else ''}"
            f"{totals[strategy]} | {ratio} |"
        )
    covered = sum(
        any(s is not None for st in args.strategies for s in results[(n, st)]) for n in names
    )
    print(f"\nbugs found within {budget} seeds by some strategy: {covered}/{len(names)}")
    if "pct" in summary and "shuffle" in summary and deep:
        ratio = summary["shuffle"] / summary["pct"]
        censored = summary["shuffle"] > budget
        bound = " (a lower bound: shuffle's median is censored)" if censored else ""
        print(f"depth >= 2: shuffle median / pct median = {ratio:.1f}x{bound}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
