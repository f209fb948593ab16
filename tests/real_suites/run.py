"""Run real asyncio libraries' own test suites on stock pytest-asyncio and under seedloop.

Downloads pinned sdists from PyPI (so it needs the network), unpacks them in a
scratch directory outside the repository, installs each suite's test-only
dependencies there (``pip install --target``, the library built from its sdist), and runs every suite twice with
the current interpreter's pytest, pytest-asyncio and seedloop:

* stock: ``pytest -p no:seedloop``
* seedloop: ``pytest --seedloop-all --seedloop-seeds N``

then prints a table: tests, passing on stock, passing under seedloop, tests
seedloop did not take over (with the reasons), crashes, and the time ratio;
and lists every test that passes on stock but not under seedloop, with its
error. Not part of ``./dev test``. Usage::

    python tests/real_suites/run.py                # all suites, 30 seeds
    python tests/real_suites/run.py --only janus --seeds 10 --workdir /tmp/rs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Shared by every suite: a per-test time limit, so one livelock cannot stall the table.
COMMON_DEPS = ["pytest-timeout==2.4.0"]


@dataclass(frozen=True)
class Suite:
    name: str  # the PyPI name
    version: str
    tests: str = "tests"
    deps: list[str] = field(default_factory=list)
    #: Extra pytest arguments: the upstream config the sdist does not ship,
    #: files needing services or plugins left out here.
    args: list[str] = field(default_factory=list)


SUITES = [
    Suite("aiolimiter", "1.3.0", deps=["dunamai==1.26.5"]),
    Suite("async-lru", "2.4.0"),
    Suite("janus", "2.0.0", args=["--ignore=tests/test_benchmarks.py"]),  # needs pytest-codspeed
    Suite(
        "aiojobs",
        "1.4.0",
        # The repository's pytest.ini (auto mode) is not in the sdist; test_aiohttp
        # needs pytest-aiohttp's server fixtures.
        args=["-o", "asyncio_mode=auto", "--ignore=tests/test_aiohttp.py"],
    ),
    Suite("culsans", "0.11.0", deps=["aiologic==0.17.1"]),
    Suite("aiometer", "1.0.0", deps=["anyio==4.16.0", "trio==0.35.0"]),
    Suite("aiostream", "0.8.1"),
]


def sh(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def fetch(suite: Suite, workdir: Path) -> Path:
    """The unpacked sdist (downloaded once)."""
    downloads = workdir / "downloads"
    unpacked = workdir / "src"
    downloads.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    wanted = f"{suite.name}-{suite.version}.tar.gz".lower().replace("-", "_")

    def archive() -> Path | None:
        found = [p for p in downloads.glob("*.tar.gz") if p.name.lower().replace("-", "_") == wanted]
        return found[0] if found else None

    if archive() is None:
        sh([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"{suite.name}=={suite.version}", "-d", str(downloads)])
    sdist = archive()
    if sdist is None:
        raise SystemExit(f"pip did not download {suite.name}=={suite.version} as an sdist")
    root = unpacked / sdist.name[: -len(".tar.gz")]
    if not root.exists():
        with tarfile.open(sdist) as tar:
            tar.extractall(unpacked, filter="data") if sys.version_info >= (3, 12) else tar.extractall(unpacked)
    return root


def install(suite: Suite, root: Path, workdir: Path) -> Path:
    """The library (built from its sdist, so it has its metadata) and its test deps."""
    target = workdir / "deps" / suite.name
    marker = target / ".installed"
    wanted = "\n".join([str(root), *COMMON_DEPS, *suite.deps])
    if not marker.exists() or marker.read_text() != wanted:
        sh([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
            str(root), *COMMON_DEPS, *suite.deps])
        marker.write_text(wanted)
    return target


def seedloop_is_registered() -> bool:
    return any(ep.value.startswith("seedloop.") for ep in metadata.entry_points(group="pytest11"))


@dataclass
class Run:
    exitstatus: int | None
    seconds: float
    tests: dict[str, dict[str, object]]
    crashed: str | None  # why the session did not end normally


def run_pytest(suite: Suite, root: Path, deps: Path, out: Path, extra: list[str], limit: float) -> Run:
    env = dict(os.environ)
    paths = [str(deps), str(HERE), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", suite.tests, "-q", "-p", "no:cacheprovider",
           "-o", "addopts=", "-p", "probe", f"--probe-out={out}", "--timeout=300",
           *suite.args, *extra]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, text=True, capture_output=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return Run(None, time.perf_counter() - started, {}, f"no result after {limit:.0f} s")
    seconds = time.perf_counter() - started
    (out.with_suffix(".log")).write_text(proc.stdout + proc.stderr)
    crashed = None
    if "INTERNALERROR" in proc.stdout + proc.stderr:
        crashed = "INTERNALERROR"
    elif proc.returncode not in (0, 1, 5):
        crashed = f"pytest exit code {proc.returncode}"
    tests: dict[str, dict[str, object]] = {}
    if out.exists():
        tests = json.loads(out.read_text())["tests"]
    return Run(proc.returncode, seconds, tests, crashed)


def count(run: Run, outcome: str) -> int:
    return sum(1 for t in run.tests.values() if t["outcome"] == outcome)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "seedloop-real-suites"))
    parser.add_argument("--only", default="", help="comma-separated suite names")
    parser.add_argument("--limit", type=float, default=3600, help="seconds per pytest session")
    parser.add_argument("--json", default=None, help="write every result here")
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    if HERE.parent.parent in workdir.parents or workdir == HERE.parent.parent:
        parser.error("--workdir must be outside the repository: nothing fetched is committed")
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    suites = [s for s in SUITES if not only or s.name in only]
    seedloop_args = ["--seedloop-all", "--seedloop-seeds", str(args.seeds)]
    if not seedloop_is_registered():
        seedloop_args = ["-p", "seedloop.pytest_plugin", *seedloop_args]
    stock_args = ["-p", "no:seedloop"] if seedloop_is_registered() else []

    rows = []
    details: dict[str, object] = {}
    for suite in suites:
        print(f"== {suite.name} {suite.version}", file=sys.stderr, flush=True)
        root = fetch(suite, workdir)
        deps = install(suite, root, workdir)
        results = workdir / "results"
        results.mkdir(exist_ok=True)
        stock = run_pytest(suite, root, deps, results / f"{suite.name}-stock.json", stock_args, args.limit)
        print(f"   stock: {stock.seconds:.1f} s", file=sys.stderr, flush=True)
        sim = run_pytest(suite, root, deps, results / f"{suite.name}-seedloop.json", seedloop_args, args.limit)
        print(f"   seedloop: {sim.seconds:.1f} s", file=sys.stderr, flush=True)
        passing = {n for n, t in stock.tests.items() if t["outcome"] == "passed"}
        lost = {
            n: f"{sim.tests[n]['outcome']}: {sim.tests[n]['message']}" if n in sim.tests else "not run"
            for n in sorted(passing)
            if sim.tests.get(n, {}).get("outcome") != "passed"
        }
        simulated = [n for n, t in sim.tests.items() if t["status"] == "simulated"]
        reasons = Counter(
            str(t["status"]) for t in sim.tests.values() if t["status"] not in (None, "simulated")
        )
        skipped = Counter(str(t["message"]) for t in sim.tests.values() if t["outcome"] == "skipped")
        ratio = sim.seconds / stock.seconds if stock.seconds else float("nan")
        rows.append(
            [
                suite.name,
                str(len(stock.tests)),
                str(len(passing)),
                str(count(sim, "passed")),
                str(len(simulated)),
                str(sum(reasons.values())),
                str(len(lost)),
                ", ".join(filter(None, [stock.crashed and f"stock: {stock.crashed}", sim.crashed])) or "0",
                f"{stock.seconds:.1f}",
                f"{sim.seconds:.1f}",
                f"{ratio:.1f}x",
                f"{ratio / args.seeds:.2f}x",
            ]
        )
        details[suite.name] = {
            "version": suite.version,
            "not_simulated": dict(reasons.most_common()),
            "skipped": dict(skipped.most_common()),
            "passing_on_stock_only": lost,
            "stock_seconds": stock.seconds,
            "seedloop_seconds": sim.seconds,
        }

    header = ["suite", "tests", "pass stock", "pass seedloop", "simulated", "not simulated",
              "lost", "crashes", "stock s", "seedloop s", "ratio", "per seed"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\nseeds per test: {args.seeds}; 'lost' = passing on stock, not under seedloop\n")
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    for name, info in details.items():
        assert isinstance(info, dict)
        if info["not_simulated"]:
            print(f"\n{name}: not simulated")
            for reason, n in info["not_simulated"].items():
                print(f"  {n:4d}  {reason}")
        if info["skipped"]:
            print(f"{name}: skipped")
            for reason, n in info["skipped"].items():
                print(f"  {n:4d}  {reason}")
        if info["passing_on_stock_only"]:
            print(f"{name}: passing on stock, not under seedloop")
            for nodeid, why in info["passing_on_stock_only"].items():
                print(f"  {nodeid}\n      {why}")
    if args.json:
        Path(args.json).write_text(json.dumps({"seeds": args.seeds, "suites": details}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
