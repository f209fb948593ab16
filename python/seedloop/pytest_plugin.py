"""seedloop's pytest plugin (registered through the ``pytest11`` entry point).

* ``@pytest.mark.seedloop(seeds=range(1000), strategy="pct", depth=2)`` on an
  ``async def`` test runs it once per seed, each time on a fresh SeedLoop;
  fixtures are set up once per test and passed to every run.
* ``@seedloop.simulate(...)`` tests go through the same runner, so the
  command-line options below apply to them too.
* ``--seedloop-seeds 0:1000`` / ``--seedloop-strategy pct`` override the
  seeds and strategy of every seedloop test; ``--seedloop-replay SEED`` runs
  only that seed and fails with the test's own exception and traceback.
* A failing test gets a "seedloop" report section: seed, strategy, the exact
  pytest and Python replay commands and, when available, the timeline.

Seedloop tests are plain pytest items: pytest-asyncio (auto or strict mode)
leaves them alone, and pytest-xdist distributes them like any other test.
"""

from __future__ import annotations

import inspect
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from ._options import DEFAULT_STRATEGY, STRATEGIES, check_seed, check_strategy, parse_seeds
from ._search import explore
from ._simulate import SimulationFailure
from .errors import InvalidFactoryError, InvalidStrategyError, SeedloopError

_MARKER = "seedloop"
_DEFAULT_SEEDS = range(100)


@dataclass(frozen=True)
class _CommandLine:
    seeds: Iterable[int] | None
    strategy: str | None
    replay: int | None


_options_key = pytest.StashKey[_CommandLine]()
_report_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seedloop", "seedloop: deterministic simulation of asyncio tests")
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


def _read_command_line(config: pytest.Config) -> _CommandLine:
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
    return _CommandLine(seeds, strategy, replay)


# -- collection: keep seedloop tests away from other async plugins ----------


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Any:
    outcome = yield
    if not inspect.iscoroutinefunction(getattr(obj, "__func__", obj)):
        return
    result = outcome.get_result()
    if not result:
        return
    items = result if isinstance(result, list) else [result]
    changed = False
    converted: list[Any] = []
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and type(item) is not pytest.Function
            and item.get_closest_marker(_MARKER) is not None
        ):
            # Another plugin (pytest-asyncio) turned it into its own item
            # kind; seedloop runs this test, so make it a plain one again.
            item = _plain_function(item)
            changed = True
        converted.append(item)
    if changed:
        outcome.force_result(converted)


def _plain_function(item: pytest.Function) -> pytest.Function:
    plain = pytest.Function.from_parent(
        item.parent,
        name=item.name,
        callspec=getattr(item, "callspec", None),
        fixtureinfo=item._fixtureinfo,
        keywords={k: v for k, v in item.keywords.items() if k != "asyncio"},
        originalname=item.originalname,
    )
    plain.own_markers = [m for m in item.own_markers if m.name != "asyncio"]
    return plain


# -- running ----------------------------------------------------------------


@dataclass
class _Spec:
    fn: Any  # the async test function (bound for methods)
    seeds: Iterable[int]
    strategy: str
    options: dict[str, Any]


