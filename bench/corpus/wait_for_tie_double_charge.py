"""Double charge: ``wait_for`` gives up on a request the worker just completed.

Bug class: timeout racing completion at an equal deadline, through
``asyncio.wait_for`` on a future completed by another task (Python 3.12+,
where ``wait_for`` is built on ``asyncio.timeout``: a timeout that fires after
the future completed but before the waiting task resumed still raises
``TimeoutError``; 3.11's ``wait_for`` returned the result instead). A payment
worker answers after exactly the client's budget, skipping requests the client
abandoned (``fut.cancelled()``); the client treats ``TimeoutError`` as "not
charged" and retries. In stock order the timeout (armed first) fires first and
the worker skips the abandoned request. If the worker's sleep ends a hair
earlier and the timeout falls due before the client resumes, the worker
charges, the client still times out, and the retry charges twice.
Depth 2: the worker's wakeup must run before the timeout callback, and the
timeout callback before the client's wakeup; a real loop's timer jitter and
callback CPU time produce it.
"""

from __future__ import annotations

import asyncio

KIND = "timeout race (wait_for at an equal deadline)"
DEPTH = 2
TASKS = 3
MIN_PYTHON = (3, 12)

BUDGET = 0.5


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
    try:
        return await asyncio.wait_for(worker.submit(order, BUDGET), BUDGET)
    except TimeoutError:
        # BUG: a timeout does not mean the charge did not happen
        return await asyncio.wait_for(worker.submit(order, BUDGET / 10), BUDGET)


async def scenario() -> None:
    worker = PaymentWorker()
    await pay(worker, "o-1")
    await asyncio.sleep(1)
    assert worker.charges.count("o-1") == 1, f"charged {worker.charges.count('o-1')} times"
