"""Export a recorded run in Chrome's trace-event JSON format (Perfetto, chrome://tracing).

The format (the "Trace Event Format" document of the Chromium project) is a
JSON object whose ``traceEvents`` list holds events with a phase ``ph``:
``X`` complete slices (``ts`` + ``dur``), ``i`` instants, ``s``/``f`` flow
start and end (paired by ``id``) and ``M`` metadata naming processes and
threads. Here each host is a process, each task a thread (the loop's own
callbacks, timers and network deliveries are thread 0 of their host), each
step a 1 us slice. ``ts`` is virtual time in microseconds, moved on by 1 us
per step where virtual time stands still, so steps keep their order.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ._timeline import Recording, Step

#: Phases the exporter writes, and the keys each event of that phase carries.
REQUIRED_KEYS = {
    "X": ("name", "ph", "ts", "dur", "pid", "tid"),
    "i": ("name", "ph", "ts", "pid", "tid", "s"),
    "s": ("name", "ph", "ts", "pid", "tid", "id", "cat"),
    "f": ("name", "ph", "ts", "pid", "tid", "id", "cat", "bp"),
    "M": ("name", "ph", "pid", "tid", "args"),
}


def _hosts(rec: Recording) -> dict[str, int]:
    names: list[str] = []
    for lane in rec.lanes:
        if lane.host not in names:
            names.append(lane.host)
    for step in rec.steps:
        if step.host not in names:
            names.append(step.host)
    return {name: index + 1 for index, name in enumerate(names)}


def trace_events(rec: Recording, *, title: str = "") -> dict[str, Any]:
    """The trace as a JSON-ready dict (``{"traceEvents": [...], ...}``)."""
    pids = _hosts(rec)
    task_host = {lane.ordinal: lane.host for lane in rec.lanes if lane.ordinal}
    events: list[dict[str, Any]] = []
    for host, pid in pids.items():
        name = f"host {host}" if host else "seedloop run"
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"name": name}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"sort_index": pid}})
    for lane in rec.lanes:
        pid = pids[lane.host]
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": lane.ordinal,
                       "args": {"name": lane.label}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": pid,
                       "tid": lane.ordinal, "args": {"sort_index": lane.ordinal}})

    def where(step: Step) -> tuple[int, int]:
        host = task_host.get(step.task, step.host) if step.task else step.host
        return pids.get(host, 1), step.task

    # A clock that never stands still: virtual microseconds, at least 1 apart.
    stamps: dict[int, float] = {}
    last = -1.0
    for step in rec.steps:
        ts = max(round(step.time * 1e6, 3), last + 1.0)
        stamps[step.step] = last = ts
    timed: list[tuple[float, int, dict[str, Any]]] = []
    order = 0

    def add(ts: float, event: dict[str, Any]) -> None:
        nonlocal order
        order += 1
        timed.append((ts, order, event))

    for step in rec.steps:
        pid, tid = where(step)
        ts = stamps[step.step]
        name = step.what.split("  ")[0] if not step.task else (
            f"{_label(rec, step.task)} {os.path.basename(step.file)}:{step.line}"
            if step.file else f"{_label(rec, step.task)} {step.what.split()[0]}"
        )
        if step.kind == "timer":
            name = "timer: " + step.what
        args: dict[str, Any] = {
            "step": step.step,
            "virtual_time_s": step.time,
            "choice": step.choice,
            "reordered": bool(step.choice),
            "what": step.what,
        }
        if step.file:
            args["source"] = f"{step.file}:{step.line}"
            args["code"] = step.source
        if step.cause is not None:
            args["scheduled_by_step"] = step.cause
        add(ts, {"name": name, "cat": "reordered" if step.choice else "step", "ph": "X",
                 "ts": ts, "dur": 1, "pid": pid, "tid": tid, "args": args})
    flow = 0
    recvs = {(e.step, e.conn): e for e in rec.events if e.kind == "recv"}
    for event in rec.events:
        if event.step not in stamps:
            continue
        step = rec.step_at(event.step)
        assert step is not None
        pid, tid = where(step)
        ts = stamps[event.step]
        if event.kind in ("send",):
            target = event.to_step
            recv = recvs.get((event.to_step, event.conn)) if event.to_step is not None else None
            if recv is not None and recv.to_step is not None:
                target = recv.to_step  # the task step that read the bytes
            if target is None or target not in stamps:
                continue
            to = rec.step_at(target)
            assert to is not None
            flow += 1
            to_pid, to_tid = where(to)
            add(ts, {"name": f"conn {event.conn}: {event.nbytes} bytes", "cat": "net",
                     "ph": "s", "id": flow, "ts": ts, "pid": pid, "tid": tid,
                     "args": {"text": event.text}})
            add(stamps[target], {"name": f"conn {event.conn}: {event.nbytes} bytes",
                                 "cat": "net", "ph": "f", "bp": "e", "id": flow,
                                 "ts": stamps[target], "pid": to_pid, "tid": to_tid})
            continue
        if event.kind == "wake" and event.from_step in stamps:
            waker = rec.step_at(event.from_step)  # type: ignore[arg-type]
            if waker is not None and waker.task:
                flow += 1
                from_pid, from_tid = where(waker)
                add(stamps[waker.step], {"name": "wakes", "cat": "wake", "ph": "s", "id": flow,
                                         "ts": stamps[waker.step], "pid": from_pid,
                                         "tid": from_tid})
                add(ts, {"name": "wakes", "cat": "wake", "ph": "f", "bp": "e", "id": flow,
                         "ts": ts, "pid": pid, "tid": tid})
        add(ts, {"name": f"{event.kind}: {event.text}", "cat": event.kind, "ph": "i", "s": "t",
                 "ts": ts, "pid": pid, "tid": tid,
                 "args": {"step": event.step, "text": event.text}})
    timed.sort(key=lambda item: (item[0], item[1]))
    events.extend(event for _, _, event in timed)
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "seedloop",
            "title": title,
            "timeline_of": rec.source,
            "exception": rec.exception,
            "raised_at": rec.raised_at,
            "connections": {str(k): v for k, v in rec.connections.items()},
            "clock": "virtual microseconds, +1 us per step where virtual time stands still",
        },
    }


def _label(rec: Recording, ordinal: int) -> str:
    lane = rec.lane(ordinal)
    return lane.label if lane is not None else f"#{ordinal}"


def write_trace(rec: Recording, path: str | os.PathLike[str], *, title: str = "") -> None:
    """Write :func:`trace_events` to ``path`` (open it in ui.perfetto.dev)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(trace_events(rec, title=title), f, indent=None, separators=(",", ":"))
