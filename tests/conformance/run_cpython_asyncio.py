#!/usr/bin/env python3
"""Run CPython's own ``test.test_asyncio`` modules with SeedLoop as the event loop.

Every loop the tests obtain -- ``asyncio.new_event_loop()``, ``asyncio.run()``,
``asyncio.Runner``, ``IsolatedAsyncioTestCase``, ``test_utils.TestCase.new_test_loop()``
and the bare ``asyncio.BaseEventLoop()`` some test bases use as "a loop" -- is a
``seedloop.SeedLoop(0, strategy="fifo", executor="thread")``.

Tests are excluded only by the rules in ``EXCLUSION_RULES`` (each with its
reason): tests that build their own event-loop class or drive a scripted clock,
and tests that need real I/O.  Everything else counts.

Usage::

    python tests/conformance/run_cpython_asyncio.py               # all modules present
    python tests/conformance/run_cpython_asyncio.py test_locks -v # one module, verbose
    python tests/conformance/run_cpython_asyncio.py --json out.json --list-excluded

Each module runs in its own child process (``--in-process`` to disable), with a
per-test timeout (``--timeout``, real seconds).  Exit status: 0 if the pass rate
reaches ``--target`` (default 97%), 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest
from collections.abc import Callable, Iterator
from typing import Any

MODULES = (
    "test_tasks",
    "test_futures",
    "test_locks",
    "test_queues",
    "test_timeouts",
    "test_taskgroups",
    "test_waitfor",
    "test_pep492",
    "test_context",
    "test_runners",
)
TARGET = 97.0
DEFAULT_TIMEOUT = 15.0


# ---------------------------------------------------------------------------
# Exclusion rules
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TestInfo:
    """What a rule sees about one test."""

    test_id: str
    module: str
    cls: type
    method: str
    source: str  # the test method's source ("" when unavailable)


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    reason: str
    matches: Callable[[TestInfo], bool]


def _source_matches(pattern: str) -> Callable[[TestInfo], bool]:
    regex = re.compile(pattern)
    return lambda info: bool(regex.search(info.source))


EXCLUSION_RULES: tuple[Rule, ...] = (
    Rule(
        "scripted-clock",
        "moves test_utils.TestLoop's clock by hand (`loop.advance_time(...)`, an API "
        "of that test loop class only); a SeedLoop's clock moves only to the next "
        "timer when nothing is ready",
        _source_matches(r"\.advance_time\("),
    ),
    Rule(
        "testloop-clock-artifact",
        "asserts an artifact of test_utils.TestLoop's scripted clock: TestLoop moves "
        "its time forward as soon as a timer is *scheduled* (after that loop "
        "iteration), even while other callbacks are still ready; stock asyncio and "
        "SeedLoop move time only when the timer is due. See TESTLOOP_ARTIFACTS",
        lambda info: (
            (info.module, info.method) in TESTLOOP_ARTIFACTS
            and bool(re.search(r"new_test_loop\(\s*\w", info.source))
        ),
    ),
    Rule(
        "own-loop-class",
        "builds a specific event-loop class of its own choosing (test_utils.TestLoop, "
        "asyncio.EventLoop / SelectorEventLoop / ProactorEventLoop, or a loop class "
        "defined in the test), so it does not test the loop under test",
        _source_matches(
            r"\bTestLoop\(|\b(EventLoop|SelectorEventLoop|ProactorEventLoop)\b|"
            r"\bclass \w+\([\w.]*EventLoop\)"
        ),
    ),
    Rule(
        "real-io",
        "needs real I/O (sockets, pipes, subprocesses, selectors or signals), "
        "which a simulation loop deliberately does not open",
        _source_matches(
            r"\bsocket\.|\bsubprocess\.|\bcreate_subprocess_|\bopen_connection\(|"
            r"\bstart_server\(|\bcreate_server\(|\bcreate_connection\(|\badd_reader\(|"
            r"\badd_writer\(|\bsock_\w+\(|\badd_signal_handler\(|\bos\.pipe\("
        ),
    ),
)


# The only hand-listed exclusions, each checked against stock asyncio.
TESTLOOP_ARTIFACTS: dict[tuple[str, str], str] = {
    ("test_tasks", "test_stop_while_run_in_complete"): (
        "the task's third sleep(0.1) is scheduled at t=0.2 just before loop.stop(); "
        "TestLoop then advances to 0.3 and the test asserts loop.time() == 0.3 after "
        "the loop stopped. A real clock (stock asyncio) and SeedLoop read 0.2."
    ),
    ("test_queues", "test_get_cancelled"): (
        "3.10 only: the script asserts wait_for's deadline is 0.061 because TestLoop "
        "advanced to 0.01 right after test() scheduled its sleep(0.01), before "
        "queue_get() (already ready) ran. Stock asyncio runs queue_get() at t~0, so the "
        "deadline is 0.051, as SeedLoop computes. (3.11+ rewrote the test without a script.)"
    ),
}


def exclusion_for(info: TestInfo) -> Rule | None:
    for rule in EXCLUSION_RULES:
        if rule.matches(info):
            return rule
    return None


# ---------------------------------------------------------------------------
# Installing SeedLoop as the event loop
# ---------------------------------------------------------------------------


def make_loop() -> Any:
    import seedloop

    return seedloop.SeedLoop(0, "fifo", executor="thread")


def make_script_checking_loop(gen: Callable[[], Any]) -> Any:
    """A fifo SeedLoop that feeds a TestLoop clock script the deadlines it schedules.

    ``test_utils.TestLoop(gen)`` sends the deadline of every timer scheduled
    in a loop iteration to the test's generator, which asserts on it and
    yields how far to move the clock.  Here the generator still receives (and
    checks) every deadline, in the same order, but its time advances are
    ignored: a SeedLoop's virtual clock jumps to the next deadline by itself.
    Scheduling, ordering and time stay SeedLoop's own.
    """
    import seedloop

    class ScriptCheckingSeedLoop(seedloop.SeedLoop):
        def __init__(self) -> None:
            super().__init__(0, "fifo", executor="thread")
            self._script = gen()
            next(self._script)
            self._script_whens: list[float] = []

        def call_at(self, when: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            handle = super().call_at(when, callback, *args, context=context)
            self._script_whens.append(handle.when())
            return handle

        def call_later(self, delay: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            handle = super().call_later(delay, callback, *args, context=context)
            self._script_whens.append(handle.when())
            return handle

        def _run_once(self) -> None:
            super()._run_once()
            whens, self._script_whens = self._script_whens, []
            for when in whens:
                self._script.send(when)

        def close(self) -> None:
            super().close()
            try:  # TestLoop's check: the script must be finished
                self._script.send(0)
            except StopIteration:
                pass
            else:
                raise AssertionError("Time generator is not finished")

    return ScriptCheckingSeedLoop()


# Event-loop classes constructed while the current test ran (see install()).
LOOPS_BUILT: list[str] = []


class _SeedLoopFactory:
    """A non-descriptor callable: usable as a policy's ``_loop_factory`` class attribute."""

    def __call__(self) -> Any:
        return make_loop()


