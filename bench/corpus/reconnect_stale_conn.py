"""Stale handle: a request sends on a connection that a reconnect closed.

Bug class: order violation with a long overtake. A request captures
``client.conn``, records a metric (one await), then sends on the captured
connection. A reconnect triggered by the health checker performs a full
eight-round-trip handshake, swaps in the new connection and closes the old
one. The bug needs the *entire* reconnect to fit inside the request's
one-step window: per-step random choice rarely runs one task eight times in
a row, while a priority-based scheduler does exactly that after a single
well-placed preemption.
Depth 2: request-capture before reconnect-swap, reconnect-close before
request-send.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "order violation (stale handle, long overtake)"
DEPTH = 2
TASKS = 4


class Conn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False
        self.sent: list[str] = []

    async def handshake(self) -> None:
        await io(8)  # DNS, TCP, TLS (3 flights), auth, settings, ack

    async def send(self, payload: str) -> None:
        assert not self.closed, f"send on closed connection {self.name}"
        self.sent.append(payload)


class Client:
    def __init__(self) -> None:
        self.conn = Conn("c0")
        self.metrics: list[str] = []

    async def request(self, payload: str) -> None:
        conn = self.conn
        await self.observe(payload)  # BUG: the captured conn may be closed by now
        await conn.send(payload)

    async def observe(self, payload: str) -> None:
        await io(1)
        self.metrics.append(payload)

    async def reconnect(self) -> None:
        new = Conn("c1")
        await new.handshake()
        old, self.conn = self.conn, new
        old.closed = True


async def scenario() -> None:
    client = Client()

    async def later(payload: str, steps: int) -> None:
        await io(steps)
        await client.request(payload)

    await asyncio.gather(
        client.request("GET /a"), client.reconnect(), later("GET /b", 40), later("GET /c", 44)
    )
