"""After a failure: shrink its schedule, explain it, check determinism.

- ``investigate``: fill a Failure's shrunk tape, timeline and verdict.
- ``shrink_failure``: minimise the failing decision tape (Rust shrinker),
  keeping the same failure (exception type and raising line).
- ``timeline``: replay a tape with an observer and render, step by step, the
  virtual time, the task and the line it resumed at.
- ``strict_verdict``: can a real event loop produce this failure?
- ``check_determinism``: run a seed twice and name the first diverging step.
"""

from __future__ import annotations

import asyncio
import inspect
import linecache
import os
import re
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from . import _engine, _race
from ._describe import LIBRARY_DIRS, innermost_frame, task_label
from ._loop import SeedLoop
from ._options import RunOptions
from ._result import Failure, RunResult
from ._run import Factory, run_seed
from .errors import NondeterminismError


def signature(exc: BaseException | None) -> tuple[str, str, int] | None:
    """What makes two failures 'the same': exception type and the line that raised it."""
    if exc is None:
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if not f.filename.startswith(LIBRARY_DIRS)]
    chosen = user or frames
    if not chosen:
        return (type(exc).__qualname__, "", 0)
    last = chosen[-1]
    return (type(exc).__qualname__, last.filename, last.lineno or 0)


def shrink_failure(
    factory: Factory,
    seed: int,
    tape: list[int],
    exception: BaseException,
    opts: RunOptions,
    *,
    budget: int = 300,
) -> list[int]:
    """The simplest tape (fewest departures from FIFO) that fails the same way."""
    wanted = signature(exception)
    shrinker = _engine.Shrinker(tape, budget)
    while (candidate := shrinker.next_candidate()) is not None:
        # Candidates are edits of a tape: an entry may outgrow its step's
        # ready list, and then picks the newest callback.
        result = run_seed(factory, seed, opts, tape=candidate, clamp_tape=True)
        same = signature(result.exception) == wanted
        shrinker.report(same, result.tape if same else None)
    return shrinker.best()


@dataclass
class TaskInfo:
    ordinal: int
    task: asyncio.Task[Any]
    parent: int
    created_at: str

    @property
    def name(self) -> str:
        return self.task.get_name()  # read late: create_task names it after the factory


@dataclass
class Row:
    step: int
    time: float
    owner: int
    label: str
    where: str
    source: str
    choice: int = 0


def _creation_site() -> str:
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(LIBRARY_DIRS):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "?"
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


class _Recorder:
    """Observer + task factory that collect what a timeline shows."""

    def __init__(self, tracer: _race.AccessTracer | None = None) -> None:
        self.rows: list[Row] = []
        self.tasks: dict[int, TaskInfo] = {}
        self.loop: SeedLoop | None = None
        self.tracer = tracer

    def install(self, loop: SeedLoop) -> None:
        # An observer and a creation hook, not a task factory: the replay must
        # create exactly the tasks (SeedTask, same hashes) the failing run did.
        self.loop = loop
        loop._engine_set_observer(self.observe)
        loop._on_task_created = self.task_created
        if self.tracer is not None:
            self.tracer.start()

    def task_created(self, task: asyncio.Task[Any], parent: asyncio.Task[Any] | None) -> None:
        loop = self.loop
        assert loop is not None
        main = self.tasks.get(1)
        if main is not None and main.task.done():
            return  # seedloop's cleanup after the run, not part of the story
        ordinal = loop.task_ordinal(task)
        self.tasks[ordinal] = TaskInfo(
            ordinal=ordinal,
            task=task,
            parent=loop.task_ordinal(parent) if parent is not None else 0,
            created_at=_creation_site() if self.tasks else "the scenario factory",
        )

    def observe(self, step: int, owner: int, handle: Any) -> None:
        assert self.loop is not None
        main = self.tasks.get(1)
        if main is not None and main.task.done():
            return  # the run is over: what follows is seedloop's own cleanup
        callback = handle._callback
        task = getattr(callback, "__self__", None)
        if self.tracer is not None:
            label = task_label(task, owner) if isinstance(task, asyncio.Task) else "a callback"
            self.tracer.at_step(step, label)
        if not isinstance(task, asyncio.Task):
            return
        coro = task.get_coro()
        frame = innermost_frame(task, skip=LIBRARY_DIRS)
        if frame is None:
            return
        code = frame.f_code
        if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == "CORO_CREATED":
            where, source = f"starts   {code.co_name}()", ""
        else:
            where = (
                f"resumes  {os.path.basename(code.co_filename)}:{frame.f_lineno} {code.co_name}()"
            )
            source = linecache.getline(code.co_filename, frame.f_lineno).strip()
        self.rows.append(Row(step, self.loop.time(), owner, task_label(task, owner), where, source))


