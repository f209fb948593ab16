"""Times one exploration of the demo scenario with -j N: the whole-command figure for issue 10.

    python bench/parallel_bench.py -j 1            # 40,000 seeds, serial
    python bench/parallel_bench.py -j 2            # the same seeds on two worker processes
    python bench/parallel_bench.py -j 2 --check    # also run -j 1 here and compare the summaries
    python bench/parallel_bench.py -j 2 --seeds 1000000   # peak memory: the same as for 100,000

Prints the summary's counts (seeds run, failures, outcomes, interleavings,
first failing position) so runs with different ``-j`` can be compared, the
exploration's wall time, the CPU seconds of this process and of its
worker processes, and their peak resident memory. Time the whole command
from outside (paired runs of -j 1 and -j 2) for the figure that counts
start-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # examples.demo importable by name, here and in workers

import seedloop  # noqa: E402

TARGET = "examples.demo:scenario"


def summary_key(summary: seedloop.Exploration) -> tuple[object, ...]:
    """What must not depend on -j."""
    return (
        summary.seeds_run,
        summary.failures,
        summary.failure_index,
        tuple(summary.failing_seeds),
        tuple(sorted(summary.outcomes.items())),
        summary.interleavings,
        summary.stopped_early,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=40_000)
    parser.add_argument("--strategy", default=seedloop.DEFAULT_STRATEGY)
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument("--check", action="store_true", help="compare with a -j 1 run")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))  # spawned workers find examples/ too

    explore = seedloop.explore  # loaded on first use: timed apart from the search
    started = time.perf_counter()
    summary = explore(
        TARGET,
        range(args.seeds),
        strategy=args.strategy,
        jobs=args.jobs,
        stop_on_failure=args.stop_on_failure,
    )
    elapsed = time.perf_counter() - started
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"-j {args.jobs}: {summary.seeds_run} seeds, {summary.failures} failing, "
        f"{len(summary.outcomes)} outcomes {dict(summary.outcomes)}, "
        f"{summary.interleavings} interleavings, first failure at {summary.failure_index}"
    )
    print(
        f"explore {elapsed:.3f} s wall; cpu: parent {me.ru_utime + me.ru_stime:.3f} s, "
        f"workers {kids.ru_utime + kids.ru_stime:.3f} s; peak RSS: parent "
        f"{me.ru_maxrss / 1024:.1f} MB, largest worker {kids.ru_maxrss / 1024:.1f} MB"
    )
    if args.check:
        serial = seedloop.explore(
            TARGET, range(args.seeds), strategy=args.strategy, jobs=1,
            stop_on_failure=args.stop_on_failure,
        )
        same = summary_key(serial) == summary_key(summary)
        print("same summary as -j 1:", same)
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
