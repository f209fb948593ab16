"""seedloop's pytest plugin (registered through the ``pytest11`` entry point).

* ``@pytest.mark.seedloop(seeds=range(1000), strategy="pct", depth=2)`` on an
  ``async def`` test runs it once per seed, each time on a fresh SeedLoop.
  Sync fixtures are set up once per test and passed to every run;
  function-scoped async fixtures (and fixtures that need them) are set up and
  torn down inside every seed's run, on that seed's loop.
* ``@seedloop.simulate(...)`` tests go through the same runner, so the
  command-line options below apply to them too.
* ``--seedloop-all`` (or the ini option ``seedloop_all = true``) takes over
  every async test of a suite (pytest-asyncio's, anyio's asyncio backend, the
  marker): ``SUITE_STRATEGY`` and ``SUITE_SEEDS`` unless the options below say
  otherwise. A test it cannot take over runs as usual and is listed, with the
  reason, in the "seedloop" section of the terminal summary.
* ``--seedloop-seeds 0:1000`` / ``--seedloop-strategy pct`` override the
  seeds and strategy of every seedloop test; ``--seedloop-replay SEED`` runs
  only that seed and fails with the test's own exception and traceback.
* A failing test gets a "seedloop" report section: seed, strategy, the exact
  pytest and Python replay commands and, when available, the timeline.
* The failure database (``seedloop._database``): a failing seed is saved
  under ``.seedloop/`` in the rootdir (``--seedloop-db PATH``, the ini option
  ``seedloop_db``, or ``SEEDLOOP_DB``; ``off`` or ``--no-seedloop-db``: none)
  and runs before the seed range the next time; it is dropped once it passes.

The tests seedloop runs become :class:`SeedloopFunction` items at the end of
collection (so a marker added by a conftest counts): other async plugins
(pytest-asyncio, anyio) leave them alone, and pytest-xdist distributes them
like any other test.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import seedloop

from ._options import (
    DB_DEFAULT_DIR,
    DB_ENV_VAR,
    DB_OFF,
    DEFAULT_STRATEGY,
    STRATEGIES,
    SUITE_SEEDS,
    SUITE_STRATEGY,
    check_seed,
    check_strategy,
    parse_seeds,
)
from ._pytest_suite import (
    MARKER,
    CommandLine,
    Deferred,
    anyio_backend_reason,
    asked_for_seedloop,
    deferred_fixture,
    is_async_function,
    is_coroutine_test,
    is_simulate_wrapper,
    is_unittest_item,
    not_simulable,
)
from .errors import InvalidStrategyError, SeedloopError, UnsupportedTestError

if TYPE_CHECKING:  # loaded when a seedloop test runs, through the package's _LAZY table
    from . import _pytest_run, _pytest_unittest  # noqa: F401

try:  # what pytest makes of a unittest.TestCase's test method (no public name)
    from _pytest.unittest import TestCaseFunction
except ImportError:  # pragma: no cover - a pytest without it
    TestCaseFunction = pytest.Function

try:  # how pytest binds a fixture defined in a test class to the test's instance
    from _pytest.fixtures import resolve_fixture_function as _resolve_fixture_function
except ImportError:  # pragma: no cover - a pytest without it: plain functions only
    _resolve_fixture_function = None

#: The status of a test seedloop runs (any other status is the reason it does not).
SIMULATED = "simulated"


_options_key = pytest.StashKey[CommandLine]()
_report_key = pytest.StashKey[str]()
#: On items: SIMULATED, or why seedloop does not run the test (suite mode).
_status_key = pytest.StashKey[str]()
#: The sometimes/reachable sites a simulated test never satisfied (their text).
_never_key = pytest.StashKey[list[str]]()
#: On items: why a test explicitly marked for seedloop cannot run on it.
_refusal_key = pytest.StashKey[str]()
#: On items: anyio's backend is a fixture value, known only at setup.
_anyio_pending_key = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seedloop", "seedloop: deterministic simulation of asyncio tests")
    group.addoption(
        "--seedloop-all",
        action="store_true",
        default=None,
        help="run every async test under seedloop (pytest-asyncio's, anyio's asyncio backend); "
        f"default seeds 0..{len(SUITE_SEEDS) - 1}, strategy {SUITE_STRATEGY}",
    )
    group.addoption(
        "--seedloop-seeds",
        metavar="SEEDS",
        default=None,
        help="seeds for every seedloop test: N (0..N-1), A:B (A..B-1) or a list 1,5,9",
    )
    group.addoption(
        "--seedloop-strategy",
        metavar="NAME",
        default=None,
        help=f"strategy for every seedloop test: {', '.join(STRATEGIES)}",
    )
    group.addoption(
        "--seedloop-replay",
        metavar="SEED",
        default=None,
        help="run seedloop tests under this one seed only, failing with the full exception",
    )
    group.addoption(
        "--seedloop-db",
        metavar="PATH",
        default=None,
        help="the failure database: failing seeds are saved there and run first next time "
        f"(default: ${DB_ENV_VAR}, the ini option seedloop_db, or {DB_DEFAULT_DIR} in the rootdir; "
        f"{DB_OFF!r}: none)",
    )
    group.addoption(
        "--no-seedloop-db",
        action="store_true",
        default=False,
        help="neither replay nor save failing seeds (no failure database)",
    )
    parser.addini(
        "seedloop_db",
        default="",
        help=f"the failure database's directory, relative to the rootdir ({DB_OFF!r}: none)",
    )
    group.addoption(
        "--seedloop-trace",
        metavar="DIR",
        default=None,
        help="write each failing seedloop test's run to DIR as Chrome trace-event JSON "
        "(one file per test; open it in ui.perfetto.dev)",
    )
    parser.addini(
        "seedloop_all",
        type="bool",
        default=False,
        help="run every async test under seedloop, as --seedloop-all does",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"seedloop(seeds=range(100), strategy={DEFAULT_STRATEGY!r}, **options): run an async test "
        "once per seed on a SeedLoop (deterministic interleavings and virtual time)",
    )
    try:
        config.stash[_options_key] = _read_command_line(config)
    except SeedloopError as exc:
        raise pytest.UsageError(str(exc)) from None


def _read_command_line(config: pytest.Config) -> CommandLine:
    seeds_text = config.getoption("seedloop_seeds", None)
    strategy = config.getoption("seedloop_strategy", None)
    replay_text = config.getoption("seedloop_replay", None)
    seeds = parse_seeds(seeds_text) if seeds_text is not None else None
    if strategy is not None:
        check_strategy(strategy)
    replay = None
    if replay_text is not None:
        try:
            replay = check_seed(int(replay_text))
        except ValueError:
            raise InvalidStrategyError(
                f"--seedloop-replay takes one seed (an int), got {replay_text!r}; "
                "copy it from the failure report"
            ) from None
    everything = bool(config.getoption("seedloop_all", None) or config.getini("seedloop_all"))
    return CommandLine(seeds, strategy, replay, everything, _database(config))


def _database(config: pytest.Config) -> tuple[str | None, str | Path] | None:
    """The failure database's settings (opened when a seedloop test runs); None: off."""
    if config.getoption("no_seedloop_db", False):
        return None
    ini = str(config.getini("seedloop_db") or "").strip()
    default = ini if ini.lower() == DB_OFF else config.rootpath / (ini or DB_DEFAULT_DIR)
    return config.getoption("seedloop_db", None), default


