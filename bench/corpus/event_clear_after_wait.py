"""Lost wakeup: a worker clears its wake-up Event after handling a batch.

Bug class: lost wakeup (Event misuse: ``clear()`` after the work instead of
before it, so a ``set()`` that arrives while the batch is being flushed is
wiped out and its job is never flushed).
Depth 2: the second submit must land while the worker is flushing (after the
worker took the first batch, before it clears the event). In stock order the
flush finishes first and the second submit wakes a waiting worker.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "lost wakeup (Event)"
DEPTH = 2
TASKS = 3


class Flusher:
    def __init__(self) -> None:
        self.pending: list[str] = []
        self.flushed: list[str] = []
        self.wake = asyncio.Event()

    def submit(self, job: str) -> None:
        self.pending.append(job)
        self.wake.set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            batch, self.pending = self.pending, []
            await io(2)  # write the batch out
            self.flushed.extend(batch)
            self.wake.clear()  # BUG: clears a set() made during the write


async def client(flusher: Flusher, job: str, think_steps: int) -> None:
    await io(think_steps)
    flusher.submit(job)


async def scenario() -> None:
    flusher = Flusher()
    worker = asyncio.ensure_future(flusher.run())
    await asyncio.gather(client(flusher, "a", 0), client(flusher, "b", 5))
    await asyncio.sleep(1.0)  # plenty of (virtual) time to flush everything
    worker.cancel()
    assert sorted(flusher.flushed) == ["a", "b"], f"flushed only {flusher.flushed}"
