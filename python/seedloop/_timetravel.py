"""Time-travel replay: rerun one seed exactly, stop in pdb before a step, print watched expressions as they change.

The run is the same run a search or ``seedloop replay`` makes (same seed,
strategy, options: same fingerprint); only the timeline's per-step observer
is added (:class:`seedloop._investigate._Recorder`), so step numbers are the
timeline's. The debugger opens *before* the chosen step runs, in the frame of
the task that step resumes: the line shown is the one the task is about to
resume at, as in the timeline's row for that step. Virtual time stands still
while the prompt waits (nothing runs), and the real-time budget
(``max_wall``) is off for the run, so a debugging session never turns into a
HangError.
"""

from __future__ import annotations

import asyncio
import bdb
import pdb
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any, TextIO

from ._describe import LIBRARY_DIRS, task_label
from ._investigate import _Recorder
from ._loop import SeedLoop
from ._options import RunOptions
from ._result import RunResult
from ._run import Factory, run_seed
from .errors import InvalidOptionError


def task_frames(task: asyncio.Future[Any]) -> list[FrameType]:
    """The frames of the task's await chain, outermost first (seedloop's and asyncio's left out).

    A suspended coroutine's frame has no ``f_back``: this chain is what
    ``where``, ``up`` and ``down`` walk in the debugger instead.
    """
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if get_coro else None
    frames: list[FrameType] = []
    seen = 0
    while coro is not None and seen < 200:
        seen += 1
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "gi_frame", None)
            or getattr(coro, "ag_frame", None)
        )
        if frame is not None:
            frames.append(frame)
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    user = [f for f in frames if not f.f_code.co_filename.startswith(LIBRARY_DIRS)]
    return user or frames


def _short(value: str, limit: int = 120) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


@dataclass
class _Watch:
    expression: str
    code: Any
    #: The task ordinal whose frames the expression is evaluated in (None: not chosen yet).
    ordinal: int | None = None
    #: repr of the last value seen (None: not evaluable yet).
    last: str | None = None
    #: The frame it last evaluated in: once the task is done, its final
    #: locals still reach shared objects (``self.balance``) others change.
    frame: FrameType | None = None


class _StepDebugger(pdb.Pdb):
    """pdb at one step of a run: the task's await chain is the stack; c, n, s move in steps.

    The task is suspended, so line stepping inside it is impossible; instead
    ``c`` runs to the next ``--break-at`` step (or the end), ``n`` to the next
    step of the same task, ``s`` to the next step of any task, ``q`` ends the run.
    """

    def __init__(self, frames: list[FrameType], stdin: TextIO, stdout: TextIO) -> None:
        super().__init__(stdin=stdin, stdout=stdout, readrc=False, nosigint=True)
        self.prompt = "(Pdb) "
        self._frames = frames
        #: What the user asked for when leaving the prompt: "continue", "next", "step", "quit".
        self.resume = "continue"

    def get_stack(self, f: Any, t: Any) -> tuple[list[tuple[FrameType, int]], int]:
        stack = [(frame, frame.f_lineno) for frame in self._frames]
        return stack, len(stack) - 1

    def _leave(self, how: str) -> int:
        self.resume = how
        return 1

    def do_continue(self, arg: str) -> int:
        """c(ont(inue)): run to the next --break-at step, or to the end of the run."""
        return self._leave("continue")

    do_c = do_cont = do_continue

    def do_next(self, arg: str) -> int:
        """n(ext): run until this task's next step."""
        return self._leave("next")

    do_n = do_next

    def do_step(self, arg: str) -> int:
        """s(tep): run until the next step of any task."""
        return self._leave("step")

    do_s = do_step

    def do_quit(self, arg: str) -> int:
        """q(uit): stop the run here."""
        self.resume = "quit"
        return 1

    do_q = do_exit = do_quit

    def do_EOF(self, arg: str) -> int:
        self.message("")
        return self.do_quit(arg)