def _command_line(config: pytest.Config) -> CommandLine:
    return config.stash.get(_options_key, CommandLine(None, None, None))


# -- collection: which tests seedloop runs -------------------------------------


class SeedloopFunction(pytest.Function):
    """A test seedloop runs: once per seed, each time on a fresh SeedLoop."""

    def runtest(self) -> None:
        refusal = self.stash.get(_refusal_key, None)
        if refusal is not None:
            raise UnsupportedTestError(refusal)
        if self.stash.get(_anyio_pending_key, False):
            _decide_anyio_backend(self, self.funcargs.get("anyio_backend"))
        if self.stash.get(_status_key, SIMULATED) != SIMULATED:
            super().runtest()  # left to its own plugin (reported in the summary)
            return
        _simulate(self)


class SeedloopTestCase(TestCaseFunction):  # type: ignore[misc]
    """A ``unittest.IsolatedAsyncioTestCase`` test seedloop runs: the whole
    test case once per seed, each time on a fresh SeedLoop (``_pytest_unittest``)."""

    def runtest(self) -> None:
        refusal = self.stash.get(_refusal_key, None)
        if refusal is not None:
            raise UnsupportedTestError(refusal)
        if self.stash.get(_status_key, SIMULATED) != SIMULATED:
            super().runtest()
            return
        __tracebackhide__ = True
        outcome = seedloop._pytest_unittest.simulate_case(self, _command_line(self.config))
        if outcome.report is not None:
            self.stash[_report_key] = outcome.report
        if outcome.error is not None:
            raise outcome.error


