"""Peak memory of one long run: the bytes a run keeps per step.

Each measurement runs in a fresh interpreter and prints its peak resident
set size (ru_maxrss), the baseline of an interpreter that imported seedloop
and ran one tiny scenario, and the difference per step.

    python bench/memory.py                    # 10,000,000 steps, shuffle
    python bench/memory.py --steps 1000000 --strategy pct
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import asyncio, json, resource, sys, time
import seedloop

steps, strategy = int(sys.argv[1]), sys.argv[2]

async def scenario():
    # Two tasks taking turns: every await is one loop step per task.
    async def worker():
        for _ in range(steps // 2):
            await asyncio.sleep(0)
    await asyncio.gather(worker(), worker())

started = time.perf_counter()
result = seedloop.execute(scenario, 0, strategy, max_steps=steps + 1000)
elapsed = time.perf_counter() - started
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"steps": result.steps, "peak_kb": peak_kb, "seconds": elapsed,
                  "fingerprint": result.fingerprint, "tape_len": len(result.tape)}))
"""


def measure(steps: int, strategy: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), strategy],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--strategy", default="shuffle")
    args = parser.parse_args()
    base = measure(100, args.strategy)
    big = measure(args.steps, args.strategy)
    per_step = (big["peak_kb"] - base["peak_kb"]) * 1024 / max(big["steps"], 1)
    print(f"baseline (100 steps): peak RSS {base['peak_kb'] / 1024:.1f} MB")
    print(
        f"{big['steps']:,} steps ({args.strategy}): peak RSS {big['peak_kb'] / 1024:.1f} MB, "
        f"{per_step:.1f} bytes/step above the baseline, {big['seconds']:.1f} s, "
        f"fingerprint {big['fingerprint']}"
    )


if __name__ == "__main__":
    main()
