"""Run one pytest item under its seeds and write its report: the plugin's runner, loaded with the first seedloop test.

The plugin (``seedloop.pytest_plugin``) decides which tests seedloop runs
and keeps pytest's bookkeeping; this module does the running (the failure
database, the search, the report section), so that a pytest session
without a seedloop test never imports the engine, asyncio or the search.
"""

from __future__ import annotations

import gc
import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ._database import Key, database_at, explore_saved_first
from ._options import DEFAULT_STRATEGY, SUITE_OPTIONS, SUITE_SEEDS, SUITE_STRATEGY
from ._pytest_suite import (
    MARKER,
    CommandLine,
    Deferred,
    asked_for_seedloop,
    is_simulate_wrapper,
    run_test,
)
from ._simulate import SimulationFailure
from ._world.guards import real_io_allowed
from .errors import InvalidFactoryError

_DEFAULT_SEEDS = range(100)


@dataclass
class Outcome:
    """What running an item gave: what the plugin keeps on it, and what it raises."""

    #: The sometimes/reachable sites no run satisfied (their text).
    never: list[str] = field(default_factory=list)
    #: The "seedloop" report section (a failure only).
    report: str | None = None
    #: What the test fails with (None: it passed).
    error: BaseException | None = None


@dataclass
class _Spec:
    fn: Any  # the async test function (bound for methods)
    seeds: Iterable[int]
    strategy: str
    options: dict[str, Any]


def spec_for(item: pytest.Function) -> _Spec:
    obj = item.obj
    if is_simulate_wrapper(obj):
        fn = obj.__wrapped__
        instance = getattr(obj, "__self__", None)
        if instance is not None:
            fn = fn.__get__(instance)
        settings = dict(obj.seedloop)
        seeds = settings.pop("seeds", _DEFAULT_SEEDS)
        strategy = settings.pop("strategy", DEFAULT_STRATEGY)
        return _Spec(fn, seeds, strategy, settings)
    marker = item.get_closest_marker(MARKER)
    if marker is None:  # taken over by --seedloop-all
        return _Spec(obj, SUITE_SEEDS, SUITE_STRATEGY, dict(SUITE_OPTIONS))
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


def seeds_and_strategy(spec: _Spec, cmd: CommandLine) -> tuple[Iterable[int], str]:
    """The seeds and strategy a test runs under: the command line's, else its own."""
    if cmd.replay is not None:
        seeds: Iterable[int] = [cmd.replay]
    else:
        seeds = cmd.seeds if cmd.seeds is not None else spec.seeds
    return seeds, cmd.strategy or spec.strategy


def simulate_item(item: pytest.Function, cmd: CommandLine) -> Outcome:
    """Run ``item`` once per seed (saved failing seeds first) until one fails."""
    spec = spec_for(item)
    funcargs = item.funcargs
    argnames = list(item._fixtureinfo.argnames)
    fn = spec.fn
    names = [n for n in item.fixturenames if isinstance(funcargs.get(n), Deferred)]
    if names:
        names = [n for n in item.fixturenames if n in funcargs]

        def factory() -> Any:
            return run_test(fn, funcargs, names, argnames, real_io_allowed)

    else:
        kwargs = {arg: funcargs[arg] for arg in argnames}

        def factory() -> Any:
            return fn(**kwargs)

    # Named like the test (for reports), but without __wrapped__: the factory
    # itself takes no arguments.
    factory.__name__ = getattr(fn, "__name__", "test")
    factory.__qualname__ = getattr(fn, "__qualname__", factory.__name__)

    seeds, strategy = seeds_and_strategy(spec, cmd)
    # An explicit --seedloop-replay runs that seed alone: no database.
    database = None
    if cmd.database is not None and cmd.replay is None:
        database = database_at(*cmd.database)
    try:
        summary, db_run = explore_saved_first(
            database,
            Key.of(item.nodeid, strategy, spec.options),
            factory,
            seeds,
            strategy=strategy,
            options=spec.options,
            stop_on_failure=True,
        )
    finally:
        # What the runs left for the garbage collector (tasks whose exception was
        # never retrieved, loops, their frames) is finalized here, attributed to
        # this test, and not at a random later point: a finalizer that logs runs
        # ast.parse (3.11's traceback), which must not run inside another
        # ast.parse (CPython's AST constructor is not reentrant).
        gc.collect()
    outcome = Outcome(never=[str(site) for site in summary.unsatisfied])
    failure = summary.failure
    if failure is None:
        return outcome
    if isinstance(failure.exception, (pytest.skip.Exception, pytest.xfail.Exception)):
        # pytest.skip()/importorskip()/xfail() in the test: its outcome, not a failure.
        outcome.error = failure.exception
        return outcome
    in_run = [n for n in item.fixturenames if isinstance(funcargs.get(n), Deferred)]
    database_line = db_run.describe() if db_run.database is not None else ""
    outcome.report = _report(item, summary, argnames, tuple(in_run), database_line)
    trace_dir = item.config.getoption("seedloop_trace", None)
    if trace_dir and failure.recording is not None:
        os.makedirs(trace_dir, exist_ok=True)
        path = os.path.join(trace_dir, trace_file_name(item.nodeid))
        failure.save_trace(path)
        outcome.report += f"trace:       {path}\n"
    if cmd.replay is not None:
        outcome.error = failure.exception  # the test's own exception, traceback and all
        return outcome

    error = SimulationFailure(item.name, failure)
    # The full report (timeline, minimal schedule) is the "seedloop" section
    # below the traceback; the message names the seed and the exact command.
    exc = failure.exception
    error.args = (
        f"{item.name} fails under seed {failure.seed} (strategy {failure.strategy}): "
        f"{type(exc).__name__}: {exc}\n"
        f"replay: {replay_command_line(item, failure.seed, failure.strategy)}\n"
        "(the seedloop section of this report shows the failing interleaving)",
    )
    # As `raise error from exc` would, when the plugin raises it.
    error.__cause__ = exc
    error.__suppress_context__ = True
    outcome.error = error
    return outcome


