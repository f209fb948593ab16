"""A replicated register that reads from the nearest replica, caught by the linearizability checker.

A leader ("a") takes every write, acknowledges it, and ships it to a
follower ("b") in the background. Three clients write and read; in the
buggy version two of them read from the follower, their nearest replica.
Between t=0.3 s and t=1.0 s the leader and the follower are partitioned.
Each client records what it did in a `seedloop.check.History`; the run
fails if the history is not linearizable as a register. No assert in the
scenario knows what a stale read is: the checker finds it, and its
counterexample says which read could not be placed.

The fix sends reads to the leader too. After the partition heals, both
versions check liveness with `seedloop.eventually`: the follower catches up.

    python examples/kv_linearizable.py
"""

import asyncio

import seedloop
from seedloop import check, net

PORT = 7000


async def replica(store, follower=None):
    """Serve "W v" (write), "R" (read) and "REPL v" (from the leader) on PORT."""
    outbox = asyncio.Queue()

    async def ship():
        # Replication in the background: the write was acknowledged already.
        reader, writer = await asyncio.open_connection(follower, PORT)
        while True:
            writer.write(f"REPL {await outbox.get()}\n".encode())

    async def handle(reader, writer):
        try:
            while line := await reader.readline():
                cmd, _, arg = line.decode().strip().partition(" ")
                if cmd in ("W", "REPL"):
                    store["value"] = int(arg)
                    if follower is not None:
                        outbox.put_nowait(arg)
                if cmd == "W":
                    writer.write(b"OK\n")
                elif cmd == "R":
                    writer.write(f"V {store['value']}\n".encode())
                await writer.drain()
        except ConnectionResetError:
            pass  # a client gave up on this connection
        writer.close()

    if follower is not None:
        asyncio.get_running_loop().create_task(ship())
    server = await asyncio.start_server(handle, None, PORT)
    await server.serve_forever()


async def client(h, name, number, read_from, ops=24):
    conns = {}

    async def call(host, line):
        if host not in conns:
            conns[host] = await asyncio.wait_for(asyncio.open_connection(host, PORT), 0.3)
        reader, writer = conns[host]
        writer.write(line.encode())
        try:
            return (await asyncio.wait_for(reader.readline(), 0.3)).decode().split()
        except BaseException:
            conns.pop(host)[1].transport.abort()  # a timed-out connection is not reused
            raise

    for i in range(ops):
        try:
            if (i + number) % 3 == 0:
                value = 100 * number + i
                async with h.op(name, "write", value):
                    await call("a", f"W {value}\n")
            else:
                async with h.op(name, "read") as op:
                    reply = await call(read_from, "R\n")
                    op.ok(None if reply[1] == "None" else int(reply[1]))
        except (OSError, asyncio.TimeoutError):
            pass  # recorded as info: the write may or may not have happened
        await asyncio.sleep(0.05)


def make_scenario(read_from_follower):
    async def scenario():
        n = net.current()
        a, b = n.host("a"), n.host("b")
        n.set_latency(a, b, net.Uniform(0.001, 0.010))
        leader, follower = {"value": None}, {"value": None}
        b.spawn(replica(follower))
        a.spawn(replica(leader, follower="b"))
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, n.partition, a, b)
        loop.call_later(1.0, n.heal)
        h = check.History()
        clients = []
        for number, name in enumerate(["c1", "c2", "c3"]):
            read_from = "b" if read_from_follower and number > 0 else "a"
            clients.append(n.host(name).spawn(client(h, name, number, read_from)))
        await asyncio.sleep(0.01)  # the servers listen before the first connect
        await asyncio.gather(*clients)
        # Liveness after the fault healed: the follower catches up.
        await seedloop.eventually(lambda: follower["value"] == leader["value"], within=2.0)
        result = check.linearizable(h, "register")
        assert result.ok, str(result)
        return len(h)

    return scenario


buggy = make_scenario(read_from_follower=True)
fixed = make_scenario(read_from_follower=False)

if __name__ == "__main__":
    failure = seedloop.find_failing_seed(buggy, range(20), explain=False)
    print(f"reads from the follower: seed {failure.seed} fails")
    print(failure.exception)
    print("reads from the leader: 200 seeds,", end=" ")
    print("all linearizable" if seedloop.find_failing_seed(fixed, range(200)) is None else "a failure!")