_INSTALLED = False


def install() -> None:
    """Make every loop the tests obtain a fifo SeedLoop (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    import asyncio

    from test.test_asyncio import utils as test_utils

    import seedloop

    # Loaded now, before any test patches asyncio names (``import seedloop``
    # loads the loop on first use).
    _ = seedloop.SeedLoop

    # asyncio.new_event_loop(), asyncio.run(), asyncio.Runner() and
    # IsolatedAsyncioTestCase all go through the default policy; modules reset
    # the policy with set_event_loop_policy(None), which builds a fresh
    # DefaultEventLoopPolicy -- so patch the class, not an instance.
    asyncio.DefaultEventLoopPolicy._loop_factory = _SeedLoopFactory()  # type: ignore[attr-defined]
    asyncio.set_event_loop_policy(None)

    def new_test_loop(self: Any, gen: Any = None) -> Any:
        loop = make_loop() if gen is None else make_script_checking_loop(gen)
        self.set_event_loop(loop)
        return loop

    test_utils.TestCase.new_test_loop = new_test_loop  # type: ignore[method-assign]

    # Guard: record every event loop constructed, so a test that ran on some
    # other loop class is caught and counted as an error, not a pass.
    base_init = asyncio.base_events.BaseEventLoop.__init__

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(self, seedloop.SeedLoop):
            LOOPS_BUILT.append(type(self).__qualname__)
        base_init(self, *args, **kwargs)

    asyncio.base_events.BaseEventLoop.__init__ = recording_init  # type: ignore[method-assign]


class _BareLoopAsSeedLoop:
    """Stand-in for ``asyncio.BaseEventLoop`` while a test base builds "a loop"."""

    def __call__(self) -> Any:
        return make_loop()


def _with_seedloop_as_base_loop(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with ``asyncio.BaseEventLoop()`` building a SeedLoop."""
    import asyncio

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        real = asyncio.BaseEventLoop
        asyncio.BaseEventLoop = _BareLoopAsSeedLoop()  # type: ignore[misc, assignment]
        try:
            return func(*args, **kwargs)
        finally:
            asyncio.BaseEventLoop = real  # type: ignore[misc]

    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    return wrapper