def _spec_for(item: pytest.Function) -> _Spec | None:
    obj = item.obj
    simulated = getattr(obj, "seedloop", None)
    if isinstance(simulated, dict) and hasattr(obj, "__wrapped__"):
        fn = obj.__wrapped__
        instance = getattr(obj, "__self__", None)
        if instance is not None:
            fn = fn.__get__(instance)
        settings = dict(simulated)
        seeds = settings.pop("seeds", _DEFAULT_SEEDS)
        strategy = settings.pop("strategy", DEFAULT_STRATEGY)
        return _Spec(fn, seeds, strategy, settings)
    marker = item.get_closest_marker(_MARKER)
    if marker is None:
        return None
    if not inspect.iscoroutinefunction(getattr(obj, "__func__", obj)):
        own = getattr(getattr(obj, "__func__", obj), "pytestmark", [])
        if not any(getattr(m, "name", None) == _MARKER for m in own):
            return None  # a module or class marker: it covers the async tests only
        raise InvalidFactoryError(
            f"@pytest.mark.seedloop goes on 'async def' tests; {item.name} is not one "
            "(drop the marker, or make the test async)"
        )
    kwargs = dict(marker.kwargs)
    if marker.args:
        if len(marker.args) > 1 or "seeds" in kwargs:
            raise InvalidFactoryError(
                "@pytest.mark.seedloop takes the seeds as its only positional argument: "
                "seedloop(range(1000), strategy='pct')"
            )
        kwargs["seeds"] = marker.args[0]
    seeds = kwargs.pop("seeds", _DEFAULT_SEEDS)
    if isinstance(seeds, int):
        seeds = range(seeds)
    strategy = kwargs.pop("strategy", DEFAULT_STRATEGY)
    return _Spec(obj, seeds, strategy, kwargs)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    spec = _spec_for(pyfuncitem)
    if spec is None:
        return None
    __tracebackhide__ = True
    cmd = pyfuncitem.config.stash.get(_options_key, _CommandLine(None, None, None))
    funcargs = pyfuncitem.funcargs
    kwargs = {arg: funcargs[arg] for arg in pyfuncitem._fixtureinfo.argnames}
    fn = spec.fn

    def factory() -> Any:
        return fn(**kwargs)

    # Named like the test (for reports), but without __wrapped__: the factory
    # itself takes no arguments.
    factory.__name__ = getattr(fn, "__name__", "test")
    factory.__qualname__ = getattr(fn, "__qualname__", factory.__name__)

    strategy = cmd.strategy or spec.strategy
    if cmd.replay is not None:
        seeds: Iterable[int] = [cmd.replay]
    else:
        seeds = cmd.seeds if cmd.seeds is not None else spec.seeds
    summary = explore(factory, seeds, strategy=strategy, stop_on_failure=True, **spec.options)
    failure = summary.failure
    if failure is None:
        return True
    pyfuncitem.stash[_report_key] = _report(pyfuncitem, summary, list(kwargs))
    if cmd.replay is not None:
        raise failure.exception  # the test's own exception, traceback and all

    error = SimulationFailure(pyfuncitem.name, failure)
    # The full report (timeline, minimal schedule) is the "seedloop" section
    # below the traceback; the message names the seed and the exact command.
    exc = failure.exception
    error.args = (
        f"{pyfuncitem.name} fails under seed {failure.seed} (strategy {failure.strategy}): "
        f"{type(exc).__name__}: {exc}\n"
        f"replay: {replay_command_line(pyfuncitem, failure.seed, failure.strategy)}\n"
        "(the seedloop section of this report shows the failing interleaving)",
    )
    raise error from exc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    if call.when != "call":
        return
    text = item.stash.get(_report_key, None)
    if text is not None:
        outcome.get_result().sections.append(("seedloop", text))


def _report(item: pytest.Function, summary: Any, argnames: list[str]) -> str:
    failure = summary.failure
    exc = failure.exception
    lines = [
        f"seed:        {failure.seed}",
        f"strategy:    {failure.strategy}",
        f"seeds run:   {summary.seeds_run} (stopped at the first failing seed)",
        f"exception:   {_indent(f'{type(exc).__name__}: {exc}')}",
        f"replay:      {replay_command_line(item, failure.seed, failure.strategy)}",
        f"python:      {python_replay_call(item, failure, argnames)}",
    ]
    extra = {k: v for k, v in failure.options.items() if k != "steps"}
    if extra:
        lines.append(f"options:     {extra}")
    tape_command = getattr(failure, "replay_tape_command", None)
    if tape_command:
        lines.append(f"schedule:    {tape_command}  (the minimal failing schedule)")
    feasibility = getattr(failure, "feasibility", None)
    if feasibility:
        lines.append(f"real loop:   {_indent(str(feasibility))}")
    timeline = getattr(failure, "timeline", None)
    if timeline:
        lines.append("timeline:")
        lines.extend("  " + line for line in str(timeline).splitlines())
    return "\n".join(lines) + "\n"


def _indent(text: str, prefix: str = " " * 13) -> str:
    return ("\n" + prefix).join(text.splitlines() or [""])


def replay_command_line(item: pytest.Item, seed: int, strategy: str) -> str:
    """The pytest command line that reruns this test under ``seed`` alone."""
    invocation = item.config.invocation_params.dir
    path = os.path.relpath(str(item.path), str(invocation))
    tail = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else ""
    target = f"{path}::{tail}" if tail else path
    return f"pytest {shlex.quote(target)} --seedloop-replay {seed} --seedloop-strategy {strategy}"


def python_replay_call(item: pytest.Function, failure: Any, argnames: list[str]) -> str:
    name = getattr(item, "originalname", item.name)
    if isinstance(getattr(item.obj, "seedloop", None), dict) and hasattr(item.obj, "__wrapped__"):
        name += ".__wrapped__"  # @simulate: the decorated name would rerun every seed
    if argnames:
        name = f"lambda: {name}({', '.join(f'{a}={a}' for a in argnames)})"
    options = "".join(f", {k}={v!r}" for k, v in sorted(failure.options.items()))
    return f"seedloop.run({name}, seed={failure.seed}, strategy={failure.strategy!r}{options})"