def _decorated(item: pytest.Function) -> bool:
    """The marker is on the test function itself (not a module, class or conftest's)."""
    own = getattr(getattr(item.obj, "__func__", item.obj), "pytestmark", [])
    return any(getattr(m, "name", None) == MARKER for m in own)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # trylast: markers that conftests add here are already there.
    everything = _command_line(config).all
    for index, item in enumerate(items):
        explicit = isinstance(item, pytest.Function) and asked_for_seedloop(item)
        if not explicit and not everything:
            continue
        if isinstance(item, pytest.Function) and is_simulate_wrapper(item.obj):
            reason = None
        elif explicit and not is_coroutine_test(item):
            if not _decorated(item):  # type: ignore[arg-type]
                # A module, class or conftest marker covers the async tests only.
                if everything:
                    item.stash[_status_key] = "sync test"
                continue
            reason = (
                f"@pytest.mark.seedloop goes on 'async def' tests; {item.name} is not one "
                "(drop the marker, or make the test async)"
            )
        else:
            reason = not_simulable(item)
        if reason is not None and not explicit:
            item.stash[_status_key] = reason  # runs as usual; listed in the summary
            continue
        if is_unittest_item(item):
            converted: pytest.Function = _seedloop_case(item)
        else:
            converted = _seedloop_function(item)  # type: ignore[arg-type]
        if reason is not None:
            converted.stash[_refusal_key] = reason
        else:
            converted.stash[_status_key] = SIMULATED
            if "anyio_backend" in converted.fixturenames and "anyio_backend" not in getattr(
                getattr(converted, "callspec", None), "params", {}
            ):
                converted.stash[_anyio_pending_key] = True
        items[index] = converted


def _seedloop_case(item: pytest.Item) -> SeedloopTestCase:
    converted = SeedloopTestCase.from_parent(item.parent, name=item.name)  # type: ignore[arg-type]
    _keep_stash(item, converted)
    return converted


def _keep_stash(item: pytest.Item, converted: pytest.Item) -> None:
    """What other plugins stashed on ``item`` stays with it (pytest has no public copy)."""
    storage = getattr(item.stash, "_storage", None)
    if isinstance(storage, dict):
        converted.stash._storage.update(storage)  # type: ignore[attr-defined]


def _seedloop_function(item: pytest.Function) -> SeedloopFunction:
    converted = SeedloopFunction.from_parent(
        item.parent,
        name=item.name,
        callspec=getattr(item, "callspec", None),
        callobj=item.obj,
        fixtureinfo=item._fixtureinfo,
        keywords={k: v for k, v in item.keywords.items() if k != "asyncio"},
        originalname=item.originalname,
    )
    converted.own_markers = [m for m in item.own_markers if m.name != "asyncio"]
    _keep_stash(item, converted)
    return converted


def _decide_anyio_backend(item: pytest.Item, backend: object) -> None:
    item.stash[_anyio_pending_key] = False
    reason = anyio_backend_reason(backend) if backend is not None else None
    if reason is not None:
        if item.get_closest_marker(MARKER) is not None:
            item.stash[_refusal_key] = reason
        item.stash[_status_key] = reason


# -- fixtures: function-scoped async ones live inside each seed -----------------


def _simulated(item: Any, request: Any) -> bool:
    if not isinstance(item, SeedloopFunction) or _refusal_key in item.stash:
        return False
    if item.stash.get(_anyio_pending_key, False):
        _decide_anyio_backend(item, request.getfixturevalue("anyio_backend"))
    return item.stash.get(_status_key, SIMULATED) == SIMULATED


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    item = getattr(request, "_pyfuncitem", None)
    if fixturedef.argname == "anyio_backend":
        backend = yield
        if isinstance(item, SeedloopFunction) and item.stash.get(_anyio_pending_key, False):
            _decide_anyio_backend(item, backend)
        return backend
    if fixturedef.scope != "function" or not _simulated(item, request):
        return (yield)
    kwargs = {name: request.getfixturevalue(name) for name in fixturedef.argnames}
    if (
        not is_async_function(fixturedef.func)
        and not any(isinstance(v, Deferred) for v in kwargs.values())
        and asked_for_seedloop(item)
    ):
        # A marked test's sync fixture: set up once per test, shared by its seeds.
        return (yield)
    # A suite's test expects every function-scoped fixture fresh, as each
    # seed is a run of its own (a mock's call count, a file the test appends to).
    func = fixturedef.func
    if _resolve_fixture_function is not None:
        func = _resolve_fixture_function(fixturedef, request)
    # pytest (and pytest-asyncio, anyio: they see a sync function) keeps a
    # placeholder as the value; each seed's run sets the fixture up for real.
    original = fixturedef.func
    fixturedef.func = deferred_fixture(fixturedef.argname, original, func, kwargs)
    try:
        return (yield)
    finally:
        fixturedef.func = original


