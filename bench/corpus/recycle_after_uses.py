"""Connection recycled under a health check, only after hundreds of queries.

Bug class: use of a closing resource, with a window that opens late. The
pool recycles its connection after 120 queries (max lifetime): it closes the
old connection, awaits the new handshake, then installs the new one. A
health checker pings through ``pool.conn`` every few turns. Only a ping that
lands inside the one-turn handshake window uses a closed connection. The
window opens after about 250 scheduling steps, so any strategy that spends
its preemptions early (or explores only the first steps) never sees it; in
stock order the checker's phase keeps it out of the window.
Depth 2: the checker's ping must fall after the close and before the
install.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "use of a closing resource (late window)"
DEPTH = 2
TASKS = 3

MAX_USES = 120


class Conn:
    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.closed = False


class Pool:
    def __init__(self) -> None:
        self.conn = Conn(0)
        self.uses = 0
        self.errors: list[str] = []

    async def query(self) -> None:
        self.uses += 1
        if self.uses % MAX_USES == 0:
            old = self.conn
            old.closed = True
            await io(1)  # BUG: the new handshake runs while pool.conn is the closed one
            self.conn = Conn(old.generation + 1)
        await io(1)

    def ping(self) -> None:
        if self.conn.closed:
            self.errors.append(f"ping on closed connection {self.conn.generation}")


async def app(pool: Pool, queries: int) -> None:
    for _ in range(queries):
        await pool.query()


async def health(pool: Pool, done: asyncio.Event) -> None:
    while not done.is_set():
        pool.ping()
        await io(3)


async def scenario() -> None:
    pool = Pool()
    done = asyncio.Event()
    checker = asyncio.ensure_future(health(pool, done))
    await app(pool, 130)
    done.set()
    await checker
    assert not pool.errors, pool.errors
