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
import math
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
    #: pytest plugins the suite needs, installed without their dependencies
    #: (their own pytest would shadow the interpreter's).
    plugins: list[str] = field(default_factory=list)


SUITES = [
    Suite("aiolimiter", "1.3.0", deps=["dunamai==1.26.5"]),
    # Its warnings are errors: pytest-asyncio 1.x warns when this is unset.
    Suite("async-lru", "2.4.0", args=["-o", "asyncio_default_fixture_loop_scope=function"]),
    Suite("janus", "2.0.0", args=["--ignore=tests/test_benchmarks.py"]),  # needs pytest-codspeed
    Suite(
        "aiojobs",
        "1.4.0",
        # The repository's pytest.ini (auto mode) is not in the sdist; test_aiohttp
        # needs pytest-aiohttp's server fixtures.
        args=["-o", "asyncio_mode=auto", "--ignore=tests/test_aiohttp.py"],
    ),
    Suite("culsans", "0.11.0", deps=["aiologic==0.17.1"]),
    # anyio's plugin runs its tests (upstream does not use pytest-asyncio).
    Suite("aiometer", "1.0.0", deps=["anyio==4.16.0", "trio==0.35.0"], args=["-p", "no:asyncio"]),
    Suite("aiostream", "0.8.1"),
    Suite("async-timeout", "5.0.1", args=["-o", "asyncio_default_fixture_loop_scope=function"]),
    Suite("aiohappyeyeballs", "2.7.1", args=["--ignore=tests/benchmarks"]),  # pytest-codspeed
    # Memory backend only: the redis/memcached clients are installed so that the
    # modules importing them collect; tests needing their servers are left out.
    Suite(
        "aiocache",
        "0.12.3",
        deps=["redis==4.6.0", "aiomcache==0.8.2", "marshmallow==3.19.0", "msgpack==1.0.8"],
        plugins=["pytest-mock==3.14.0"],
        args=["-o", "asyncio_default_fixture_loop_scope=function",
              "-m", "not redis and not memcached", "--ignore=tests/performance",
              "--ignore=tests/ut/backends/test_redis.py",
              "--ignore=tests/ut/backends/test_memcached.py"],
    ),
    Suite("aiofiles", "25.1.0"),
    # unittest.IsolatedAsyncioTestCase over sqlite3 in a thread; its module is smoke.py.
    Suite("aiosqlite", "0.22.1", tests="aiosqlite/tests/smoke.py"),
    # sync_to_async/async_to_sync over real threads.
    Suite("asgiref", "3.13.0", deps=["packaging==25.0"]),
    Suite("pyee", "13.0.1", args=["--ignore=tests/test_twisted.py", "--ignore=tests/test_trio.py",
                                  "-o", "asyncio_default_fixture_loop_scope=function"]),
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
    wanted = "\n".join([str(root), *COMMON_DEPS, *suite.deps, *suite.plugins])
    if not marker.exists() or marker.read_text() != wanted:
        sh([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
            str(root), *suite.deps])
        # Plugins without their dependencies: the suite runs on this interpreter's pytest.
        sh([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
            str(target), *COMMON_DEPS, *suite.plugins])
        marker.write_text(wanted)
    return target


def seedloop_is_registered() -> bool:
    return any(ep.value.startswith("seedloop.") for ep in metadata.entry_points(group="pytest11"))


@dataclass
class Run:
    seconds: float
    tests: dict[str, dict[str, object]]
    crashed: list[str]  # what ended a session abnormally (hangs are listed per test)


def read_events(path: Path) -> tuple[dict[str, dict[str, object]], str | None, bool]:
    """(results by test, the test that started and never reported, session finished)."""
    tests: dict[str, dict[str, object]] = {}
    running = None
    finished = False
    if not path.exists():
        return tests, None, False
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if "start" in event:
            running = event["start"]
        elif "exitstatus" in event:
            finished = True
        else:
            entry = tests.setdefault(
                event["nodeid"], {"outcome": "passed", "duration": 0.0, "status": None, "message": None}
            )
            entry["duration"] = float(entry["duration"]) + event["duration"]  # type: ignore[arg-type]
            if event["status"]:
                entry["status"] = event["status"]
            if entry["outcome"] == "passed" and event["outcome"] != "passed":
                entry["outcome"] = event["outcome"]  # the first thing that went wrong
                entry["message"] = event.get("message")
            if event["when"] == "teardown" and running == event["nodeid"]:
                running = None
    return tests, running, finished


def run_pytest(suite: Suite, root: Path, deps: Path, out: Path, extra: list[str], args: argparse.Namespace,
               timeout: int) -> Run:
    """One suite, one configuration; a test that hangs is recorded and the rest rerun without it."""
    env = dict(os.environ)
    paths = [str(deps), str(HERE), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("PYTEST_ADDOPTS", None)
    out.unlink(missing_ok=True)
    # pytest-timeout's thread method ends the whole session (a hang in C code
    # ignores signals); the probe's log says which test it was.
    base = [sys.executable, "-m", "pytest", suite.tests, "-q", "-p", "no:cacheprovider",
            "-o", "addopts=", "-p", "probe", f"--probe-out={out}",
            f"--timeout={timeout}", "--timeout-method=thread", *suite.args, *extra]
    seconds = 0.0
    skip: list[str] = []
    crashed: list[str] = []
    hung: dict[str, dict[str, object]] = {}
    log = out.with_suffix(".log")
    log.unlink(missing_ok=True)
    while True:
        started = time.perf_counter()
        try:
            skip_file = out.with_suffix(".skip")
            skip_file.write_text("\n".join(skip), encoding="utf-8")
            proc = subprocess.run([*base, f"--probe-skip={skip_file}"], cwd=root, env=env,
                                  text=True, capture_output=True, timeout=args.limit)
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            crashed.append(f"no result after {args.limit:.0f} s")
            output = ""
            proc = None
        seconds += time.perf_counter() - started
        with log.open("a", encoding="utf-8") as f:
            f.write(output)
        tests, running, finished = read_events(out)
        if "INTERNALERROR" in output:
            crashed.append("INTERNALERROR")
        if finished or running is None or proc is None:
            if proc is not None and proc.returncode not in (0, 1, 5) and not finished:
                crashed.append(f"pytest exit code {proc.returncode}")
            break
        hung[running] = {"outcome": "hang", "duration": float(timeout), "status": None,
                         "message": f"still running after {timeout} s; session killed"}
        skip = sorted(set(skip) | set(tests) | {running})
    tests.update(hung)
    return Run(seconds, tests, crashed)


def count(run: Run, outcome: str) -> int:
    return sum(1 for t in run.tests.values() if t["outcome"] == outcome)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "seedloop-real-suites"))
    parser.add_argument("--only", default="", help="comma-separated suite names")
    parser.add_argument("--limit", type=float, default=3600, help="seconds per pytest session")
    parser.add_argument("--test-timeout", type=int, default=30,
                        help="seconds per test before it counts as a hang (pytest-timeout); "
                        "under seedloop more per seed: the suite's longest stock test + 1 s, at least 2 s")
    parser.add_argument("--json", default=None, help="write every result here")
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    if HERE.parent.parent in workdir.parents or workdir == HERE.parent.parent:
        parser.error("--workdir must be outside the repository: nothing fetched is committed")
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    suites = [s for s in SUITES if not only or s.name in only]
    # No failure database: saved seeds from an earlier run would run first (and
    # its warning fails suites that make warnings errors).
    seedloop_args = ["--seedloop-all", "--seedloop-seeds", str(args.seeds), "--no-seedloop-db"]
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
        stock = run_pytest(suite, root, deps, results / f"{suite.name}-stock.jsonl", stock_args, args,
                           args.test_timeout)
        print(f"   stock: {stock.seconds:.1f} s", file=sys.stderr, flush=True)
        # A test runs once per seed: work done in real time (a thread sleeping a
        # real second) takes that many times longer without hanging.
        longest = max((float(t["duration"]) for t in stock.tests.values()), default=0.0)  # type: ignore[arg-type]
        per_seed = max(2, math.ceil(longest) + 1)
        sim = run_pytest(suite, root, deps, results / f"{suite.name}-seedloop.jsonl", seedloop_args, args,
                         args.test_timeout + per_seed * args.seeds)
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
                ", ".join([*(f"stock: {c}" for c in stock.crashed), *sim.crashed]) or "0",
                str(count(sim, "hang")),
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
              "lost", "crashes", "hangs", "stock s", "seedloop s", "ratio", "per seed"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\nseeds per test: {args.seeds}; 'lost' = passing on stock, not under seedloop\n")
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
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