# Test bases that build a bare ``asyncio.BaseEventLoop()`` (with a mocked
# selector) to mean "an event loop": they get a SeedLoop instead.
BARE_LOOP_BUILDERS: dict[str, tuple[tuple[str, str], ...]] = {
    "test_pep492": (("BaseTest", "setUp"),),
    "test_runners": (("BaseTest", "new_loop"),),
}


def adapt_module(name: str, module: Any) -> None:
    for cls_name, meth in BARE_LOOP_BUILDERS.get(name, ()):
        cls = getattr(module, cls_name, None)
        if cls is None or meth not in cls.__dict__:
            continue
        original = cls.__dict__[meth]
        if getattr(original, "__wrapped__", None) is not None:
            continue
        setattr(cls, meth, _with_seedloop_as_base_loop(original))


# ---------------------------------------------------------------------------
# Running one module
# ---------------------------------------------------------------------------


class TestTimeout(Exception):
    """Raised inside a test that ran longer than the per-test timeout."""


def iter_tests(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


def test_info(module: str, test: unittest.TestCase) -> TestInfo:
    method = getattr(test, "_testMethodName", "")
    func = getattr(type(test), method, None)
    try:
        source = inspect.getsource(func) if func is not None else ""
    except (OSError, TypeError):
        source = ""
    return TestInfo(test.id(), module, type(test), method, source)


class _Result(unittest.TestResult):
    """Records one outcome per test (a failing subtest fails its test)."""

    def __init__(self, timeout: float, verbose: bool) -> None:
        super().__init__()
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.verbose = verbose
        self.timeout = timeout if hasattr(signal, "SIGALRM") else 0.0
        if self.timeout > 0:
            signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        raise TestTimeout(f"test ran longer than {self.timeout:g} s (real time)")

    def disarm(self) -> None:
        if self.timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def startTest(self, test: Any) -> None:
        super().startTest(test)
        LOOPS_BUILT.clear()
        if self.verbose:
            print(f"  {test.id()} ...", end=" ", flush=True)
        if self.timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, self.timeout)

    def stopTest(self, test: Any) -> None:
        self.disarm()
        if LOOPS_BUILT:
            self._set(
                test,
                "error",
                f"ran on a loop that is not a SeedLoop: {sorted(set(LOOPS_BUILT))}",
            )
        super().stopTest(test)
        if self.verbose:
            print(self.outcomes.get(test.id(), ("?", ""))[0], flush=True)

    def _set(self, test: Any, outcome: str, detail: str = "") -> None:
        test_id = test.id()
        # Worst outcome wins: error > fail > everything else.
        rank = {"pass": 0, "skip": 0, "fail": 1, "error": 2}
        old = self.outcomes.get(test_id)
        if old is None or rank[outcome] >= rank[old[0]]:
            self.outcomes[test_id] = (outcome, detail)

    def addSuccess(self, test: Any) -> None:
        self._set(test, "pass")

    def addError(self, test: Any, err: Any) -> None:
        self._set(test, "error", self._exc_info_to_string(err, test))

    def addFailure(self, test: Any, err: Any) -> None:
        self._set(test, "fail", self._exc_info_to_string(err, test))

    def addSkip(self, test: Any, reason: str) -> None:
        self._set(test, "skip", reason)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        self._set(test, "pass", "expected failure")

    def addUnexpectedSuccess(self, test: Any) -> None:
        self._set(test, "fail", "unexpected success")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is None:
            return
        outcome = "fail" if issubclass(err[0], test.failureException) else "error"
        self._set(test, outcome, self._exc_info_to_string(err, test))


