"""Cancellation race: a cancelled query never returns its pool permit.

Bug class: cancellation race / resource leak (acquire ... release without
try/finally). A hedging client cancels a slow query; if the cancel lands
while the query holds the permit, the pool shrinks for good and the next
query waits forever (seedloop: DeadlockError).
Depth 2: the query must have taken the permit (it started) and the client's
hedge check must run before the query's last step (a preemption inside the
query).
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "cancellation race"
DEPTH = 2
TASKS = 3


class Pool:
    def __init__(self, size: int) -> None:
        self.permits = asyncio.Semaphore(size)

    async def query(self, sql: str) -> str:
        await self.permits.acquire()
        rows = await self._execute(sql)  # BUG: not in try/finally
        self.permits.release()
        return rows

    async def _execute(self, sql: str) -> str:
        await io(2)
        return f"rows({sql})"


async def hedged(pool: Pool, sql: str, budget_steps: int) -> str | None:
    task = asyncio.ensure_future(pool.query(sql))
    await io(budget_steps)
    if not task.done():
        task.cancel()  # too slow: the caller falls back to a replica
        return None
    return task.result()


async def scenario() -> None:
    pool = Pool(1)
    await asyncio.gather(hedged(pool, "a", 4), hedged(pool, "b", 8))
    # Every permit must be back: this query would wait forever otherwise.
    assert await pool.query("c") == "rows(c)"
