"""Lost wakeup: a predicate checked before taking the Condition's lock.

Bug class: lost wakeup (Condition misuse: ``if not ready`` outside the lock,
then ``wait()`` without re-checking), ending in a deadlock.
Depth 2: the waiter must check the flag before the notifier sets it, and the
notifier must then hold the lock when the waiter tries to take it (so the
notification fires before the waiter waits). Stock order never has the lock
contended at that moment.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "lost wakeup (Condition)"
DEPTH = 2
TASKS = 3


class Gate:
    def __init__(self) -> None:
        self.open = False
        self.cond = asyncio.Condition()

    async def wait_open(self) -> None:
        if not self.open:  # BUG: checked without the lock...
            async with self.cond:
                await self.cond.wait()  # ...and not re-checked: notify may be gone

    async def set_open(self) -> None:
        async with self.cond:
            await io(1)  # persist the state change while holding the lock
            self.open = True
            self.cond.notify_all()


async def scenario() -> None:
    gate = Gate()
    passed: list[str] = []

    async def waiter(name: str, delay: int) -> None:
        await io(delay)
        await gate.wait_open()
        passed.append(name)

    async def opener() -> None:
        await io(1)
        await gate.set_open()

    await asyncio.gather(waiter("w1", 0), waiter("w2", 3), opener())
    assert sorted(passed) == ["w1", "w2"]
