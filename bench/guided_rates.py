"""Why guided wins or loses on a bug: the failure rate of each of its generators.

Runs guided searches of ``--runs`` runs per bug (``--searches`` of them, from
seeds ``--start``, ``--start`` + 100000, ...) without stopping at failures,
and without letting failing runs into the corpus (a search that stops at its
first failure never learns from one), then prints, per bug, how often the
runs of each generator failed: the warm-up's ``random`` and ``pos``, the
learnt policy (``learn``), fresh ``pos`` runs, and the corpus-extending
runs (``extend``). A generator whose rate is above the warm-up's ``random``
is one that leads towards the bug. Nothing is timed.

    python bench/guided_rates.py --bugs staged_failover nested_pool_deadlock
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402

from seedloop import _guided  # noqa: E402
from seedloop._options import RunOptions  # noqa: E402

ARMS = ("random", "pos", "learn", "extend")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000, help="runs per search")
    ap.add_argument("--searches", type=int, default=3)
    ap.add_argument("--start", type=int, default=0, help="first seed of the first search")
    ap.add_argument("--bugs", nargs="+", default=None)
    args = ap.parse_args(argv)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")

    learn = _guided._Search.learn

    def learn_from_passing(self, result, observer, lines):  # type: ignore[no-untyped-def]
        return learn(self, result, observer, lines) if result.exception is None else 0

    _guided._Search.learn = learn_from_passing  # type: ignore[method-assign]
    print(
        f"{args.searches} guided searches x {args.runs} runs per bug; "
        "failing runs not learnt from; failing / runs (rate) per generator\n"
    )
    print("| bug | " + " | ".join(ARMS) + " |")
    print("|---|" + "---:|" * len(ARMS))
    opts = RunOptions.build("bench", "random", {})
    for module in corpus.load(args.bugs):
        counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        for k in range(args.searches):
            stats = _guided.GuidedStats()
            before: dict[str, tuple[int, int]] = {}
            first = args.start + k * 100_000
            seeds = range(first, first + args.runs)
            for _, result in _guided.runs(module.scenario, seeds, opts, "bench", stats):
                # The generator of this run: the one whose run count moved.
                arm = next(a for a, (n, _) in stats.arms.items() if n != before.get(a, (0, 0))[0])
                before = dict(stats.arms)
                counts[arm][0] += 1
                counts[arm][1] += result.exception is not None
        cells = [
            f"{f}/{n} ({f / n:.4f})" if n else "-" for n, f in (counts[a] for a in ARMS)
        ]
        name = module.__name__.rsplit(".", 1)[-1]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
