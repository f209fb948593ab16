"""Double initialisation: a lazily created client connected twice.

Bug class: check-then-act / double init (``if self.client is None`` then an
awaited connect, with no in-flight future or lock).
Depth 2: a second caller must check while the first caller's connect is in
progress (one preemption inside the handshake). Four request handlers; in
stock order the handshake finishes before the next handler gets there.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "check-then-act (double init)"
DEPTH = 2
TASKS = 4


class Client:
    def __init__(self, ident: int) -> None:
        self.ident = ident


class Service:
    def __init__(self) -> None:
        self.client: Client | None = None
        self.connects = 0

    async def get_client(self) -> Client:
        if self.client is None:
            self.client = await self._connect()  # BUG: concurrent callers connect again
        return self.client

    async def _connect(self) -> Client:
        self.connects += 1
        ident = self.connects
        await io(2)  # TCP + TLS handshake
        return Client(ident)


async def handler(service: Service, delay_steps: int) -> int:
    await io(delay_steps)
    client = await service.get_client()
    return client.ident


async def scenario() -> None:
    service = Service()
    await asyncio.gather(*(handler(service, d) for d in (0, 4, 6, 8)))
    assert service.connects == 1, f"{service.connects} connections opened, one leaked"
