"""Lost update: an account balance read, then written back after an await.

Bug class: atomicity violation (read-modify-write split by a journal write).
Depth 2: the later request must read the balance after the earlier one read
it and before the earlier one wrote it back (one preemption inside the
earlier deposit). In stock order the later request is still authenticating
when the earlier deposit completes.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "atomicity violation"
DEPTH = 2
TASKS = 2


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.journal: list[int] = []

    async def deposit(self, amount: int) -> None:
        current = self.balance
        await self._write_journal(amount)  # BUG: balance is re-read by nobody after this
        self.balance = current + amount

    async def _write_journal(self, amount: int) -> None:
        await io(1)
        self.journal.append(amount)


async def handle(account: Account, amount: int, auth_round_trips: int) -> None:
    await io(auth_round_trips)
    await account.deposit(amount)


async def scenario() -> None:
    account = Account(100)
    await asyncio.gather(handle(account, 10, 0), handle(account, 20, 2))
    assert account.balance == 100 + sum(account.journal), (
        f"lost update: balance {account.balance}, journal {account.journal}"
    )