def _report(
    item: pytest.Function,
    summary: Any,
    argnames: list[str],
    in_run: tuple[str, ...] = (),
    database: str = "",
) -> str:
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
    if database:
        lines.append(f"database:    {database}")
    if in_run:
        # Their values exist only inside a run: the python line needs them rebuilt there.
        lines.append(f"fixtures:    {', '.join(in_run)} (set up and torn down inside each run)")
    extra = {k: v for k, v in failure.options.items() if k != "steps"}
    if extra:
        lines.append(f"options:     {extra}")
    tape_command = getattr(failure, "replay_tape_command", None)
    if tape_command:
        lines.append(f"schedule:    {tape_command}  (the minimal failing schedule)")
    feasibility = getattr(failure, "feasibility", None)
    if feasibility:
        lines.append(f"real loop:   {_indent(str(feasibility))}")
    race = getattr(failure, "race", None)
    if race is not None:
        lines.append(f"race:        {_indent(str(race))}")
    timeline = getattr(failure, "timeline", None)
    if timeline:
        lines.append("timeline:")
        lines.extend("  " + line for line in str(timeline).splitlines())
    return "\n".join(lines) + "\n"


def trace_file_name(nodeid: str) -> str:
    """``tests/test_x.py::test_y[3]`` -> ``tests_test_x.py__test_y_3_.trace.json``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", nodeid).strip("_") + ".trace.json"


def _indent(text: str, prefix: str = " " * 13) -> str:
    return ("\n" + prefix).join(text.splitlines() or [""])


def replay_command_line(item: pytest.Item, seed: int, strategy: str) -> str:
    """The pytest command line that reruns this test under ``seed`` alone.

    A test only ``--seedloop-all`` took over needs it again: without it the
    test would run on its own plugin's loop, and pass.
    """
    invocation = item.config.invocation_params.dir
    path = os.path.relpath(str(item.path), str(invocation))
    tail = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else ""
    target = f"{path}::{tail}" if tail else path
    suite = "" if asked_for_seedloop(item) else " --seedloop-all"
    return (
        f"pytest {shlex.quote(target)}{suite} --seedloop-replay {seed} "
        f"--seedloop-strategy {strategy}"
    )


def python_replay_call(item: pytest.Function, failure: Any, argnames: list[str]) -> str:
    name = getattr(item, "originalname", item.name)
    if isinstance(getattr(item.obj, "seedloop", None), dict) and hasattr(item.obj, "__wrapped__"):
        name += ".__wrapped__"  # @simulate: the decorated name would rerun every seed
    if argnames:
        name = f"lambda: {name}({', '.join(f'{a}={a}' for a in argnames)})"
    options = "".join(f", {k}={v!r}" for k, v in sorted(failure.options.items()))
    return f"seedloop.run({name}, seed={failure.seed}, strategy={failure.strategy!r}{options})"
