"""Run a ``unittest.IsolatedAsyncioTestCase`` test under its seeds: the plugin's runner for them.

unittest drives such a test through an asyncio runner of its own: set-up,
the test, tear-down and clean-ups are separate ``run_until_complete`` calls
on one loop, made from synchronous code, so the test cannot be one
coroutine of a seedloop run. Each seed instead runs the test case whole,
with unittest's own machinery (skips, expected failures, sub-tests,
clean-ups), on a SeedLoop of that seed: the loop the runner asks asyncio for
is that SeedLoop, and the seed's deterministic world is installed around the
run. The search stops at the first failing seed; that seed then runs once
more reporting to pytest, so the failure is reported as pytest reports any
unittest failure, with a "seedloop" section naming the seed.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import unittest
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import _world
from ._loop import SeedLoop
from ._options import RunOptions
from ._pytest_run import Outcome, replay_command_line, seeds_and_strategy, spec_for
from ._pytest_suite import CommandLine
from .errors import NondeterminismError

_API = "@pytest.mark.seedloop"  # what names its options in an error


def simulate_case(item: Any, cmd: CommandLine) -> Outcome:
    """Run the test case of ``item`` (a pytest ``TestCaseFunction``) once per seed.

    The seed reported (the first failing one, else the last) runs again with
    ``item`` as unittest's result, which is how pytest learns the outcome.
    """
    spec = spec_for(item)
    seeds, strategy = seeds_and_strategy(spec, cmd)
    opts = RunOptions.build(_API, strategy, spec.options)
    failing: int | None = None
    reported: int | None = None
    seeds_run = 0
    try:
        for seed in seeds:
            seeds_run += 1
            reported = seed
            result = unittest.TestResult()
            escape = _run_case(_fresh_case(item.instance, item.name), seed, opts, result)
            if escape is not None or not result.wasSuccessful():
                failing = seed
                break
            if result.skipped:
                break  # skipped whole: every seed would say the same
        if reported is None:
            return Outcome()
        escape = _run_case(item.instance, reported, opts, item)
        if escape is not None:
            item.addError(item.instance, (type(escape), escape, escape.__traceback__))
    finally:
        gc.collect()  # what the runs left is finalized here, attributed to this test
    if failing is None:
        return Outcome()
    lines = [
        f"seed:        {failing}",
        f"strategy:    {strategy}",
        f"seeds run:   {seeds_run} (stopped at the first failing seed)",
        f"replay:      {replay_command_line(item, failing, strategy)}",
    ]
    extra = dict(opts.given)
    if extra:
        lines.append(f"options:     {extra}")
    outcome = Outcome(report="\n".join(lines) + "\n")
    if not getattr(item, "_excinfo", None):
        outcome.error = NondeterminismError(
            f"{item.name} failed under seed {failing} (strategy {strategy}), then passed "
            "when that seed ran again: something outside seedloop's control decides the "
            "outcome (real threads, real time, state kept between runs)"
        )
    return outcome


def _fresh_case(case: unittest.TestCase, name: str) -> unittest.TestCase:
    """A new instance of ``case``'s class for one seed, with what pytest's
    fixtures set on ``case`` (attributes its own ``__init__`` did not make)."""
    fresh = type(case)(name)
    made = vars(fresh)
    for attr, value in vars(case).items():
        if attr not in made:
            setattr(fresh, attr, value)
    return fresh


def _run_case(
    case: unittest.TestCase, seed: int, opts: RunOptions, result: Any
) -> BaseException | None:
    """``case.run(result)`` on a SeedLoop of ``seed`` in the seed's world.

    Returns what the code under test swallowed that the world caught (a
    real-time escape, say), which is a failure of the seed like a raised one.
    """
    loop = SeedLoop._for_run(seed, opts, None)
    try:
        with _world.installed(loop, seed, opts.world) as world, _next_new_loop_is(loop):
            case.run(result)
        return world.escapes[0] if world is not None and world.escapes else None
    finally:
        if not loop.is_closed():
            loop.close()


@contextmanager
def _next_new_loop_is(loop: SeedLoop) -> Iterator[None]:
    """The next event loop asyncio makes is ``loop``: the test case's runner's.

    unittest asks ``asyncio.new_event_loop()`` (3.10) or an ``asyncio.Runner``
    without a loop factory (3.11+), which asks ``asyncio.events``; later calls,
    from the test itself, get new loops as usual.
    """
    saved: tuple[Callable[[], Any], Callable[[], Any]] = (
        asyncio.new_event_loop,
        asyncio.events.new_event_loop,
    )

    def new_event_loop() -> Any:
        asyncio.new_event_loop, asyncio.events.new_event_loop = saved
        return loop

    asyncio.new_event_loop = asyncio.events.new_event_loop = new_event_loop
    try:
        yield
    finally:
        asyncio.new_event_loop, asyncio.events.new_event_loop = saved
