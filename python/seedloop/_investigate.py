"""After a failure: shrink its schedule, explain it, check determinism.

- ``investigate``: fill a Failure's shrunk tape, timeline and verdict.
- ``shrink_failure``: minimise the failing decision tape (Rust shrinker),
  keeping the same failure (exception type and raising line).
- ``record_timeline``/``render_timeline``: replay a tape with a recorder and
  render, step by step, the virtual time, the task and the line it resumed
  at, with what decided the run: timers firing, cancellations (who, and where
  the CancelledError landed), wake-ups by futures and locks, and network
  connections by identity.
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
from types import FrameType
from typing import Any

from . import _engine, _race
from ._describe import LIBRARY_DIRS, innermost_frame, task_label
from ._loop import SeedLoop, SeedTask
from ._options import RunOptions
from ._result import Failure, RunResult
from ._run import Factory, run_seed
from ._timeline import Event, Lane, Recording, Step, _bisect
from .errors import BlockingCallError, NondeterminismError, SimulationEscapeError
from .net import _HOST, NetNotSupportedError


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
    host: str = ""

    @property
    def name(self) -> str:
        return self.task.get_name()  # read late: create_task names it after the factory


#: Where a loop step begins: walking out of a step's frames stops here (what
#: lies beyond is the code that started the run, not the step's).
_STEP_BOUNDARY = ("_run_once", "run_forever", "run_until_complete")


def _user_site(frame: FrameType | None) -> tuple[str, int, str]:
    """(file, line, function) of the innermost frame of this step outside seedloop and asyncio."""
    while frame is not None and frame.f_code.co_filename.startswith(LIBRARY_DIRS):
        if frame.f_code.co_name in _STEP_BOUNDARY:
            return "", 0, ""
        frame = frame.f_back
    if frame is None:
        return "", 0, ""
    return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name


def _creation_site() -> str:
    path, line, _ = _user_site(sys._getframe(2))
    return f"{os.path.basename(path)}:{line}" if path else ""


def _callable_name(callback: Any) -> str:
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    if name is None:
        name = type(callback).__name__
    return str(name).replace(".<locals>.", ".")


def _site(path: str, line: int) -> str:
    return f"{os.path.basename(path)}:{line}" if path else "?"


#: seedloop.net's own timers, as the timeline names them.
_NET_TIMERS = {
    "Network._due": "network delivery due",
    "_Connect._syn_arrives": "network: SYN arrives",
    "_Connect._established": "network: handshake completes",
    "_Connect._attempt": "network: SYN retransmission timer",
    "_Connect._refused": "network: RST answers the SYN",
    "_StreamTransport._refused_by_peer": "network: the peer's reset arrives",
    "_StreamTransport._reset_after_round_trip": "network: retransmission timer",
}

#: asyncio's own timers that decide runs, as the timeline names them.
_ASYNCIO_TIMERS = {
    "_release_waiter": "wait_for() timeout",
    "Timeout._on_timeout": "asyncio.timeout() deadline",
}


class _Recorder:
    """Observer + scheduling taps that collect what a timeline shows.

    Installed only on the loop of a replay that explains a failure: the
    search's runs never pay for any of it.
    """

    def __init__(self, tracer: _race.AccessTracer | None = None) -> None:
        self.tasks: dict[int, TaskInfo] = {}
        self.loop: SeedLoop | None = None
        self.rec = Recording()
        #: id(handle) -> (step that scheduled it, virtual time then).
        self.scheduled: dict[int, tuple[int | None, float]] = {}
        self.step: int | None = None  # the step running now
        self.what = ""  # what it does
        self.task: int = 0  # the task it steps (0: a callback)
        self.host: str = ""
        self.pending_cancels: dict[int, Event] = {}
        self.objects: dict[int, tuple[Any, str]] = {}  # id -> (primitive, "Lock 1")
        self.kinds: dict[str, int] = {}
        self.conns: dict[tuple[int, int], int] = {}
        self.sent: dict[int, int] = {}  # pipe -> bytes sent so far
        self.received: dict[int, int] = {}  # pipe -> bytes received so far
        self.sends: list[tuple[int, int, Event]] = []  # (pipe, end offset, event)
        self.recvs: dict[int, list[tuple[int, int, Event]]] = {}  # pipe -> (start, end, event)
        self._saved_cancel: Any = None
        #: Records the user code's attribute/item/global accesses (naming a race).
        self.tracer = tracer

    # -- installing and removing the taps ------------------------------------

    def install(self, loop: SeedLoop) -> None:
        # An observer and a creation hook, not a task factory: the replay must
        # create exactly the tasks (SeedTask, same hashes) the failing run did.
        self.loop = loop
        loop._engine_set_observer(self.observe)
        loop._on_task_created = self.task_created
        loop._seedloop_tap = self.net_event  # read by the run's Network when it is made
        # Instance attributes shadow the Rust methods (asyncio's C futures and
        # tasks look call_soon up on the loop), so every handle scheduled in
        # this replay is traced to the step that scheduled it.
        for name in ("call_soon", "call_later", "call_at"):
            loop.__dict__[name] = self._scheduling(loop, name)
        recorder = self
        original = self._saved_cancel = SeedTask.cancel

        def cancel(task: Any, *args: Any, **kwargs: Any) -> bool:
            done = original(task, *args, **kwargs)
            if done and task.get_loop() is recorder.loop:
                recorder.cancelled(task, sys._getframe(1))
            return bool(done)

        SeedTask.cancel = cancel  # type: ignore[method-assign]
        if self.tracer is not None:
            self.tracer.start()

    def uninstall(self) -> None:
        if self._saved_cancel is not None:
            SeedTask.cancel = self._saved_cancel  # type: ignore[method-assign]
            self._saved_cancel = None

    def _scheduling(self, loop: SeedLoop, name: str) -> Any:
        method = getattr(type(loop), name)
        scheduled = self.scheduled

        def schedule(*args: Any, **kwargs: Any) -> Any:
            handle = method(loop, *args, **kwargs)
            scheduled[id(handle)] = (self.step, loop.time())
            return handle

        schedule.__name__ = schedule.__qualname__ = name
        return schedule

    # -- what the taps see -------------------------------------------------

    def _over(self) -> bool:
        main = self.tasks.get(1)
        return main is not None and main.task.done()  # what follows is seedloop's clean-up

    def task_created(self, task: asyncio.Task[Any], parent: asyncio.Task[Any] | None) -> None:
        loop = self.loop
        assert loop is not None
        if self._over():
            return
        ordinal = loop.task_ordinal(task)
        host = _HOST.get(None)
        site = _creation_site() if self.tasks else "the scenario factory"
        if not site and self.step is not None and not self.task:
            site = f"a callback at step {self.step} ({self.what})"
        self.tasks[ordinal] = TaskInfo(
            ordinal=ordinal,
            task=task,
            parent=loop.task_ordinal(parent) if parent is not None else 0,
            created_at=site or "?",
            host=host.name if host is not None else "",
        )

    def _label(self, ordinal: int) -> str:
        info = self.tasks.get(ordinal)
        if info is None:
            return f"#{ordinal}" if ordinal else "a callback"
        return task_label(info.task, ordinal)

    def _event(self, kind: str, text: str, **fields: Any) -> Event:
        assert self.loop is not None
        event = Event(
            step=self.step if self.step is not None else -1,
            time=self.loop.time(),
            kind=kind,
            task=self.task,
            text=text,
            host=self.host,
            **fields,
        )
        self.rec.events.append(event)
        return event

    def _name_object(self, obj: Any) -> str:
        known = self.objects.get(id(obj))
        if known is None or known[0] is not obj:
            kind = type(obj).__name__
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            known = self.objects[id(obj)] = (obj, f"{kind} {self.kinds[kind]}")
        return known[1]

    def _waiting_on(self, task: asyncio.Task[Any], fut: Any) -> str:
        """What the task was waiting for: the asyncio primitive, a task, a gather."""
        inner = innermost_frame(task)
        if inner is not None and inner.f_code.co_filename.startswith(LIBRARY_DIRS):
            owner = inner.f_locals.get("self")
            if owner is not None and not isinstance(owner, asyncio.Future):
                return f"{self._name_object(owner)} {inner.f_code.co_name}()"
        if inner is not None and inner.f_code.co_filename.startswith(LIBRARY_DIRS):
            return f"asyncio.{inner.f_code.co_name}() ended"
        if isinstance(fut, asyncio.Task) and self.loop is not None:
            return f"task {self._label(self.loop.task_ordinal(fut))} finishing"
        kind = type(fut).__name__
        if kind == "_GatheringFuture":
            return "gather() completing"
        return f"a {kind.lstrip('_')}"

    def observe(self, step: int, owner: int, handle: Any) -> None:
        assert self.loop is not None
        cause, _armed_at = self.scheduled.pop(id(handle), (None, 0.0))
        if self.tracer is not None and not self._over():
            task = getattr(handle._callback, "__self__", None)
            label = task_label(task, owner) if isinstance(task, asyncio.Task) else "a callback"
            self.tracer.at_step(step, label)
        if self._over():
            self.step = None
            return
        self.step = step
        now = self.loop.time()
        callback = handle._callback
        bound = getattr(callback, "__self__", None)
        host = handle.get_context().get(_HOST)
        self.host = host.name if host is not None else ""
        if isinstance(bound, asyncio.Task):
            self._task_step(step, now, owner, handle, bound, cause)
            return
        self.task = 0
        when = handle._when
        name = _callable_name(callback)
        if when is None:
            self.what = f"runs {name}()"
            self.rec.steps.append(
                Step(step, now, 0, "callback", self.what, cause=cause, host=self.host)
            )
            return
        by = self.rec.step_at(cause) if cause is not None else None
        armer = self._label(by.task) if by is not None and by.task else "the loop"
        args = handle._args
        fut = args[0] if args else None
        if name.endswith("_set_result_unless_cancelled") and isinstance(fut, asyncio.Future):
            waiter = next(
                (cb.__self__ for cb, _ in getattr(fut, "_callbacks", None) or []
                 if isinstance(getattr(cb, "__self__", None), asyncio.Task)),
                None,
            )
            woken = self.loop.task_ordinal(waiter) if waiter is not None else 0
            what = f"sleep() of {self._label(woken)} ends" if woken else "sleep() ends"
        elif name in _NET_TIMERS:
            what = _NET_TIMERS[name]
        else:
            what = f"{_ASYNCIO_TIMERS.get(name, name + '()')} armed by {armer}"
        self.what = what
        if cause is not None:
            what += f" (armed at step {cause})"
        self.rec.steps.append(Step(step, now, 0, "timer", what, cause=cause, host=self.host))
        self._event("timer", f"timer fires: {what}")

    def _task_step(
        self, step: int, now: float, owner: int, handle: Any, task: asyncio.Task[Any],
        cause: int | None,
    ) -> None:
        assert self.loop is not None
        ordinal = self.loop.task_ordinal(task)
        self.task = ordinal
        info = self.tasks.get(ordinal)
        if info is not None and not info.host:
            info.host = self.host
        coro = task.get_coro()
        frame = innermost_frame(task, skip=LIBRARY_DIRS)
        if frame is None:
            return
        code = frame.f_code
        if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == "CORO_CREATED":
            kind, what, source = "start", f"starts   {code.co_name}()", ""
        else:
            kind = "resume"
            what = (
                f"resumes  {os.path.basename(code.co_filename)}:{frame.f_lineno} {code.co_name}()"
            )
            source = linecache.getline(code.co_filename, frame.f_lineno).strip()
        self.rec.steps.append(
            Step(step, now, ordinal, kind, what, code.co_filename, frame.f_lineno,
                 code.co_name, source, cause=cause, host=self.host)
        )
        cancel = self.pending_cancels.pop(ordinal, None)
        if cancel is not None:
            self._event(
                "cancelled",
                f"CancelledError lands in {self._label(ordinal)} at "
                f"{_site(code.co_filename, frame.f_lineno)} {code.co_name}() "
                f"(cancelled at step {cancel.step})",
                file=code.co_filename,
                line=frame.f_lineno,
            )
            return
        args = handle._args
        fut = args[0] if args else None
        if isinstance(fut, asyncio.Future) and cause is not None:
            by = self.rec.step_at(cause)
            waker = self._label(by.task) if by is not None and by.task else "a callback"
            waiting = self._waiting_on(task, fut)
            if by is not None and by.kind == "timer":
                if waiting == "asyncio.sleep() ended":
                    return  # the timer's own row says whose sleep ended
                waker = "a timer"
            self._event(
                "wake",
                f"woken by {waker} at step {cause}: {waiting}",
                target=ordinal,
                from_step=cause,
            )

    def cancelled(self, task: asyncio.Task[Any], caller: FrameType | None) -> None:
        if self._over() or self.loop is None:
            return
        ordinal = self.loop.task_ordinal(task)
        path, line, func = _user_site(caller)
        by = self._label(self.task) if self.task else f"a callback ({self.what})"
        at = f" at {_site(path, line)}" if path else ""
        self.pending_cancels[ordinal] = self._event(
            "cancel", f"{by} cancels {self._label(ordinal)}{at}", target=ordinal,
            file=path, line=line,
        )

    def _conn(self, transport: Any) -> int:
        key = (min(transport._out, transport._in), max(transport._out, transport._in))
        number = self.conns.get(key)
        if number is None:
            number = self.conns[key] = len(self.conns) + 1
            me, peer = transport._extra["sockname"], transport._extra["peername"]
            self.rec.connections[number] = (
                f"{transport._host.name} {me[0]}:{me[1]} -> {peer[0]}:{peer[1]}"
            )
        return number

    def net_event(self, kind: str, subject: Any, nbytes: int = 0) -> None:
        if self._over() or self.step is None:
            return
        if kind in ("connect", "refused"):
            src = subject.src.name
            verb = "connects to" if kind == "connect" else "refused by"
            self._event(kind, f"{src} {verb} {subject.ip}:{subject.port}")
            return
        if kind in ("partition", "heal"):
            a, b, one_way = subject
            if not a and not b:
                self._event(kind, "heal: every partition")
                return
            names = [",".join(h.name for h in group) for group in (a, b)]
            arrow = " -> " if one_way else " <-> "
            self._event(kind, f"{kind}: {names[0]}{arrow}{names[1]}")
            return
        if kind in ("crash", "restart"):
            self._event(kind, f"host {subject.name} {kind}es" if kind == "crash" else
                        f"host {subject.name} restarts")
            return
        conn = self._conn(subject)
        desc = self.rec.connections[conn]
        if kind == "send":
            pipe = subject._out
            end = self.sent[pipe] = self.sent.get(pipe, 0) + nbytes
            event = self._event(kind, f"sends {nbytes} bytes on conn {conn}",
                                conn=conn, nbytes=nbytes)
            self.sends.append((pipe, end, event))
        elif kind == "recv":
            pipe = subject._in
            start = self.received.get(pipe, 0)
            self.received[pipe] = start + nbytes
            event = self._event(
                kind, f"conn {conn} delivers {nbytes} bytes to {subject._host.name}",
                conn=conn, nbytes=nbytes,
            )
            self.recvs.setdefault(pipe, []).append((start, start + nbytes, event))
        else:
            text = {
                "established": f"connected: conn {conn} ({desc})",
                "accept": f"accepts conn {conn} ({desc})",
                "eof": f"conn {conn}: {subject._host.name} gets EOF",
                "reset": f"conn {conn}: {subject._host.name} gets a reset",
                "abort": f"resets conn {conn} ({subject._host.name}'s end)",
                "close": f"closes conn {conn} ({subject._host.name}'s end)",
            }[kind]
            self._event("reset" if kind == "abort" else kind, text, conn=conn)

    # -- after the run -----------------------------------------------------

    def finish(self, choices: dict[int, int]) -> Recording:
        rec = self.rec
        for step in rec.steps:
            step.choice = choices.get(step.step, 0)
        for info in sorted(self.tasks.values(), key=lambda t: t.ordinal):
            rec.lanes.append(
                Lane(info.ordinal, task_label(info.task, info.ordinal), info.parent,
                     info.created_at, info.host)
            )
        hosts = sorted({s.host for s in rec.steps if not s.task}, key=lambda h: (h != "", h))
        for host in hosts:
            rec.lanes.append(Lane(0, f"callbacks on {host}" if host else "callbacks", host=host))
        # A send's bytes reach the receiver at the delivery holding its last byte;
        # the delivery's bytes reach the task step its wake-ups lead to.
        for pipe, end, event in self.sends:
            for start, stop, recv in self.recvs.get(pipe, ()):
                if start < end <= stop:
                    event.to_step = recv.step
                    break
        causes = {s.step: s.cause for s in rec.steps}
        for recvs in self.recvs.values():
            for _, _, recv in recvs:
                recv.to_step = _consumer(rec, causes, recv.step)
        return rec


def _consumer(rec: Recording, causes: dict[int, int | None], origin: int) -> int | None:
    """The first task step after ``origin`` that ``origin``'s callbacks led to."""
    first = _bisect(rec.steps, origin + 1)
    # Bounded: a delivery's reader runs within a few hundred steps, or never.
    for step in rec.steps[first : first + 400]:
        if not step.task:
            continue
        cause, hops = step.cause, 0
        while cause is not None and cause > origin and hops < 20:
            cause, hops = causes.get(cause), hops + 1
        if cause == origin:
            return step.step
    return None


