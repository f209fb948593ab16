"""The demo's run on ONE reused loop per implementation: what asyncio's own machinery costs.

    python bench/reused_loop.py            # 20,000 runs each, min of 5 rounds

Each loop runs ``examples/demo.py``'s scenario (``gather`` of two tasks,
two ``sleep(0)``) with ``loop.run_until_complete`` over and over, so neither
loop construction, nor a world, nor a result is counted: only the tasks,
``gather``, the steps and the loop's own ``run_until_complete``. This is the
least any of them can spend on a run of that scenario, against the floor of
``bench_loop.py`` (the same coroutines stepped bare, no asyncio at all).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seedloop  # noqa: E402
from examples.demo import scenario  # noqa: E402


def factories() -> dict[str, Callable[[], Any]]:
    found: dict[str, Callable[[], Any]] = {"stock": asyncio.new_event_loop}
    try:
        import uvloop

        found["uvloop"] = uvloop.new_event_loop
    except ImportError:
        pass
    try:
        import rloop

        found["rloop"] = rloop.new_event_loop
    except ImportError:
        pass
    found["seedloop"] = lambda: seedloop.SeedLoop(0, "shuffle")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, make in factories().items():
            loop = make()
            asyncio.set_event_loop(loop)
            for _ in range(200):  # warm up
                loop.run_until_complete(scenario())
            started = time.perf_counter()
            for _ in range(args.runs):
                loop.run_until_complete(scenario())
            per_run = (time.perf_counter() - started) / args.runs * 1e6
            best[name] = min(best.get(name, per_run), per_run)
            asyncio.set_event_loop(None)
            loop.close()
    print(f"Python {sys.version.split()[0]}; us per run of the demo on one reused loop (min of {args.rounds}):")
    for name, us in best.items():
        print(f"  {name:9s} {us:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