# -- running ----------------------------------------------------------------


def _simulate(item: SeedloopFunction) -> None:
    __tracebackhide__ = True
    outcome = seedloop._pytest_run.simulate_item(item, _command_line(item.config))
    if outcome.never:
        item.stash[_never_key] = outcome.never
    if outcome.report is not None:
        item.stash[_report_key] = outcome.report
    if outcome.error is not None:
        raise outcome.error


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # No garbage collection while pytest builds the report: a finalizer that
    # formats a traceback calls ast.parse, and pytest's report is itself made
    # inside ast.parse (CPython's AST constructor is not reentrant: "AST
    # constructor recursion depth mismatch" would kill the session).
    enabled = gc.isenabled()
    gc.disable()
    try:
        report = yield
    finally:
        if enabled:
            gc.enable()
    status = item.stash.get(_status_key, None)
    if status is not None:
        report.seedloop = status  # a plain attribute: pytest-xdist sends it along
    if call.when == "call":
        never = item.stash.get(_never_key, None)
        if never:
            report.seedloop_never = never  # a plain attribute: pytest-xdist sends it along
        text = item.stash.get(_report_key, None)
        if text is not None:
            report.sections.append(("seedloop", text))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    _summarise_never_satisfied(terminalreporter)
    if not _command_line(config).all:
        return
    statuses: dict[str, str] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            status = getattr(report, "seedloop", None)
            if isinstance(status, str) and getattr(report, "nodeid", None):
                statuses[report.nodeid] = status
    if not statuses:
        return
    cmd = _command_line(config)
    by_reason: dict[str, list[str]] = {}
    for nodeid, status in statuses.items():
        by_reason.setdefault(status, []).append(nodeid)
    simulated = by_reason.pop(SIMULATED, [])
    seeds = cmd.seeds if cmd.seeds is not None else SUITE_SEEDS
    terminalreporter.section("seedloop")
    terminalreporter.line(
        f"{len(simulated)} tests simulated ({_describe_seeds(seeds)}, strategy "
        f"{cmd.strategy or SUITE_STRATEGY} unless a marker says otherwise)"
    )
    if not by_reason:
        return
    left = sum(len(v) for v in by_reason.values())
    terminalreporter.line(f"{left} tests not simulated (they ran as usual):")
    verbose = config.get_verbosity() > 0
    for reason, nodeids in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        terminalreporter.line(f"  {len(nodeids):5d}  {reason}")
        if reason == "sync test":
            continue
        shown = nodeids if verbose else nodeids[:3]
        for nodeid in shown:
            terminalreporter.line(f"         {nodeid}")
        if len(shown) < len(nodeids):
            terminalreporter.line(f"         ... and {len(nodeids) - len(shown)} more (-v lists them)")


def _summarise_never_satisfied(terminalreporter: Any) -> None:
    """List, per simulated test, the sometimes/reachable sites none of its runs satisfied."""
    found: dict[str, list[str]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            never = getattr(report, "seedloop_never", None)
            if never and getattr(report, "nodeid", None):
                found[report.nodeid] = list(never)
    if not found:
        return
    terminalreporter.section("seedloop: never satisfied")
    terminalreporter.line(
        "sometimes/reachable sites that held in no run (paths these tests never exercised):"
    )
    for nodeid in sorted(found):
        terminalreporter.line(f"  {nodeid}")
        for line in found[nodeid]:
            terminalreporter.line(f"    {line}")


def _describe_seeds(seeds: Iterable[int]) -> str:
    if isinstance(seeds, range) and seeds.step == 1:
        return f"seeds {seeds.start}..{seeds.stop - 1}"
    listed = list(seeds)
    return f"{len(listed)} seeds"
