"""Use before ready: a cache marked warm before its entries are loaded.

Bug class: order violation (a reader runs ahead of the two-step warm-up).
Depth 1: the reader's lookup must run before the warmer's second step; the
warmer yields to the loop (a real wait on its loader) so a reader that was
scheduled early sees ``warm`` with a missing entry.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "order violation"
DEPTH = 1
TASKS = 3


class Cache:
    def __init__(self) -> None:
        self.warm = False
        self.entries: dict[str, int] = {}

    async def warm_up(self, loader: asyncio.Queue[tuple[str, int]]) -> None:
        self.entries["a"] = 1
        self.warm = True  # BUG: should be set after the whole load
        key, value = await loader.get()
        self.entries[key] = value


async def reader(cache: Cache, first_steps: int) -> int | None:
    await io(first_steps)
    while not cache.warm:
        await asyncio.sleep(0.001)
    return cache.entries.get("b")


async def scenario() -> None:
    cache = Cache()
    loader: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    warm = asyncio.ensure_future(cache.warm_up(loader))

    async def load() -> None:
        await io(1)
        loader.put_nowait(("b", 2))

    results = await asyncio.gather(reader(cache, 3), load(), warm)
    assert results[0] == 2, "reader saw a warm cache without entry 'b'"