def run_module(
    name: str,
    timeout: float,
    verbose: bool,
    run_excluded: bool = False,
    deselect: str | None = None,
) -> dict[str, Any]:
    """Run one module in this process; return its summary.

    With ``run_excluded`` the excluded tests run too (after the counted ones),
    for information only: their outcomes are reported apart, never counted.
    """
    install()
    started = time.monotonic()
    try:
        module = importlib.import_module(f"test.test_asyncio.{name}")
    except ImportError as exc:
        return {"module": name, "missing": True, "reason": str(exc)}
    adapt_module(name, module)

    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    tests = list(iter_tests(suite))
    deselected = 0
    if deselect:  # a narrower selection (not an exclusion): these are simply not part of the run
        pattern = re.compile(deselect)
        kept = [t for t in tests if not pattern.search(t.id())]
        deselected, tests = len(tests) - len(kept), kept
    excluded: list[dict[str, str]] = []
    to_run: list[unittest.TestCase] = []
    for test in tests:
        rule = exclusion_for(test_info(name, test))
        if rule is not None:
            excluded.append({"test": test.id(), "rule": rule.name})
        else:
            to_run.append(test)

    result = _Result(timeout, verbose)
    # A suite handles setUpModule/setUpClass and their teardowns.
    unittest.TestSuite(to_run).run(result)
    result.disarm()
    if run_excluded and excluded:
        by_id = {t.id(): t for t in tests}
        extra = _Result(timeout, verbose)
        unittest.TestSuite([by_id[e["test"]] for e in excluded]).run(extra)
        extra.disarm()
        for e in excluded:
            e["outcome_if_run"] = extra.outcomes.get(e["test"], ("error", ""))[0]

    counts = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
    failures: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for test in to_run:
        outcome, detail = result.outcomes.get(test.id(), ("error", "no outcome recorded"))
        counts[outcome] += 1
        if outcome in ("fail", "error"):
            failures.append({"test": test.id(), "outcome": outcome, "detail": detail})
        elif outcome == "skip":
            skipped.append({"test": test.id(), "reason": detail})
    return {
        "module": name,
        "missing": False,
        "total": len(tests),
        "deselected": deselected,
        "excluded": len(excluded),
        "passed": counts["pass"],
        "failed": counts["fail"],
        "errors": counts["error"],
        "skipped": counts["skip"],
        "seconds": round(time.monotonic() - started, 2),
        "failures": failures,
        "excluded_tests": excluded,
        "skipped_tests": skipped,
    }


