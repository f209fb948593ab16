"""Nested acquisition deadlock: requests take a second permit from a full pool.

Bug class: resource deadlock (hold-and-wait on one Semaphore). Each request
takes a connection permit, and its ORM hook takes another one for an audit
insert while holding the first. With three permits and three requests, if
all three hold one permit and ask for a second, nobody proceeds (seedloop:
DeadlockError). Background replication heartbeats add noise steps.
Depth 3: the first two requests must each be preempted right after their
first acquisition so that the third also gets one (two preemptions plus
the order among three requests). Stock order staggers them.
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "resource deadlock (nested acquisition)"
DEPTH = 3
TASKS = 7


class Pool:
    def __init__(self, size: int) -> None:
        self.permits = asyncio.Semaphore(size)
        self.log: list[str] = []

    async def execute(self, sql: str, audit: bool) -> None:
        async with self.permits:
            await io(1)  # run the statement
            if audit:
                await self.execute(f"INSERT audit {sql!r}", audit=False)  # BUG: nested permit
            self.log.append(sql)


async def request(pool: Pool, sql: str, arrive: int) -> None:
    await io(arrive)
    await pool.execute(sql, audit=True)


async def scenario() -> None:
    pool = Pool(3)
    noise = start_noise(4, 40)
    await asyncio.gather(*(request(pool, f"UPDATE t{i}", 2 * i) for i in range(3)))
    await asyncio.gather(*noise)
    assert len(pool.log) == 6
