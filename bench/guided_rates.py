"""Why guided wins or loses on a bug: failure rate of its fresh runs vs its mutated runs.

Runs the guided search for ``--runs`` runs per bug without stopping at
failures, and without letting failing runs into the corpus (a search that
stops at its first failure never learns from one), then prints, per bug,
how often the fresh (uniform random) runs failed and how often the mutants
of corpus tapes did. A mutant rate above the fresh rate means the coverage
guidance leads towards the bug; below, that it leads away. Nothing is timed.

    python bench/guided_rates.py --bugs staged_failover nested_pool_deadlock
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402

from seedloop import _guided  # noqa: E402
from seedloop._options import RunOptions  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=1500)
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--bugs", nargs="+", default=None)
    args = ap.parse_args(argv)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")

    learn = _guided._Search.learn

    def learn_from_passing(self, result, observer, lines):  # type: ignore[no-untyped-def]
        if result.exception is None:
            learn(self, result, observer, lines)

    _guided._Search.learn = learn_from_passing  # type: ignore[method-assign]
    print(f"{args.runs} guided runs per bug from seed {args.start}; failing runs not learnt from\n")
    print("| bug | fresh runs | fresh fail rate | mutants | mutant fail rate | mutant / fresh |")
    print("|---|---:|---:|---:|---:|---:|")
    opts = RunOptions.build("bench", "random", {})
    for module in corpus.load(args.bugs):
        stats = _guided.GuidedStats()
        counts = {True: [0, 0], False: [0, 0]}
        fresh_before = 0
        seeds = range(args.start, args.start + args.runs)
        for _, result in _guided.runs(module.scenario, seeds, opts, "bench", stats):
            fresh = stats.fresh_runs > fresh_before
            fresh_before = stats.fresh_runs
            counts[fresh][0] += 1
            counts[fresh][1] += result.exception is not None
        (fn, ff), (mn, mf) = counts[True], counts[False]
        fr, mr = ff / max(fn, 1), mf / max(mn, 1)
        ratio = f"{mr / fr:.2f}" if fr else "-"
        name = module.__name__.rsplit(".", 1)[-1]
        print(f"| {name} | {fn} | {fr:.4f} | {mn} | {mr:.4f} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
