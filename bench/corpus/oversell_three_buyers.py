"""Oversell: three buyers pass a stock check for the last two items.

Bug class: check-then-act among three tasks (``if stock > 0``, await the
payment, then decrement). With two items left, selling three needs all
three buyers to check before the first two decrement.
Depth 2: one buyer preempted between its check and its decrement is enough
(the other two then buy the last two items and it decrements a third time).
Stock order serves the staggered buyers one after another.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "check-then-act (oversell)"
DEPTH = 2
TASKS = 4


class Inventory:
    def __init__(self, stock: int) -> None:
        self.stock = stock
        self.orders: list[str] = []

    async def buy(self, buyer: str) -> bool:
        if self.stock <= 0:
            return False
        await charge(buyer)  # BUG: the stock check is stale after this
        self.stock -= 1
        self.orders.append(buyer)
        return True


async def charge(buyer: str) -> None:
    await io(1)  # payment provider round trip


async def shopper(inventory: Inventory, name: str, browse: int) -> bool:
    await io(browse)
    return await inventory.buy(name)


async def scenario() -> None:
    inventory = Inventory(stock=2)
    await asyncio.gather(*(shopper(inventory, f"b{i}", 3 * i) for i in range(3)))
    assert inventory.stock >= 0, f"oversold: {inventory.orders}"