def record_timeline(
    factory: Factory,
    seed: int,
    tape: list[int] | None,
    opts: RunOptions,
    timing: list[int] | None = None,
    tracer: _race.AccessTracer | None = None,
) -> tuple[RunResult, list[Row], dict[int, TaskInfo]]:
    """Replay ``tape`` (or, with ``timing``, a feasible run in stock order) with a recorder.

    ``tracer`` also records the user code's attribute/item/global accesses (slow: only
    for explaining one failure)."""
    recorder = _Recorder(tracer)
    try:
        result = run_seed(
            factory,
            seed,
            opts.with_strategy("fifo") if timing is not None else opts,
            tape=tape,
            instrument=recorder.install,
            keep_steps=True,
            clamp_tape=True,
            timing=timing,
        )
    finally:
        if tracer is not None:
            tracer.stop()
    choices = {i: step[2] for i, step in enumerate(result.step_log or [])}
    for row in recorder.rows:
        row.choice = choices.get(row.step, 0)
    return result, recorder.rows, recorder.tasks


def render_timeline(
    rows: list[Row],
    tasks: dict[int, TaskInfo],
    exception: BaseException | None,
    *,
    limit: int = 60,
) -> str:
    lines = ["tasks:"]
    for info in sorted(tasks.values(), key=lambda t: t.ordinal):
        parent = f"#{info.parent}" if info.parent else "the run"
        label = task_label(info.task, info.ordinal)
        where = info.created_at
        lines.append(
            f"  {label} created by {parent}" + (f" at {where}" if ":" in where else f" ({where})")
        )
    lines.append("steps (* = a decision that differs from asyncio's FIFO order):")
    shown = rows[-limit:]
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} earlier steps")
    width = max((len(r.label) for r in shown), default=8)
    for r in shown:
        mark = "*" if r.choice else " "
        lines.append(
            f"  {r.step:>5} {mark} t={r.time:<10.6f} {r.label:<{width}}  {r.where:<38} {r.source}".rstrip()
        )
    if exception is not None:
        sig = signature(exception)
        at = f" at {os.path.basename(sig[1])}:{sig[2]}" if sig and sig[1] else ""
        lines.append(f"  => {type(exception).__name__}: {exception}{at}")
    return "\n".join(lines)


def strict_verdict(
    factory: Factory,
    exception: BaseException,
    strict_order: bool,
    opts: RunOptions,
    seeds: range = range(200),
) -> tuple[bool, int | None, str]:
    """(feasible on a real loop, strict-mode seed or None, one-line explanation)."""
    if strict_order:
        return (
            True,
            None,
            (
                "feasible on a real loop: this schedule keeps asyncio's FIFO order for ready "
                "callbacks (only timers due together are reordered)"
            ),
        )
    wanted = signature(exception)
    strict = opts.with_strategy("strict")
    for seed in seeds:
        result = run_seed(factory, seed, strict)
        if signature(result.exception) == wanted:
            return (
                True,
                seed,
                (
                    f"also reproduces under strict mode (seed {seed}, strategy 'strict'): "
                    "feasible on a real loop"
                ),
            )
    return (
        False,
        None,
        (
            "depends on reordering ready callbacks: stock asyncio runs call_soon callbacks "
            f"first-in-first-out and no strict-mode schedule failed this way in {len(seeds)} seeds"
        ),
    )


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_TASK_NUMBER = re.compile(r"Task-\d+")  # asyncio numbers unnamed tasks process-wide


