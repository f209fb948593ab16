"""Hold-and-wait deadlock: groups booking two rooms one room at a time.

Bug class: resource deadlock through a custom allocator (a Condition-based
room inventory). Each group needs two of the hotel's three rooms and holds
the first while it waits for the second. If all three groups hold one room,
every group waits for a room that never frees (seedloop: DeadlockError).
Depth 3: two groups must each be preempted while holding exactly one room
(a group that is not preempted gets its second room and finishes), and the
third must then take the last room: two preemptions. Stock order staggers
the arrivals so every group books both rooms in turn.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "resource deadlock (hold and wait)"
DEPTH = 3
TASKS = 4


class Rooms:
    def __init__(self, free: int) -> None:
        self.free = free
        self.changed = asyncio.Condition()

    async def hold(self) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.free > 0)
            self.free -= 1

    async def release(self, n: int) -> None:
        async with self.changed:
            self.free += n
            self.changed.notify_all()


async def book(rooms: Rooms, group: str, arrive: int, booked: list[str]) -> None:
    await io(arrive)
    await rooms.hold()
    await io(1)  # write the first room to the booking
    await rooms.hold()  # BUG: hold-and-wait; should take both rooms at once
    booked.append(group)
    await io(1)  # the stay
    await rooms.release(2)


async def scenario() -> None:
    rooms = Rooms(3)
    booked: list[str] = []
    await asyncio.gather(*(book(rooms, f"g{i}", 3 * i, booked) for i in range(3)))
    assert sorted(booked) == ["g0", "g1", "g2"]
