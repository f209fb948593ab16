"""Cancellation race: graceful shutdown cancels a worker mid-item.

Bug class: cancellation race. Shutdown polls until the queue is empty and
then cancels the worker, but "queue empty" only means the last item was
taken, not that it was processed.
Depth 2: the shutdown's poll must run after the worker took the last
item (stock order polls just before, and the next poll finds the worker
idle).
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "cancellation race"
DEPTH = 2
TASKS = 2


async def worker(queue: asyncio.Queue[int], done: list[int]) -> None:
    while True:
        item = await queue.get()
        await io(2)  # process the item
        done.append(item)
        queue.task_done()


async def scenario() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(3):
        queue.put_nowait(i)
    done: list[int] = []
    task = asyncio.ensure_future(worker(queue, done))
    while not queue.empty():  # BUG: should be `await queue.join()`
        await io(4)  # poll interval
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert done == [0, 1, 2], f"item lost in shutdown: processed {done}"