def record_timeline(
    factory: Factory,
    seed: int,
    tape: list[int] | None,
    opts: RunOptions,
    timing: list[int] | None = None,
    tracer: _race.AccessTracer | None = None,
) -> tuple[RunResult, Recording]:
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
        recorder.uninstall()
        if tracer is not None:
            tracer.stop()
    choices = {i: step[2] for i, step in enumerate(result.step_log or [])}
    rec = recorder.finish(choices)
    if result.exception is not None:
        rec.exception = f"{type(result.exception).__name__}: {result.exception}"
        sig = signature(result.exception)
        rec.raised_at = f"{os.path.basename(sig[1])}:{sig[2]}" if sig and sig[1] else ""
    return result, rec


#: Event kinds the text timeline lists under the step they happened in.
_TEXT_EVENTS = (
    "cancel", "cancelled", "wake", "connect", "established", "accept", "refused", "send",
    "recv", "eof", "reset", "close", "partition", "heal", "crash", "restart",
)


def render_timeline(
    rec: Recording,
    exception: BaseException | None,
    *,
    limit: int = 60,
) -> str:
    lines = ["tasks:"]
    for lane in rec.lanes:
        if not lane.ordinal:
            continue
        where = lane.created_at
        on = f" on host {lane.host}" if lane.host else ""
        if where.startswith("a callback"):
            lines.append(f"  {lane.label} created by {where}{on}")
            continue
        parent = f"#{lane.parent}" if lane.parent else "the run"
        lines.append(
            f"  {lane.label} created by {parent}"
            + (f" at {where}" if ":" in where else f" ({where})") + on
        )
    for number, desc in rec.connections.items():
        lines.append(f"  conn {number}: {desc}")
    lines.append("steps (* = a decision that differs from asyncio's FIFO order):")
    events: dict[int, list[Event]] = {}
    for event in rec.events:
        if event.kind in _TEXT_EVENTS:
            events.setdefault(event.step, []).append(event)
    labels = {lane.ordinal: lane.label for lane in rec.lanes if lane.ordinal}
    shown_steps = [s for s in rec.steps if s.task or s.kind == "timer" or s.step in events]
    shown = shown_steps[-limit:]
    if len(shown_steps) > limit:
        lines.append(f"  ... {len(shown_steps) - limit} earlier steps")
    width = max((len(labels.get(s.task, "")) for s in shown), default=8)
    width = max(width, len("callback"))
    pad = " " * (5 + 3 + 13)
    for s in shown:
        mark = "*" if s.choice else " "
        label = labels.get(s.task, f"#{s.task}") if s.task else s.kind
        if s.task or s.kind == "timer":
            lines.append(
                f"  {s.step:>5} {mark} t={s.time:<10.6f} {label:<{width}}  {s.what:<38} "
                f"{s.source}".rstrip()
            )
        else:
            lines.append(f"  {s.step:>5} {mark} t={s.time:<10.6f} {label:<{width}}  {s.what}")
        for event in events.get(s.step, ()):
            lines.append(f"  {pad}{'':<{width}}  - {event.text}")
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


