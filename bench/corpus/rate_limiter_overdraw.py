"""Check-then-act: a token bucket checked, then debited after an await.

Bug class: check-then-act on shared state. Five API clients share a token
bucket; each checks ``tokens > 0``, awaits the audit log, then debits. Two
clients passing the check for the last token overdraw the bucket. Four
metrics heartbeats run alongside (noise steps).
Depth 2: a client must check while another client that saw the last token is
between its check and its debit (one preemption inside the critical window,
among 9 tasks).
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "check-then-act"
DEPTH = 2
TASKS = 9


class Bucket:
    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.audit: list[str] = []

    async def take(self, client: str) -> bool:
        if self.tokens <= 0:
            return False
        await self._audit(client)  # BUG: the check is stale after this await
        self.tokens -= 1
        return True

    async def _audit(self, client: str) -> None:
        await io(1)
        self.audit.append(client)


async def client(bucket: Bucket, name: str, requests: int, think: int) -> int:
    granted = 0
    for _ in range(requests):
        await io(think)
        granted += await bucket.take(name)
    return granted


async def scenario() -> None:
    bucket = Bucket(tokens=4)
    noise = start_noise(4, 40)
    granted = await asyncio.gather(*(client(bucket, f"c{i}", 2, 3 + 3 * i) for i in range(5)))
    await asyncio.gather(*noise)
    assert bucket.tokens >= 0, f"bucket overdrawn: {bucket.tokens} tokens, granted {granted}"
