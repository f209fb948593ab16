"""The recorded story of one replayed run: tasks, steps and the events that decided it.

Plain data, filled by the recorder in ``_investigate`` while a failure is
explained (never during a search) and read by every renderer: the text
timeline, the HTML report's SVG and the Chrome trace-event export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Event kinds, and what each says (``text`` has the details).
EVENT_KINDS = {
    "timer": "a call_later/call_at handle (or a sleep) fired",
    "cancel": "a task called .cancel() on another task",
    "cancelled": "a CancelledError landed in the cancelled task's frame",
    "wake": "a completed future (lock, event, queue, gather, ...) woke a task",
    "connect": "a client started a TCP handshake",
    "established": "a client's connection opened",
    "accept": "a server accepted a connection",
    "refused": "a connection attempt was refused",
    "send": "bytes written to a connection",
    "recv": "bytes delivered from a connection",
    "eof": "the peer closed its sending side (FIN)",
    "reset": "a connection was reset",
    "close": "a connection was closed",
    "partition": "a network partition started",
    "heal": "a network partition ended",
    "crash": "a host crashed",
    "restart": "a host restarted",
}


@dataclass
class Lane:
    """One task (or a host's non-task callbacks, ordinal 0) as drawn and exported."""

    ordinal: int
    label: str
    parent: int = 0
    created_at: str = ""
    host: str = ""


@dataclass
class Step:
    """One loop step: a task resumed, or a callback ran (timers, deliveries)."""

    step: int
    time: float
    #: The task stepped (its ordinal), or 0 for a callback that is not a task step.
    task: int
    #: ``start``, ``resume``, ``timer`` or ``callback``.
    kind: str
    what: str
    file: str = ""
    line: int = 0
    func: str = ""
    source: str = ""
    #: The index run among the ready callbacks (0: asyncio's own FIFO choice).
    choice: int = 0
    #: The step during which this step's callback was scheduled (None: before any step).
    cause: int | None = None
    host: str = ""


@dataclass
class Event:
    """Something that happened during a step and decided what followed."""

    step: int
    time: float
    kind: str
    #: The lane it belongs to: the task running the step, or 0 (a callback).
    task: int
    text: str
    host: str = ""
    #: For ``cancel``: the task cancelled. For ``wake``: the task woken.
    target: int = 0
    #: The connection (numbered in order of appearance), for network events.
    conn: int = 0
    nbytes: int = 0
    #: For ``send``: the step that delivered the last byte; for ``recv``: the
    #: task step that consumed the bytes (None: not seen in the run).
    to_step: int | None = None
    #: For ``wake``: the step that completed the future the task waited on.
    from_step: int | None = None
    file: str = ""
    line: int = 0


@dataclass
class Recording:
    """Everything a timeline shows about one replayed run."""

    lanes: list[Lane] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: Connection number -> "client 10.0.0.2:50001 -> server 10.0.0.1:7000".
    connections: dict[int, str] = field(default_factory=dict)
    #: Which run this is: "the shrunk schedule", "the seed's run", "the recorded timing".
    source: str = ""
    #: What that run raised ("Type: message"), or "" if it did not fail.
    exception: str = ""
    #: Where it raised ("file.py:12"), or "".
    raised_at: str = ""

    def lane(self, ordinal: int, host: str = "") -> Lane | None:
        for lane in self.lanes:
            if lane.ordinal == ordinal and (ordinal or lane.host == host):
                return lane
        return None

    def step_at(self, step: int) -> Step | None:
        index = _bisect(self.steps, step)
        if index < len(self.steps) and self.steps[index].step == step:
            return self.steps[index]
        return None


def _bisect(steps: list[Step], step: int) -> int:
    lo, hi = 0, len(steps)
    while lo < hi:
        mid = (lo + hi) // 2
        if steps[mid].step < step:
            lo = mid + 1
        else:
            hi = mid
    return lo
