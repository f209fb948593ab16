"""Check-then-act: a message sent on a connection closed meanwhile.

Bug class: check-then-act / use after close. The sender checks
``conn.closed``, awaits serialisation, then writes; the idle reaper closes
the connection in between.
Depth 2: the reaper must close after the sender's check and before its
write (a preemption inside the sender); stock order closes it later.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "check-then-act (use after close)"
DEPTH = 2
TASKS = 3


class Connection:
    def __init__(self) -> None:
        self.closed = False
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        assert not self.closed, "write on a closed connection"
        self.sent.append(data)


async def send(conn: Connection, payload: dict[str, int]) -> bool:
    if conn.closed:
        return False
    data = await serialise(payload)  # BUG: conn may be closed by now
    conn.write(data)
    return True


async def serialise(payload: dict[str, int]) -> bytes:
    await io(2)
    return repr(sorted(payload.items())).encode()


async def reaper(conn: Connection, idle_steps: int) -> None:
    await io(idle_steps)
    if not conn.sent or len(conn.sent) >= 1:
        conn.closed = True


async def scenario() -> None:
    conn = Connection()

    async def app() -> None:
        await send(conn, {"a": 1})

    await asyncio.gather(app(), reaper(conn, 4))
