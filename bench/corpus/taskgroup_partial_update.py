"""TaskGroup error handling: a sibling cancelled halfway through a two-step update.

Bug class: TaskGroup error handling. When one child fails, the group cancels
its siblings; a sibling that debits one ledger, awaits, then credits the
other is cancelled in between, and the error handler (which only rolls back
the failing child) leaves money missing.
Depth 2: the failing validation must run after the transfer's debit and
before its credit (stock order finishes the transfer first).
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "TaskGroup error handling"
DEPTH = 2
TASKS = 3
MIN_PYTHON = (3, 11)


class Ledgers:
    def __init__(self) -> None:
        self.checking = 100
        self.savings = 100


async def move(ledgers: Ledgers, amount: int) -> None:
    ledgers.checking -= amount
    await io(1)  # BUG: the two legs are not atomic with respect to cancellation
    ledgers.savings += amount


async def validate(limit_steps: int) -> None:
    await io(limit_steps)
    raise ValueError("daily limit exceeded")


async def scenario() -> None:
    ledgers = Ledgers()
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(io(3))  # fetch the statement, unrelated
            tg.create_task(validate(2))
            tg.create_task(move(ledgers, 30))
    except ExceptionGroup as eg:  # noqa: F821 (3.11+, see MIN_PYTHON)
        assert eg.subgroup(ValueError) is not None
    total = ledgers.checking + ledgers.savings
    assert total == 200, f"money vanished: total {total}"