def outcome(result: RunResult) -> str:
    """What a run ended with, comparable across runs (object addresses masked)."""
    if result.exception is not None:
        text = f"raised {type(result.exception).__qualname__}: {result.exception}"
    else:
        text = f"returned {result.value!r}"
    return _TASK_NUMBER.sub("Task-?", _ADDRESS.sub("0x?", text))


def check_determinism(
    factory: Factory, seed: int, opts: RunOptions, *, api: str = "seedloop.run"
) -> RunResult:
    """Run ``seed`` twice; raise NondeterminismError at the first diverging step."""
    strategy = opts.strategy
    first = run_seed(factory, seed, opts, api=api, keep_steps=True)
    second = run_seed(factory, seed, opts, api=api, keep_steps=True)
    if first.fingerprint == second.fingerprint:
        if outcome(first) != outcome(second):
            raise NondeterminismError(
                f"seed {seed} (strategy {strategy}) is not deterministic: both runs took the "
                f"same schedule but ended differently: first {outcome(first)}, second "
                f"{outcome(second)}. State outside the seed leaks in (module globals that "
                "outlive a run, caches, the wall clock, object ids)."
            )
        return first
    a, b = first.step_log or [], second.step_log or []
    index = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )

    def describe(log: list[tuple[int, int, int, float]]) -> str:
        if index >= len(log):
            return f"ended after {len(log)} steps"
        seq, owner, choice, now = log[index]
        return f"ran entry {seq} of task #{owner} (choice {choice}) at t={now}"

    raise NondeterminismError(
        f"seed {seed} (strategy {strategy}) is not deterministic: the runs diverge at step "
        f"{index}: first run {describe(a)}, second run {describe(b)}. Something outside "
        "the seed leaks in (wall clock, unseeded randomness, threads, object ids, set order)."
    )


#: What a feasible failure's report says: nothing but timing differed from stock.
FEASIBLE_TIMING_VERDICT = (
    "reproducible on a real loop: every decision kept asyncio's order (call_soon FIFO, "
    "timers by deadline, FIFO wake-ups); only timing varied, within what a real machine "
    "varies (CPU time per callback, timers firing late); "
    "seedloop.replay(scenario, failure) reruns it from its recorded timing"
)


def investigate(
    factory: Factory, failure: Failure, opts: RunOptions, *, shrink: bool, explain: bool
) -> None:
    """Fill ``failure`` in: its shrunk tape, its timeline, and whether a real loop can fail so."""
    if failure.timing:
        # A feasible failure: every decision was stock order, so there is no
        # schedule to shrink; its timing replays it in asyncio's own order.
        if explain:
            replayed, rows, tasks = record_timeline(
                factory, failure.seed, None, opts, timing=failure.timing
            )
            shown = replayed.exception if replayed.exception is not None else failure.exception
            failure.timeline = render_timeline(rows, tasks, shown)
            failure.feasible_on_real_loop = True
            failure.feasibility = FEASIBLE_TIMING_VERDICT
        return
    tape = failure.tape
    if shrink:
        tape = shrink_failure(factory, failure.seed, failure.tape, failure.exception, opts)
        failure.shrunk_tape = tape
    if explain:
        # Watch the replay's accesses to name the state the failure raced on
        # (slow, so only here, never in a search).
        tracer = _race.AccessTracer()
        replayed, rows, tasks = record_timeline(factory, failure.seed, tape, opts, tracer=tracer)
        if signature(replayed.exception) == signature(failure.exception):
            decisive = [step for step, choice in enumerate(tape) if choice]
            failure.race = _race.find_race(tracer.accesses, decisive)
        shown = replayed.exception if replayed.exception is not None else failure.exception
        failure.timeline = render_timeline(rows, tasks, shown)
        if signature(replayed.exception) != signature(failure.exception):
            failure.timeline += (
                "\n  (the replay ended differently: "
                f"{outcome(replayed)}; this scenario is not deterministic, "
                "see find_failing_seed(..., check_determinism=True))"
            )
        feasible, _, text = strict_verdict(
            factory, failure.exception, replayed.strict_order, opts
        )
        failure.feasible_on_real_loop = feasible
        failure.feasibility = text