class TimeTraveller(_Recorder):
    """The timeline's recorder, plus breakpoints at steps and watched expressions."""

    def __init__(
        self,
        breaks: Iterable[int] = (),
        watches: Sequence[str] = (),
        *,
        task: str | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        super().__init__()
        self.breaks = sorted(set(breaks))
        self.task_name = task
        self.watches = [_Watch(e, _compile_watch(e)) for e in watches]
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        #: The last step of the run itself (seedloop's clean-up after it not counted).
        self.last_step = -1
        self.stopped_at: list[int] = []
        self._stop_any = False
        self._stop_task: int | None = None
        self._previous: tuple[int, float, str] | None = None  # the step that just ran
        self._done = False
        self._labels: dict[int, str] = {}  # non-task steps a break named

    def install(self, loop: SeedLoop) -> None:
        super().install(loop)
        loop._engine_set_observer(self.observe_step)

    def _write(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def observe_step(self, step: int, owner: int, handle: Any) -> None:
        if self._done:
            return
        loop = self.loop
        assert loop is not None
        main = self.tasks.get(1)
        run_over = main is not None and main.task.done()
        if self.watches:
            self._check_watches()
        if run_over:
            # What follows is seedloop's clean-up, not part of the run.
            self._done = True
            return
        self.last_step = step
        steps = self.rec.steps
        count = len(steps)
        self.observe(step, owner, handle)
        row = steps[-1] if len(steps) > count and steps[-1].kind in ("start", "resume") else None
        label = self._label(row.task) if row is not None else _callback_label(handle)
        self._previous = (step, loop.time(), label)
        if row is None:
            if self.breaks and self.breaks[0] == step:
                self._labels[step] = label
            return  # not a task step: nothing to stop in
        wanted = self._stop_any or self._stop_task == owner
        while self.breaks and self.breaks[0] <= step:
            at = self.breaks.pop(0)
            if at != step:
                self._write(
                    f"seedloop: step {at} runs {self._labels.get(at, 'a callback')}, not a "
                    f"task; stopping at step {step}, the next task step"
                )
            wanted = True
        if wanted:
            self._break(step, owner, row)

    def _break(self, step: int, owner: int, row: Any) -> None:
        self._stop_any = False
        self._stop_task = None
        info = self.tasks.get(owner)
        frames = task_frames(info.task) if info is not None else []
        if not frames:
            return
        assert self.loop is not None
        self.stopped_at.append(step)
        self._write(
            f"seedloop: before step {step} t={self.loop.time():.6f} {self._label(row.task)}  "
            f"{row.what.strip()}  (virtual time stands still at this prompt)"
        )
        debugger = _StepDebugger(frames, self.stdin, self.stdout)
        debugger.interaction(frames[-1], None)
        if debugger.resume == "quit":
            self._done = True
            self.loop._engine_set_observer(None)
            raise bdb.BdbQuit(f"quit in the debugger at step {step}")
        if debugger.resume == "next":
            self._stop_task = owner
        elif debugger.resume == "step":
            self._stop_any = True

    def _check_watches(self) -> None:
        if self._previous is None:
            return  # nothing has run yet: no step to credit a change to
        step, now, label = self._previous
        for watch in self.watches:
            value = self._evaluate(watch)
            if value is None or value == watch.last:
                continue
            old = watch.last if watch.last is not None else "<unset>"
            at = f"{now:.6f}".rstrip("0").rstrip(".")  # the timeline's t=, without its zeros
            self._write(f"step {step} t={at} {label} {watch.expression}: {old} -> {value}")
            watch.last = value

    def _evaluate(self, watch: _Watch) -> str | None:
        if watch.ordinal is not None:
            info = self.tasks.get(watch.ordinal)
            frames = task_frames(info.task) if info is not None else []
            if not frames and watch.frame is not None:
                frames = [watch.frame]  # the task is done
            return _eval_in(watch, frames)
        for ordinal in sorted(self.tasks):
            info = self.tasks[ordinal]
            if self.task_name is not None and not _names(info.task, ordinal, self.task_name):
                continue
            value = _eval_in(watch, task_frames(info.task))
            if value is not None:
                watch.ordinal = ordinal  # from now on, always this task's frames
                return value
        return None


def _names(task: asyncio.Future[Any], ordinal: int, name: str) -> bool:
    label = task_label(task, ordinal)  # '#3 consumer'
    get_name = getattr(task, "get_name", None)
    return name in (label, label.split(" ", 1)[-1], f"#{ordinal}", get_name() if get_name else None)


def _eval_in(watch: _Watch, frames: list[FrameType]) -> str | None:
    """repr of the watch's value in the innermost frame where it evaluates; None if none."""
    for frame in reversed(frames):
        try:
            value = eval(watch.code, frame.f_globals, frame.f_locals)
        except Exception:
            continue
        watch.frame = frame
        try:
            return _short(repr(value))
        except Exception as exc:  # a broken __repr__ is still a value
            return f"<repr failed: {type(exc).__name__}>"
    return None


def _callback_label(handle: Any) -> str:
    callback = getattr(handle, "_callback", None)
    name = getattr(callback, "__qualname__", None) or type(callback).__name__
    return f"callback {name}"


def _compile_watch(expression: str) -> Any:
    try:
        return compile(expression, "<watch>", "eval")
    except SyntaxError as exc:
        raise InvalidOptionError(
            f"--watch {expression!r} is not a Python expression ({exc.msg}); write one that "
            "pdb's 'p' would accept, e.g. --watch 'self.balance' --watch 'len(queue)'"
        ) from None


@dataclass
class TimeTravel:
    """What a time-travel replay produced: the run, and where it stopped."""

    result: RunResult
    stopped_at: list[int] = field(default_factory=list)
    last_step: int = -1


def time_travel(
    factory: Factory,
    seed: int,
    opts: RunOptions,
    *,
    breaks: Iterable[int] = (),
    watches: Sequence[str] = (),
    task: str | None = None,
    tape: Sequence[int] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    instrument: Callable[[SeedLoop], None] | None = None,
) -> TimeTravel:
    """Replay ``seed`` under ``opts`` (already calibrated) with breakpoints and watches.

    ``tape`` replays a decision tape instead of the strategy (a failure's
    minimal schedule: the run its report's timeline shows).
    Raises InvalidOptionError when a break step lies beyond the run's last step.
    """
    breaks = sorted(set(breaks))
    if any(isinstance(b, bool) or not isinstance(b, int) or b < 0 for b in breaks):
        raise InvalidOptionError(f"break steps are non-negative ints, got {breaks!r}")
    traveller = TimeTraveller(breaks, watches, task=task, stdin=stdin, stdout=stdout)

    def install(loop: SeedLoop) -> None:
        traveller.install(loop)
        if instrument is not None:
            instrument(loop)

    # The debugger holds the run as long as the user reads: a real-time budget
    # would end it. Nothing else changes, so the schedule (fingerprint) is the same.
    debug_opts = replace(opts, max_wall=None)
    result = run_seed(
        factory,
        seed,
        debug_opts,
        tape=list(tape) if tape is not None else None,
        instrument=install,
        keep_steps=True,
    )
    result.options = opts.kwargs
    if traveller.breaks:
        first = traveller.breaks[0]
        if first <= traveller.last_step:
            raise InvalidOptionError(
                f"--break-at {first}: no task runs from step {first} to the run's last step "
                f"({traveller.last_step}), only callbacks; pick a task's step from the timeline"
            )
        raise InvalidOptionError(
            f"--break-at {first}: the run (seed {seed}, strategy {opts.strategy}) ends at step "
            f"{traveller.last_step}; pick a step from its timeline (steps 0..{traveller.last_step})"
        )
    if task is not None and watches and all(w.ordinal is None for w in traveller.watches):
        names = ", ".join(
            task_label(i.task, o) for o, i in sorted(traveller.tasks.items())
        ) or "none"
        raise InvalidOptionError(
            f"--task {task!r}: no task of the run by that name could evaluate "
            f"{', '.join(repr(w.expression) for w in traveller.watches)}; its tasks: {names}"
        )
    return TimeTravel(result, traveller.stopped_at, traveller.last_step)

