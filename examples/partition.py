"""A client talks to a key-value server across a network partition.

The client writes 20 keys, one every 0.25 s, each with a 1 s timeout and
retries on a fresh connection. Between t=1 s and t=4 s the network between
client and server is cut. Everything (latencies, the partition, the retry
timing) happens in virtual time, decided by the seed.

    python examples/partition.py
"""

import asyncio

import seedloop
from seedloop import net


async def kv_server(store):
    async def handle(reader, writer):
        try:
            while line := await reader.readline():
                key, _, value = line.decode().strip().partition("=")
                store[key] = value
                writer.write(b"OK\n")
                await writer.drain()
        except ConnectionResetError:
            pass  # the client gave up on this connection (abort)
        writer.close()

    server = await asyncio.start_server(handle, None, 6000)
    await server.serve_forever()


async def scenario():
    n = net.current()
    db, app = n.host("db"), n.host("app")
    n.set_latency(db, app, net.Normal(0.01, 0.005, minimum=0.001))
    store = {}
    db.spawn(kv_server(store))
    loop = asyncio.get_running_loop()
    loop.call_later(1.0, n.partition, db, app)
    loop.call_later(4.0, n.heal)
    log = []

    async def client():
        await asyncio.sleep(0.1)
        conn = None
        for i in range(20):
            attempt = 0
            while True:
                attempt += 1
                try:
                    if conn is None:
                        conn = await asyncio.wait_for(asyncio.open_connection("db", 6000), 1.0)
                    reader, writer = conn
                    writer.write(f"k{i}=v{i}\n".encode())
                    await asyncio.wait_for(reader.readline(), 1.0)
                    break
                except (OSError, asyncio.TimeoutError):
                    if conn is not None:
                        conn[1].transport.abort()  # give up on this connection
                    conn = None
            log.append((i, attempt, round(loop.time(), 3)))
            await asyncio.sleep(0.25)
        conn[1].close()
        await asyncio.sleep(0.1)

    await app.spawn(client())
    return log, store, n.stats()


for seed in (1, 2, 3):
    result = seedloop.execute(scenario, seed)
    log, store, stats = result.value
    retried = [(i, attempts, t) for i, attempts, t in log if attempts > 1]
    print(
        f"seed {seed}: {len(store)}/20 keys stored, finished at t={log[-1][2]} s, "
        f"fingerprint {result.fingerprint}"
    )
    print(f"  writes that needed retries (key, attempts, done at): {retried}")
    print(
        f"  network: {stats['streams_opened']} connections, {stats['segments_held']} "
        f"segments held by the partition, {stats['resets']} resets"
    )
first, again = seedloop.execute(scenario, 1), seedloop.execute(scenario, 1)
print("seed 1 twice gives the same trace:", first.fingerprint == again.fingerprint)