def run_module_in_child(
    name: str,
    timeout: float,
    verbose: bool,
    run_excluded: bool = False,
    deselect: str | None = None,
) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--timeout", str(timeout)]
    if deselect:
        cmd += ["--deselect", deselect]
    if verbose:
        cmd.append("-v")
    if run_excluded:
        cmd.append("--run-excluded")
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True
    )
    marker = "@@SUMMARY@@"
    for line in proc.stdout.splitlines():
        if line.startswith(marker):
            return json.loads(line[len(marker) :])
        if verbose:
            print(line)
    tail = (proc.stderr or "")[-2000:]
    return {
        "module": name,
        "missing": False,
        "crashed": True,
        "total": 0,
        "excluded": 0,
        "passed": 0,
        "failed": 0,
        "errors": 1,
        "skipped": 0,
        "seconds": 0.0,
        "failures": [
            {"test": name, "outcome": "error", "detail": f"exit {proc.returncode}\n{tail}"}
        ],
        "excluded_tests": [],
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def pass_rate(passed: int, failed: int, errors: int) -> float:
    ran = passed + failed + errors
    return 100.0 * passed / ran if ran else 100.0


def print_table(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    head = (
        f"{'module':<18}{'total':>7}{'excl':>6}{'skip':>6}{'pass':>6}"
        f"{'fail':>6}{'error':>7}{'pass %':>9}"
    )
    print(head)
    print("-" * len(head))
    tot = {k: 0 for k in ("total", "excluded", "skipped", "passed", "failed", "errors")}
    for s in summaries:
        if s.get("missing"):
            print(f"{s['module']:<18}  (not in this interpreter's test suite)")
            continue
        for k in tot:
            tot[k] += s[k]
        rate = pass_rate(s["passed"], s["failed"], s["errors"])
        print(
            f"{s['module']:<18}{s['total']:>7}{s['excluded']:>6}{s['skipped']:>6}"
            f"{s['passed']:>6}{s['failed']:>6}{s['errors']:>7}{rate:>8.1f}%"
        )
    print("-" * len(head))
    rate = pass_rate(tot["passed"], tot["failed"], tot["errors"])
    print(
        f"{'TOTAL':<18}{tot['total']:>7}{tot['excluded']:>6}{tot['skipped']:>6}"
        f"{tot['passed']:>6}{tot['failed']:>6}{tot['errors']:>7}{rate:>8.1f}%"
    )
    return {**tot, "pass_percent": round(rate, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"modules to run (default: {' '.join(MODULES)})")
    parser.add_argument("--json", metavar="PATH", help="write a JSON summary to PATH")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every test")
    parser.add_argument("--failures", action="store_true", help="print each failure's traceback")
    parser.add_argument("--list-excluded", action="store_true", help="print every excluded test")
    parser.add_argument(
        "--run-excluded",
        action="store_true",
        help="also run the excluded tests and show their outcome (information only, not counted)",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="per-test seconds")
    parser.add_argument("--target", type=float, default=TARGET, help="required pass percentage")
    parser.add_argument("--in-process", action="store_true", help="no child process per module")
    parser.add_argument(
        "--deselect",
        metavar="REGEX",
        help="leave out tests whose id matches REGEX (a smaller selection for quick runs; "
        "not counted anywhere, unlike exclusions)",
    )
    parser.add_argument("--child", metavar="MODULE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        summary = run_module(
            args.child, args.timeout, args.verbose, args.run_excluded, args.deselect
        )
        sys.stdout.flush()
        print("@@SUMMARY@@" + json.dumps(summary), flush=True)
        return 0

    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(MODULES)}")

    import seedloop

    print(
        f"CPython {sys.version.split()[0]} test.test_asyncio on "
        f"seedloop {seedloop.__version__} SeedLoop(strategy='fifo', executor='thread')"
    )
    if args.deselect:
        print(f"selection: tests whose id matches {args.deselect!r} are left out of this run")
    summaries = []
    for name in modules:
        if args.in_process:
            summary = run_module(name, args.timeout, args.verbose, args.run_excluded, args.deselect)
        else:
            summary = run_module_in_child(
                name, args.timeout, args.verbose, args.run_excluded, args.deselect
            )
        summaries.append(summary)
    print()
    total = print_table(summaries)
    print(f"target: {args.target:g}% of the non-excluded tests that ran (skips not counted)")

    if args.failures or args.list_excluded:
        for s in summaries:
            if args.list_excluded:
                for e in s.get("excluded_tests", []):
                    ran = f" (if run: {e['outcome_if_run']})" if "outcome_if_run" in e else ""
                    print(f"EXCLUDED [{e['rule']}] {e['test']}{ran}")
            if args.failures:
                for f in s.get("failures", []):
                    print(f"\n{f['outcome'].upper()}: {f['test']}\n{f['detail']}")
    if args.list_excluded:
        print("\nexclusion rules:")
        for rule in EXCLUSION_RULES:
            print(f"  {rule.name}: {rule.reason}")
    else:
        for s in summaries:
            for f in s.get("failures", []):
                print(f"{f['outcome'].upper()}: {f['test']}")

    if args.json:
        report = {
            "python": sys.version.split()[0],
            "loop": "SeedLoop(0, strategy='fifo', executor='thread')",
            "target_percent": args.target,
            "deselect": args.deselect,
            "total": total,
            "modules": summaries,
            "rules": [{"name": r.name, "reason": r.reason} for r in EXCLUSION_RULES],
        }
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0 if total["pass_percent"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
