"""Queue accounting: join() returns while the producer is still producing.

Bug class: queue accounting (task_done/join). The producer enqueues a file
listing page by page, awaiting between pages; the coordinator calls
``queue.join()`` as soon as the producer has started, so a fast worker that
drains page 1 before page 2 is enqueued lets ``join()`` return early.
Depth 1: the workers must finish page 1 before the producer enqueues page 2
(stock order enqueues page 2 while page 1 is still being processed).
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "queue accounting"
DEPTH = 1
TASKS = 4


async def producer(queue: asyncio.Queue[str], pages: list[list[str]]) -> None:
    for page in pages:
        for name in page:
            queue.put_nowait(name)
        await io(2)  # fetch the next listing page


async def worker(queue: asyncio.Queue[str], done: list[str]) -> None:
    while True:
        name = await queue.get()
        await io(1)
        done.append(name)
        queue.task_done()


async def scenario() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    done: list[str] = []
    pages = [["a", "b", "c", "d"], ["e", "f"]]
    prod = asyncio.ensure_future(producer(queue, pages))
    workers = [asyncio.ensure_future(worker(queue, done)) for _ in range(2)]
    await io(1)
    await queue.join()  # BUG: should first await the producer
    snapshot = sorted(done)
    await prod
    for w in workers:
        w.cancel()
    assert snapshot == sorted(sum(pages, [])), f"join returned with only {snapshot} done"
