"""Stale cache: a reader fills the cache with a value read before an update.

Bug class: atomicity violation across two tasks (the classic look-aside
cache race). Reader: miss, read the database (await), fill the cache.
Writer: update the database (await), invalidate the cache. If the reader
reads the old row, the writer then updates and invalidates, and only then
the reader fills, the cache keeps the stale value forever.
Depth 2: reader-read before writer-update, writer-invalidate before
reader-fill. Background replication heartbeats add noise steps.
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "atomicity violation (stale cache)"
DEPTH = 2
TASKS = 7


class Store:
    def __init__(self) -> None:
        self.db = {"user:1": "alice"}
        self.cache: dict[str, str] = {}

    async def get(self, key: str) -> str:
        if key in self.cache:
            return self.cache[key]
        value = self.db[key]
        await io(1)  # the row travels back from the database
        self.cache[key] = value  # BUG: may overwrite a newer invalidation
        return value

    async def update(self, key: str, value: str) -> None:
        await io(1)  # round trip to the database
        self.db[key] = value
        await io(1)
        self.cache.pop(key, None)


async def scenario() -> None:
    store = Store()
    noise = start_noise(4, 30)

    async def reader() -> None:
        await io(4)
        await store.get("user:1")

    async def writer() -> None:
        await io(1)
        await store.update("user:1", "alicia")

    await asyncio.gather(reader(), writer())
    await asyncio.gather(*noise)
    cached = store.cache.get("user:1", store.db["user:1"])
    assert cached == store.db["user:1"], f"stale cache: {cached!r} vs db {store.db['user:1']!r}"
