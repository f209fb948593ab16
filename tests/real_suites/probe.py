"""A pytest plugin for run.py: each test's outcome, time and seedloop status, as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

_RESULTS: dict[str, dict[str, Any]] = {}
_OUT: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--probe-out", default=None, help="where run.py's probe writes its JSON")


def pytest_configure(config: pytest.Config) -> None:
    out = config.getoption("probe_out")
    if out:
        _OUT.append(out)


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _RESULTS.setdefault(
        report.nodeid, {"outcome": "passed", "duration": 0.0, "status": None, "message": None}
    )
    entry["duration"] += report.duration
    status = getattr(report, "seedloop", None)
    if isinstance(status, str):
        entry["status"] = status
    if entry["outcome"] not in ("passed",):
        return  # the first thing that went wrong is the one to report
    if hasattr(report, "wasxfail"):
        entry["outcome"] = "xfailed" if report.skipped else "xpassed"
    elif report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        entry["message"] = _message(report)
    elif report.skipped:
        entry["outcome"] = "skipped"
        longrepr = report.longrepr
        entry["message"] = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _OUT:
        with open(_OUT[0], "w", encoding="utf-8") as f:
            json.dump({"exitstatus": int(exitstatus), "tests": _RESULTS}, f, indent=1)
