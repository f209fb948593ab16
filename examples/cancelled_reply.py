"""redis-py 4.5.1's cancellation race (CVE-2023-28858), rebuilt on seedloop.net.

A connection pool hands out connections to a fake Redis server. A command
cancelled while it waits for its reply (here by ``asyncio.wait_for``'s
timeout) puts its connection back into the pool with the reply still unread,
and the next user of that connection reads it: user 2 is shown user 0's
value. The timeline shows the timer that fired, who cancelled whom, where the
CancelledError landed, and which connection each command used.

    python examples/cancelled_reply.py
    seedloop replay examples/cancelled_reply.py:pool_race --seed 1 --html report.html --trace run.json
"""

import asyncio

import seedloop
from seedloop import net


class Pool:
    """A connection pool with redis-py 4.5.1's bug."""

    def __init__(self, size):
        self.free = asyncio.Queue()
        self.size = size

    async def connect(self):
        for _ in range(self.size):
            self.free.put_nowait(await asyncio.open_connection("redis", 6379))

    async def command(self, text):
        conn = await self.free.get()
        reader, writer = conn
        try:
            writer.write(text.encode() + b"\n")
            await writer.drain()
            return (await reader.readline()).decode().strip()
        finally:
            self.free.put_nowait(conn)  # the bug: back in the pool with its reply unread


async def fake_redis(reader, writer):
    while line := await reader.readline():
        await asyncio.sleep(0.001)
        writer.write(b"value-of-" + line.split()[1] + b"\n")
        await writer.drain()
    writer.close()


async def pool_race():
    n = net.current()
    server, app = n.host("redis"), n.host("app")

    async def redis():
        srv = await asyncio.start_server(fake_redis, None, 6379)
        await srv.serve_forever()

    server.spawn(redis())
    await asyncio.sleep(0.01)
    pool = Pool(2)
    await app.spawn(pool.connect())

    async def user(i):
        await asyncio.sleep(0.003 * i)
        try:
            got = await asyncio.wait_for(pool.command(f"GET user{i}"), timeout=0.008)
        except asyncio.TimeoutError:
            return
        assert got == f"value-of-user{i}", f"user {i} shown {got}"

    await asyncio.gather(*[app.spawn(user(i)) for i in range(4)])


if __name__ == "__main__":
    print(seedloop.find_failing_seed(pool_race, range(100)).report())
