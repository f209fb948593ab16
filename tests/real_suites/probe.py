"""A pytest plugin for run.py: each test's outcome, time and seedloop status, as JSON lines.

One line per event, flushed at once: when a hanging test gets the session
killed, run.py still knows every result so far and which test hung.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

_OUT: list[Any] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--probe-out", default=None, help="where run.py's probe writes its JSON")
    parser.addoption("--probe-skip", default=None, help="a file of node ids not to run again")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Exact node ids: pytest's own --deselect drops every id it is a prefix of
    # (test_x also deselected test_x_twice, which then never ran).
    path = config.getoption("probe_skip")
    if not path:
        return
    with open(path, encoding="utf-8") as f:
        skip = set(f.read().splitlines())
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid in skip])
    items[:] = [i for i in items if i.nodeid not in skip]


def pytest_configure(config: pytest.Config) -> None:
    out = config.getoption("probe_out")
    if out:
        _OUT.append(open(out, "a", encoding="utf-8"))  # noqa: SIM115 (open for the session)


def _write(event: dict[str, Any]) -> None:
    if _OUT:
        _OUT[0].write(json.dumps(event) + "\n")
        _OUT[0].flush()


def pytest_runtest_logstart(nodeid: str) -> None:
    _write({"start": nodeid})


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    event: dict[str, Any] = {"nodeid": report.nodeid, "when": report.when,
                             "duration": report.duration, "status": getattr(report, "seedloop", None)}
    if hasattr(report, "wasxfail"):
        event["outcome"] = "xfailed" if report.skipped else "xpassed"
    elif report.failed:
        event["outcome"] = "failed" if report.when == "call" else "error"
        event["message"] = _message(report)
    elif report.skipped:
        event["outcome"] = "skipped"
        longrepr = report.longrepr
        event["message"] = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
    else:
        event["outcome"] = "passed"
    _write(event)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _write({"exitstatus": int(exitstatus)})
    if _OUT:
        _OUT.pop().close()