def _refused(exc: BaseException) -> BaseException | None:
    """The refusal of seedloop's in ``exc``: itself, or inside an exception group."""
    if isinstance(exc, (SimulationEscapeError, BlockingCallError, NetNotSupportedError)):
        return exc
    for inner in getattr(exc, "exceptions", None) or ():  # an ExceptionGroup (3.11+, anyio)
        if isinstance(inner, BaseException) and (found := _refused(inner)) is not None:
            return found
    return None


def _refusal(exc: BaseException) -> str:
    """The verdict for a failure that is seedloop refusing a call, not a schedule ("" if not)."""
    found = _refused(exc)
    if found is not None:
        return (
            f"not a failure a real loop would show: seedloop refused a call the code made "
            f"({type(found).__name__}), which runs for real outside a simulation; see the "
            "error's message for what to use instead"
        )
    return ""


def same_outcome(a: BaseException | None, b: BaseException | None) -> bool:
    """Whether two runs failed with the same exception type and message (addresses masked)."""
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and _mask(str(a)) == _mask(str(b))


def _mask(text: str) -> str:
    return _TASK_NUMBER.sub("Task-?", _ADDRESS.sub("0x?", text))


def compare_runs(source: str, found: BaseException, replayed: RunResult) -> str:
    """One line saying whether the timeline's run failed as the seed found did."""
    if same_outcome(found, replayed.exception):
        return (
            f"the timeline replays {source}: it failed with the same exception type and "
            "message as the seed found"
        )
    return (
        f"the timeline replays {source}, which ended differently from the seed found: "
        f"it {outcome(replayed)}; the seed's run raised {type(found).__name__}: {found}"
    )


