"""Lock-order deadlock: two transfers lock their accounts in argument order.

Bug class: lock-order (ABBA) deadlock; seedloop reports it as DeadlockError.
Depth 2: the second transfer must take its first lock after the first
transfer took its first lock and before it took its second (one preemption
between the two acquisitions). In stock order the second transfer is still
validating while the first one holds both locks.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "lock-order deadlock"
DEPTH = 2
TASKS = 2


class Account:
    def __init__(self, name: str, balance: int) -> None:
        self.name = name
        self.balance = balance
        self.lock = asyncio.Lock()


async def transfer(src: Account, dst: Account, amount: int, validate_steps: int) -> None:
    await io(validate_steps)
    async with src.lock:  # BUG: locks in argument order, not a global order
        await io(1)  # read the source balance from storage
        async with dst.lock:
            src.balance -= amount
            dst.balance += amount


async def scenario() -> None:
    a, b = Account("a", 100), Account("b", 100)
    await asyncio.gather(transfer(a, b, 10, 0), transfer(b, a, 5, 3))
    assert a.balance + b.balance == 200
