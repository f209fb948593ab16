"""Double charge: a request abandoned at the exact instant it completes.

Bug class: timeout racing completion at an equal deadline (``asyncio.timeout``
around a future completed by another task). A payment worker answers after
exactly the client's budget; it skips requests the client already abandoned
(``fut.cancelled()``), otherwise it charges and completes the future. The
client treats ``TimeoutError`` as "not charged" and retries. When the
timeout fires first (stock order: it was armed first), the worker sees the
abandoned request and does not charge. If the worker's sleep ends a hair
before the timeout (any jitter between the two deadlines) and the worker
resumes first, it charges and completes the future, and the timeout, due at
that instant, still cancels the client: the retry charges twice.
Depth 2: the worker's wakeup (a second hop after its timer) must run before
the timeout callback. Reordering only the timers due together is not
enough; a real loop's timer jitter is.
"""

from __future__ import annotations

import asyncio

KIND = "timeout race (asyncio.timeout at an equal deadline)"
DEPTH = 2
TASKS = 3
MIN_PYTHON = (3, 11)

BUDGET = 0.25


class PaymentWorker:
    def __init__(self) -> None:
        self.charges: list[str] = []

    def submit(self, order: str, latency: float) -> asyncio.Future[str]:
        fut = asyncio.get_running_loop().create_future()
        asyncio.ensure_future(self._process(order, latency, fut))
        return fut

    async def _process(self, order: str, latency: float, fut: asyncio.Future[str]) -> None:
        await asyncio.sleep(latency)
        if fut.cancelled():
            return  # the client gave up: do not charge
        self.charges.append(order)
        fut.set_result(f"receipt-{order}")


async def pay(worker: PaymentWorker, order: str) -> str:
    for latency in (BUDGET, BUDGET / 5):
        try:
            async with asyncio.timeout(BUDGET):
                return await worker.submit(order, latency)
        except TimeoutError:
            continue  # BUG: a timeout does not mean the charge did not happen
    raise RuntimeError("payment failed")


async def scenario() -> None:
    worker = PaymentWorker()
    await pay(worker, "o-7")
    await asyncio.sleep(1)
    assert worker.charges.count("o-7") == 1, f"charged {worker.charges.count('o-7')} times"