def _explain(
    factory: Factory,
    failure: Failure,
    opts: RunOptions,
    source: str,
    tape: list[int] | None,
    timing: list[int] | None = None,
    tracer: _race.AccessTracer | None = None,
) -> RunResult:
    replayed, rec = record_timeline(
        factory, failure.seed, tape, opts, timing=timing, tracer=tracer
    )
    rec.source = source
    shown = replayed.exception if replayed.exception is not None else failure.exception
    failure.recording = rec
    failure.timeline_outcome = compare_runs(source, failure.exception, replayed)
    failure.timeline = render_timeline(rec, shown) + "\n  " + failure.timeline_outcome
    if signature(replayed.exception) != signature(failure.exception):
        # The shrinker kept type and raising line: a replay that lost them
        # means the scenario is not deterministic.
        failure.timeline += (
            "\n  (the replay ended differently: "
            f"{outcome(replayed)}; this scenario is not deterministic, "
            "see find_failing_seed(..., check_determinism=True))"
        )
    return replayed


def investigate(
    factory: Factory, failure: Failure, opts: RunOptions, *, shrink: bool, explain: bool
) -> None:
    """Fill ``failure`` in: its shrunk tape, its timeline, and whether a real loop can fail so."""
    _investigate(factory, failure, opts, shrink=shrink, explain=explain)
    if explain and (refused := _refusal(failure.exception)):
        # Not the code failing under a schedule: seedloop refused what it did.
        failure.feasible_on_real_loop = False
        failure.feasibility = refused


