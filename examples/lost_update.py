"""The guide's example: a lost update across an await, and its fix.

seedloop explore examples/lost_update.py:buggy --seeds 0:2000
seedloop explore examples/lost_update.py:fixed --seeds 0:2000
"""

from __future__ import annotations

import asyncio
import random


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self._lock = asyncio.Lock()

    async def _ledger_write(self, amount: int) -> None:
        await asyncio.sleep(random.uniform(0.001, 0.004))  # a database write: 1-4 ms

    async def _fraud_check(self, amount: int) -> None:
        await asyncio.sleep(random.uniform(0.003, 0.020))  # a fraud check: 3-20 ms

    async def withdraw(self, amount: int, *, check: bool = False) -> None:
        if check:
            await self._fraud_check(amount)
        balance = self.balance  # read ...
        await self._ledger_write(amount)
        self.balance = balance - amount  # ... write: another withdrawal may have run between

    async def withdraw_locked(self, amount: int, *, check: bool = False) -> None:
        if check:
            await self._fraud_check(amount)
        async with self._lock:  # read and write as one step
            balance = self.balance
            await self._ledger_write(amount)
            self.balance = balance - amount


async def buggy() -> int:
    account = Account(100)
    await asyncio.gather(account.withdraw(30), account.withdraw(50, check=True))
    assert account.balance == 20, f"lost update: balance is {account.balance}, expected 20"
    return account.balance


async def fixed() -> int:
    account = Account(100)
    await asyncio.gather(account.withdraw_locked(30), account.withdraw_locked(50, check=True))
    assert account.balance == 20, f"lost update: balance is {account.balance}, expected 20"
    return account.balance


if __name__ == "__main__":
    import seedloop

    def stock(factory: object) -> str:
        try:
            return str(asyncio.run(factory()))  # type: ignore[operator]
        except AssertionError:
            return "lost update"

    runs = [stock(buggy) for _ in range(200)]
    print(f"stock asyncio, 200 runs: {runs.count('lost update')} lost updates (a flaky test)")
    failure = seedloop.find_failing_seed(buggy, range(10_000))
    print(failure.report() if failure else "no failing seed")
    print("fixed:", seedloop.find_failing_seed(fixed, range(10_000)) or "no failing seed in 10000")
