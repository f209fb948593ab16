"""Watchdog false kill: liveness measured in loop turns instead of time.

Bug class: progress check counted in scheduling steps, exposed only when the
watchdog runs several steps ahead of the worker. The watchdog polls once per
turn and declares the worker hung after five polls without a new
heartbeat; the worker heartbeats once per turn between two awaits. In stock
order both tasks advance once per loop iteration, so every poll sees a fresh
heartbeat. A watchdog that gets five polls in while the worker is between
heartbeats restarts a healthy worker.
Depth 1 in PCT terms (the worker starved for five watchdog steps), but no
lockstep schedule produces it. A metrics task adds noise.
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "liveness check in steps (several steps ahead)"
DEPTH = 1
TASKS = 4

MISSES_ALLOWED = 5


class Worker:
    def __init__(self) -> None:
        self.beats = 0
        self.done = False
        self.restarts = 0


async def work(w: Worker, jobs: int) -> None:
    for _ in range(jobs):
        w.beats += 1
        await io(2)  # handle one job: two round trips
    w.done = True


async def watchdog(w: Worker) -> None:
    last, misses = -1, 0
    while not w.done:
        if w.beats == last:
            misses += 1
            if misses >= MISSES_ALLOWED:  # BUG: counts polls, not elapsed time
                w.restarts += 1
                misses = 0
        else:
            last, misses = w.beats, 0
        await asyncio.sleep(0)


async def scenario() -> None:
    w = Worker()
    noise = start_noise(1, 30, "metrics")
    await asyncio.gather(work(w, 15), watchdog(w), *noise)
    assert w.restarts == 0, f"healthy worker restarted {w.restarts} times"
