"""redis-py 4.5.1's own cancellation race (CVE-2023-28858) against a fake Redis on seedloop.net.

Run in a subprocess by tests/test_timeline.py with redis 4.5.1 on the path
(``pip install --target DIR redis==4.5.1``; ``SEEDLOOP_REDIS_451=DIR``): it
prints the failure report, whose timeline the test reads.
"""

import asyncio

import redis
import redis.asyncio as aioredis

import seedloop
from seedloop import net

assert redis.__version__ == "4.5.1", redis.__version__


async def fake_redis(reader, writer):
    """Enough of the RESP protocol for SET and GET, answering after 1 ms."""
    store = {}
    try:
        while line := await reader.readline():
            args = []
            for _ in range(int(line[1:])):
                size = int((await reader.readline())[1:])
                args.append((await reader.readexactly(size + 2))[:-2])
            await asyncio.sleep(0.001)
            if args[0].upper() == b"SET":
                store[args[1]] = args[2]
                writer.write(b"+OK\r\n")
            else:
                value = store.get(args[1])
                if value is None:
                    writer.write(b"$-1\r\n")
                else:
                    writer.write(b"$%d\r\n%s\r\n" % (len(value), value))
            await writer.drain()
    except ConnectionResetError:
        pass
    writer.close()


async def cve_2023_28858():
    n = net.current()
    server, app = n.host("redis"), n.host("app")

    async def serve():
        srv = await asyncio.start_server(fake_redis, None, 6379)
        await srv.serve_forever()

    server.spawn(serve())
    await asyncio.sleep(0.01)

    async def client():
        r = aioredis.Redis(host="redis", port=6379, single_connection_client=True)
        try:
            await r.set("foo", "foo")
            await r.set("bar", "bar")
            get_foo = asyncio.create_task(r.get("foo"))
            await asyncio.sleep(0.003)  # less than a round trip: cancelled mid-command
            get_foo.cancel()
            try:
                await get_foo
            except asyncio.CancelledError:
                pass
            got = await r.get("bar")
        finally:
            await r.close()
        assert got == b"bar", f"GET bar returned {got!r}"

    await app.spawn(client())


if __name__ == "__main__":
    print(seedloop.find_failing_seed(cve_2023_28858, range(20)).report())
