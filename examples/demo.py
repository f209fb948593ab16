"""The seed's demo: a 'use before ready' race that stock asyncio never shows.

Every number printed is computed by this run. The calls are exactly the seed
README's (no strategy named), so they use seedloop's default strategy,
``auto``: the strongest on bench/corpus. This race needs only one reordering,
so every reordering strategy shows it in about half the seeds; the seed's own
per-iteration permutation is still there as ``strategy="shuffle"``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

import seedloop


async def scenario():
    state = {"ready": False, "data": None}

    async def producer():
        state["data"] = 42
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer():
        await asyncio.sleep(0)
        return state["data"] if state["ready"] else "MISSED"

    _, seen = await asyncio.gather(producer(), consumer())
    return seen


def main(seeds: int = 1000, default_runs: int = 50, repro_runs: int = 100) -> int:
    default = Counter(asyncio.run(scenario()) for _ in range(default_runs))

    run = seedloop.run  # seedloop loads its modules on first use: not part of the timing
    started = time.perf_counter()
    outcomes = Counter(run(scenario, seed=s) for s in range(seeds))
    elapsed = time.perf_counter() - started

    hit = seedloop.find_seed_where(scenario, lambda r: r == "MISSED", range(seeds))
    rows = [
        ("default asyncio", f"({default_runs} runs)", dict(default)),
        ("seedloop", f"({seeds} seeds)", dict(outcomes)),
    ]
    print(f"{'outcome':<34} result")
    for name, runs, counts in rows:
        print(f"{name + ' ' + runs:<34} {counts}")
    missed = outcomes.get("MISSED", 0)
    print(f"{'':<34} the race surfaces in {missed}/{seeds} seeds ({100 * missed / seeds:.1f}%)")
    if hit is None:
        print("no seed exposed the race")
        return 1
    seed, _ = hit
    again = sum(seedloop.run(scenario, seed=seed) == "MISSED" for _ in range(repro_runs))
    print(f"{'reproduction':<34} seed {seed} reproduces MISSED in {again}/{repro_runs} runs")
    print(
        f"\n({seeds} seeded runs took {elapsed * 1000:.0f} ms: {seeds / elapsed:,.0f} runs/s; "
        f"strategy {seedloop.DEFAULT_STRATEGY!r}, seedloop's default)"
    )
    return 0 if again == repro_runs else 1


if __name__ == "__main__":
    sys.exit(main())
