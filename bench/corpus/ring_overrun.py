"""Ring buffer overrun: a telemetry producer laps a slower consumer.

Bug class: missing backpressure, exposed only when one task runs several
steps ahead of another. The producer writes sample ``i`` into slot
``i % 4`` of a four-slot ring and never checks how far behind the consumer
is; the consumer reads slot ``j % 6`` and expects sample ``j``. While the
two tasks alternate (stock order: each yields once per loop iteration) the
producer is never more than one sample ahead. If the producer gets six
steps ahead it overwrites a sample that was never read.
Depth 1 in PCT terms (the consumer starved while the producer runs), but
unreachable by any schedule that keeps the tasks in lockstep.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "missing backpressure (several steps ahead)"
DEPTH = 1
TASKS = 3

SLOTS = 6
SAMPLES = 20


class Ring:
    def __init__(self) -> None:
        self.slots: list[int | None] = [None] * SLOTS
        self.written = 0

    def put(self, sample: int) -> None:
        self.slots[self.written % SLOTS] = sample  # BUG: no check on the reader's position
        self.written += 1


async def producer(ring: Ring) -> None:
    for i in range(SAMPLES):
        ring.put(i)
        await io(1)  # sample the next sensor


async def consumer(ring: Ring, seen: list[int]) -> None:
    read = 0
    while read < SAMPLES:
        if read < ring.written:
            seen.append(ring.slots[read % SLOTS])  # type: ignore[arg-type]
            read += 1
        await io(1)  # ship the sample upstream


async def scenario() -> None:
    ring = Ring()
    seen: list[int] = []
    await asyncio.gather(producer(ring), consumer(ring, seen))
    assert seen == list(range(SAMPLES)), f"samples lost or duplicated: {seen}"
