"""Lost wakeup: a hand-rolled, old-stdlib-style semaphore under cancellation.

Bug class: lost wakeup under cancellation. ``LegacySemaphore`` hands a
released permit directly to the oldest waiter by completing its future (as
asyncio's primitives did before they were hardened). If that waiter's task
is cancelled after the hand-off but before it resumes, ``acquire`` sees
``CancelledError`` and simply drops out: the permit it was handed is gone,
and every later acquirer waits forever (seedloop: DeadlockError).
Here a shutdown supervisor cancels the queued jobs of one tenant while a
running job releases its permit. In stock order the cancellation happens
before the release, so the permit goes to the next waiter.
Depth 2: the release must run after the tenant job queued and before the
supervisor's cancellation, and the cancelled job must not resume in between.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ._util import io

KIND = "lost wakeup under cancellation (legacy primitive)"
DEPTH = 2
TASKS = 5


class LegacySemaphore:
    def __init__(self, value: int) -> None:
        self._value = value
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._value > 0 and not self._waiters:
            self._value -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # release() hands the permit over by completing fut
        except asyncio.CancelledError:
            if fut in self._waiters:
                self._waiters.remove(fut)
            # BUG: if fut was already completed, the handed-over permit is lost
            raise

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._value += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


async def job(sem: LegacySemaphore, done: list[str], name: str, arrive: int, work: int) -> None:
    await io(arrive)
    async with sem:
        await io(work)
        done.append(name)


async def scenario() -> None:
    sem = LegacySemaphore(1)
    done: list[str] = []
    running = asyncio.ensure_future(job(sem, done, "report", 0, 4))
    tenant = asyncio.ensure_future(job(sem, done, "tenant-export", 1, 1))
    later = asyncio.ensure_future(job(sem, done, "backup", 3, 1))

    async def supervisor() -> None:
        await io(3)
        tenant.cancel()  # the tenant was suspended: drop its queued work

    await asyncio.gather(running, later, supervisor())
    await asyncio.gather(tenant, return_exceptions=True)
    assert sorted(done) == ["backup", "report"], done
