"""Double charge: a payment that completes exactly at its timeout is retried.

Bug class: timeout racing completion at an equal deadline. The gateway call
takes exactly as long as the client's ``wait_for`` budget, so the call's
timer and the timeout's timer fall due at the same virtual instant. The
client treats ``TimeoutError`` as "the charge did not happen" and retries.
When the timeout's callback runs first (stock order here: it was armed
first), the call is cancelled before it charges and the retry charges once.
If the call resumes first (its deadline a hair earlier: timer jitter), the
charge is recorded, and the timeout still cancels the waiting client
(since 3.12 ``wait_for`` drops the completed call's result): the retry
charges a second time.
Depth 2: the call's wakeup (a second hop after its timer) must run before
the timeout callback; a real loop's timer jitter produces it.
"""

from __future__ import annotations

import asyncio

KIND = "timeout race (wait_for at an equal deadline)"
DEPTH = 2
TASKS = 2
MIN_PYTHON = (3, 12)

BUDGET = 0.5


class Gateway:
    def __init__(self) -> None:
        self.charges: list[str] = []

    async def charge(self, order: str, latency: float) -> str:
        await asyncio.sleep(latency)
        self.charges.append(order)
        return f"receipt-{order}"


async def pay(gateway: Gateway, order: str) -> str:
    try:
        return await asyncio.wait_for(gateway.charge(order, BUDGET), BUDGET)
    except TimeoutError:
        # BUG: a timeout does not mean the charge did not happen
        return await asyncio.wait_for(gateway.charge(order, BUDGET / 10), BUDGET)


async def scenario() -> None:
    gateway = Gateway()
    await pay(gateway, "o-1")
    assert gateway.charges.count("o-1") == 1, f"charged {gateway.charges.count('o-1')} times"
