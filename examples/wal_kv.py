"""A write-ahead-log key-value server on a simulated disk, crashed mid-run.

The server appends every SET to a log file under its host's data directory,
acknowledges the client, and replays the log when it starts. A client writes
20 keys; at a seeded moment the server host loses power and comes back 0.2 s
later; the client reconnects and retries what was not acknowledged. Then
every acknowledged write must be readable from the restarted server.

The buggy server acknowledges before its (batched, every 20 ms) fsync, as
many group-commit loops do; a crash in that window loses writes the client
was told are stored. The fixed server fsyncs the log before each
acknowledgement, and fsyncs the data directory after creating the log (or
the file itself may vanish in a crash). A crash also tears the last unsynced
write (``torn_writes``): replay stops at the first incomplete record.

    python examples/wal_kv.py
"""

import asyncio
import json
import logging
import os
import random

import seedloop
from seedloop import net

PORT = 7000
KEYS = 20


def replay(path):
    """The store a log holds: every complete record, up to the first torn one."""
    store = {}
    if not os.path.exists(path):
        return store
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # a record torn by the crash: it was never acknowledged
            try:
                key, value = json.loads(line)
            except ValueError:
                break
            store[key] = value
    return store


def sync_dir(path):
    """fsync a directory: makes the names created in it durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def kv_server(data_dir, *, fsync_before_ack, fsync_dir):
    path = os.path.join(data_dir, "wal.log")
    store = replay(path)
    created = not os.path.exists(path)
    log = open(path, "ab")
    if created and fsync_dir:
        sync_dir(data_dir)

    async def group_commit():  # the buggy server's batched fsync
        while True:
            await asyncio.sleep(0.02)
            log.flush()
            os.fsync(log.fileno())

    if not fsync_before_ack:
        asyncio.create_task(group_commit())

    async def handle(reader, writer):
        try:
            while line := await reader.readline():
                op, key, value = json.loads(line)
                if op == "set":
                    log.write(json.dumps([key, value]).encode() + b"\n")
                    log.flush()  # to the page cache: readable, not durable
                    if fsync_before_ack:
                        os.fsync(log.fileno())
                    store[key] = value
                    writer.write(b'"ok"\n')
                else:
                    writer.write(json.dumps(store.get(key)).encode() + b"\n")
                await writer.drain()
        except ConnectionResetError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, None, PORT)
    await server.serve_forever()


async def call(conn, *request):
    reader, writer = conn
    writer.write(json.dumps(request).encode() + b"\n")
    line = await asyncio.wait_for(reader.readline(), 1.0)
    if not line:
        raise ConnectionResetError("server closed the connection")
    return json.loads(line)


async def scenario(*, fsync_before_ack=True, fsync_dir=True):
    n = net.current()
    server, client = n.host("server"), n.host("client")
    server.disk.torn_writes = True
    server.disk.set_latency(net.Uniform(0.001, 0.004), op="fsync")

    def start():
        server.spawn(kv_server(server.data_dir, fsync_before_ack=fsync_before_ack, fsync_dir=fsync_dir))

    start()

    async def power_cut():
        await asyncio.sleep(random.uniform(0.02, 0.25))
        server.crash()
        await asyncio.sleep(0.2)
        server.restart()
        start()

    asyncio.get_running_loop().create_task(power_cut())
    acked = {}

    async def writer():
        await asyncio.sleep(0.01)
        conn = None
        for i in range(KEYS):
            while True:
                try:
                    if conn is None:
                        conn = await asyncio.wait_for(asyncio.open_connection("server", PORT), 3.0)
                    await call(conn, "set", f"k{i}", f"v{i}")
                    acked[f"k{i}"] = f"v{i}"
                    break
                except (OSError, asyncio.TimeoutError):
                    if conn is not None:
                        conn[1].transport.abort()
                    conn = None
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.01)
        conn[1].close()

    async def check():
        conn = await asyncio.open_connection("server", PORT)
        for key, value in acked.items():
            got = await call(conn, "get", key, None)
            assert got == value, f"lost acknowledged write {key}={value!r}: read {got!r} after restart"
        conn[1].close()

    await client.spawn(writer())
    await asyncio.sleep(0.5)  # the power cut and restart are over by now
    await client.spawn(check())
    return len(acked)


async def buggy():
    """Acknowledges before the batched fsync."""
    return await scenario(fsync_before_ack=False)


async def no_dir_fsync():
    """Fsyncs each record, never the directory that holds the new log."""
    return await scenario(fsync_dir=False)


fixed = scenario


if __name__ == "__main__":
    # On Python 3.11 asyncio logs the cancelled connection handlers of a
    # crashed host ("Exception in callback ... CancelledError"): noise here.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    for name, factory in (("ack before fsync", buggy), ("no directory fsync", no_dir_fsync)):
        failure = seedloop.find_failing_seed(factory, range(200), explain=False)
        print(f"{name}: seed {failure.seed} fails: {failure.exception}")
    print("fixed, 500 seeds:", seedloop.find_failing_seed(fixed, range(500)))
