"""Queue accounting: task_done() called before the item's result is stored.

Bug class: queue accounting. The worker starts the write of its result,
acknowledges the item (task_done) and only then waits for the write; the
coordinator's join() can return and read the results before the last write
ran.
Depth 1: the coordinator's wake-up must run before the write task's first
step (stock order runs the write first: it was scheduled first).
"""

from __future__ import annotations

import asyncio

KIND = "queue accounting"
DEPTH = 1
TASKS = 3


class Store:
    def __init__(self) -> None:
        self.rows: dict[int, int] = {}
        self.lock = asyncio.Lock()

    async def write(self, key: int, value: int) -> None:
        async with self.lock:
            self.rows[key] = value


async def worker(queue: asyncio.Queue[int], store: Store) -> None:
    while True:
        n = await queue.get()
        write = asyncio.ensure_future(store.write(n, n * n))
        queue.task_done()  # BUG: acknowledged before the write is done
        await write


async def scenario() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    store = Store()
    w = asyncio.ensure_future(worker(queue, store))
    for n in range(3):
        await queue.put(n)
    await queue.join()
    results = dict(store.rows)
    w.cancel()
    assert results == {0: 0, 1: 1, 2: 4}, f"join() returned before the writes: {results}"