def _investigate(
    factory: Factory, failure: Failure, opts: RunOptions, *, shrink: bool, explain: bool
) -> None:
    if failure.timing:
        # A feasible failure: every decision was stock order, so there is no
        # schedule to shrink; its timing replays it in asyncio's own order.
        if explain:
            _explain(factory, failure, opts, "the recorded timing", None, failure.timing)
            failure.feasible_on_real_loop = True
            failure.feasibility = FEASIBLE_TIMING_VERDICT
        return
    tape = failure.tape
    if shrink:
        tape = shrink_failure(factory, failure.seed, failure.tape, failure.exception, opts)
        failure.shrunk_tape = tape
    if explain:
        source = "the shrunk schedule" if shrink else "the seed's run"
        # Watch the replay's accesses to name the state the failure raced on
        # (slow, so only here, never in a search).
        tracer = _race.AccessTracer()
        replayed = _explain(factory, failure, opts, source, list(tape), tracer=tracer)
        if signature(replayed.exception) == signature(failure.exception):
            decisive = [step for step, choice in enumerate(tape) if choice]
            failure.race = _race.find_race(tracer.accesses, decisive)
        feasible, _, text = strict_verdict(
            factory, failure.exception, replayed.strict_order, opts
        )
        failure.feasible_on_real_loop = feasible
        failure.feasibility = text
