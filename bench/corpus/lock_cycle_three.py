"""Three-way lock cycle: replicas syncing with their right-hand neighbour.

Bug class: lock-order deadlock among three tasks (x->y, y->z, z->x).
Depth 2: each of the three sync jobs must take its own lock before any of
them takes its neighbour's. One preemption suffices (the job preempted while
holding its lock makes the others block in turn, and blocking switches
tasks for free); stock order staggers them so each finishes.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "lock-order deadlock"
DEPTH = 2
TASKS = 3


class Replica:
    def __init__(self, name: str) -> None:
        self.name = name
        self.version = 0
        self.lock = asyncio.Lock()


async def sync(mine: Replica, neighbour: Replica, start_steps: int) -> None:
    await io(start_steps)
    async with mine.lock:
        await io(1)  # snapshot local state
        async with neighbour.lock:  # BUG: cyclic lock order across replicas
            mine.version = neighbour.version = max(mine.version, neighbour.version) + 1


async def scenario() -> None:
    x, y, z = Replica("x"), Replica("y"), Replica("z")
    await asyncio.gather(sync(x, y, 0), sync(y, z, 3), sync(z, x, 6))
    assert x.version and y.version and z.version
