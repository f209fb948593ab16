"""Real, unmodified libraries on seedloop.net: aiohttp, websockets, redis-py, httpx."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from test_net import (  # noqa: F401  (fixtures)
    real_socket_calls,  # real socket I/O seen by an audit hook
    tls,  # a certificate for host "secure"
)

import seedloop
from seedloop import net

pytestmark = pytest.mark.extra


# -- aiohttp -------------------------------------------------------------------


async def aiohttp_scenario():
    from aiohttp import ClientSession, web

    n = net.current()
    api, client = n.host("api"), n.host("client")
    ready = asyncio.Event()
    served = []

    async def serve():
        app = web.Application()

        async def hello(request):
            served.append(request.remote)
            return web.json_response({"hello": request.query["name"]})

        async def echo(request):
            body = await request.read()
            return web.Response(body=body[::-1], headers={"X-Len": str(len(body))})

        async def static(request):
            return web.FileResponse(__file__)

        app.router.add_get("/hello", hello)
        app.router.add_post("/echo", echo)
        app.router.add_get("/file", static)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, None, 0)
        await site.start()
        n.add_name("api.local", api)
        ready.port = runner.addresses[0][1]  # type: ignore[attr-defined]
        ready.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await runner.cleanup()

    api.spawn(serve())

    async def use():
        await ready.wait()
        base = f"http://api.local:{ready.port}"  # type: ignore[attr-defined]
        out = []
        async with ClientSession() as session:
            for i in range(10):
                async with session.get(f"{base}/hello", params={"name": f"n{i}"}) as r:
                    out.append((r.status, (await r.json())["hello"]))
            payload = os.urandom(1) * 0 + bytes(range(256)) * 1000
            async with session.post(f"{base}/echo", data=payload) as r:
                body = await r.read()
                out.append((r.status, r.headers["X-Len"], body == payload[::-1]))
            async with session.get(f"{base}/file") as r:
                with open(__file__, "rb") as f:
                    out.append((r.status, await r.read() == f.read()))
        return out, served, n.stats()["streams_opened"], round(asyncio.get_running_loop().time(), 6)

    return await client.spawn(use())


def test_aiohttp_server_and_client_session(real_socket_calls):  # noqa: F811
    pytest.importorskip("aiohttp")
    out, served, streams, _ = seedloop.run(aiohttp_scenario, seed=1)
    assert out[:10] == [(200, f"n{i}") for i in range(10)]
    assert out[10] == (200, "256000", True)
    assert out[11] == (200, True), "FileResponse served through loop.sendfile's fallback"
    assert set(served) == {"10.0.0.2"}
    assert streams == 1, "keep-alive: one connection for every request"
    assert real_socket_calls == []


def test_aiohttp_same_seed_same_trace():
    pytest.importorskip("aiohttp")
    a = seedloop.execute(aiohttp_scenario, 4)
    b = seedloop.execute(aiohttp_scenario, 4)
    assert a.exception is None, a.exception
    assert a.fingerprint == b.fingerprint and a.value == b.value


def test_aiohttp_https_and_websockets_wss(tls):  # noqa: F811
    pytest.importorskip("aiohttp")
    pytest.importorskip("websockets")
    server_ctx, client_ctx = tls

    async def scenario():
        from aiohttp import ClientSession, web
        from websockets.asyncio.client import connect
        from websockets.asyncio.server import serve

        n = net.current()
        secure, client = n.host("secure"), n.host("client")
        ready = asyncio.Event()

        async def servers():
            app = web.Application()

            async def hello(request):
                return web.Response(text=f"hello over {request.scheme}")

            app.router.add_get("/", hello)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, None, 8443, ssl_context=server_ctx).start()

            async def echo(ws):
                async for message in ws:
                    await ws.send(message)

            async with serve(echo, None, 9443, ssl=server_ctx):
                ready.set()
                await asyncio.sleep(3600)

        secure.spawn(servers())

        async def use():
            await ready.wait()
            async with ClientSession() as session:
                async with session.get("https://secure:8443/", ssl=client_ctx) as r:
                    text = await r.text()
            async with connect("wss://secure:9443", ssl=client_ctx) as ws:
                await ws.send("over tls")
                echoed = await ws.recv()
            return text, echoed

        return await client.spawn(use())

    assert seedloop.run(scenario, seed=1) == ("hello over https", "over tls")


# -- websockets ----------------------------------------------------------------


async def websockets_scenario():
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    n = net.current()
    n.set_latency(None, None, net.Exponential(0.002, offset=0.001))
    srv_host, cli = n.host("ws"), n.host("client")
    ready = asyncio.Event()

    async def server():
        async def echo(ws):
            async for message in ws:
                await ws.send(message)

        async with serve(echo, None, 8765, compression=None):
            ready.set()
            await asyncio.sleep(3600)

    srv_host.spawn(server())

    async def client():
        await ready.wait()
        got = []
        async with connect("ws://ws:8765", compression=None) as ws:
            for i in range(100):
                await ws.send(f"m{i}")
                got.append(await ws.recv())
            await ws.send(b"\x00" * 200_000)
            big = await ws.recv()
        return got, len(big), round(asyncio.get_running_loop().time(), 6)

    return await cli.spawn(client())


def test_websockets_echo(real_socket_calls):  # noqa: F811
    pytest.importorskip("websockets")
    got, big, t = seedloop.run(websockets_scenario, seed=3)
    assert got == [f"m{i}" for i in range(100)]
    assert big == 200_000
    assert t > 0.2, "every message crossed the simulated network"
    assert real_socket_calls == []
    assert seedloop.run(websockets_scenario, seed=3)[2] == t


# -- redis-py --------------------------------------------------------------------


async def resp_server(store: dict[bytes, bytes]) -> asyncio.AbstractServer:
    """A tiny RESP2 server: PING, SET, GET, INCR(BY); -ERR for anything else."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while line := await r.readline():
                args = []
                for _ in range(int(line[1:])):
                    size = int((await r.readline())[1:])
                    args.append((await r.readexactly(size + 2))[:-2])
                cmd = args[0].upper()
                if cmd == b"PING":
                    w.write(b"+PONG\r\n")
                elif cmd == b"SET":
                    store[args[1]] = args[2]
                    w.write(b"+OK\r\n")
                elif cmd == b"GET":
                    v = store.get(args[1])
                    w.write(b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v))
                elif cmd in (b"INCR", b"INCRBY"):
                    v = int(store.get(args[1], b"0")) + int(args[2] if len(args) > 2 else 1)
                    store[args[1]] = b"%d" % v
                    w.write(b":%d\r\n" % v)
                else:
                    w.write(b"-ERR unknown command '%s'\r\n" % cmd)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    return await asyncio.start_server(handle, None, 6379)


async def redis_scenario():
    import redis.asyncio as redis

    n = net.current()
    db, app = n.host("redis"), n.host("app")
    store: dict[bytes, bytes] = {}
    await db.spawn(resp_server(store))

    async def worker(i, client):
        for _ in range(5):
            await client.incr("counter")
        await client.set(f"k{i}", f"v{i}")
        return await client.get(f"k{i}")

    async def use():
        client = redis.Redis(host="redis", port=6379, protocol=2)
        assert await client.ping()
        got = await asyncio.gather(*(worker(i, client) for i in range(4)))
        counter = await client.get("counter")
        await client.aclose()
        await asyncio.sleep(0.1)
        return got, counter

    return await app.spawn(use())


def test_redis_asyncio_client(real_socket_calls):  # noqa: F811
    pytest.importorskip("redis")
    got, counter = seedloop.run(redis_scenario, seed=2)
    assert got == [b"v0", b"v1", b"v2", b"v3"]
    assert counter == b"20"
    assert real_socket_calls == []


# -- determinism across processes ------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import seedloop
    from test_net_libs import aiohttp_scenario, websockets_scenario
    for f in (aiohttp_scenario, websockets_scenario):
        r = seedloop.execute(f, 9)
        assert r.exception is None, r.exception
        print(r.fingerprint, r.value[-1])
    """
)


def test_library_traces_identical_across_processes():
    pytest.importorskip("aiohttp")
    pytest.importorskip("websockets")
    code = CHILD.format(tests=os.path.dirname(__file__))
    outs = []
    for hashseed in ("0", "4242"):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=dict(os.environ, PYTHONHASHSEED=hashseed),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    assert len(outs[0].split()) == 4


def test_library_runs_are_freed():
    pytest.importorskip("aiohttp")
    import gc
    import weakref

    refs = []

    async def scenario():
        refs.append(weakref.ref(asyncio.get_running_loop()))
        return await aiohttp_scenario()

    for seed in range(2):
        seedloop.run(scenario, seed=seed)
    gc.collect()
    assert [r() for r in refs] == [None, None]


# -- connection reuse (keep-alive) -------------------------------------------------


async def keep_alive_scenario(client_lib: str, requests: int = 5, close_after: int = 0):
    """``requests`` GETs from one client to a plain asyncio HTTP/1.1 server.

    Returns (responses, connections the server accepted). With ``close_after``
    the server closes each connection after that many responses (while the
    client keeps it pooled), so the client must notice and reconnect.
    """
    n = net.current()
    api, client = n.host("api"), n.host("client")
    accepted = []

    async def handle(reader, writer):
        accepted.append(writer.get_extra_info("peername"))
        served = 0
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the client closed (or reset) the connection
            body = b"ok %d" % len(accepted)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
            served += 1
            if served == close_after:
                break
        writer.close()

    async def serve():
        server = await asyncio.start_server(handle, None, 8080)
        await server.serve_forever()

    api.spawn(serve())
    await asyncio.sleep(0.01)

    async def use_httpx():
        import httpx

        got = []
        async with httpx.AsyncClient() as c:
            for _ in range(requests):
                got.append((await c.get("http://api:8080/")).text)
                await asyncio.sleep(0.1)
        return got

    async def use_aiohttp():
        import aiohttp

        got = []
        async with aiohttp.ClientSession() as s:
            for _ in range(requests):
                async with s.get("http://api:8080/") as r:
                    got.append(await r.text())
                await asyncio.sleep(0.1)
        return got

    got = await client.spawn(use_httpx() if client_lib == "httpx" else use_aiohttp())
    return got, len(accepted)


@pytest.mark.parametrize("lib", ["httpx", "aiohttp"])
def test_http_clients_reuse_connections_as_on_stock(lib):
    # Issue 9: the simulated socket's fileno() was -1, which httpcore reads as
    # a dead connection, so every request opened a new one (stock: one).
    pytest.importorskip(lib)
    got, connections = seedloop.run(lambda: keep_alive_scenario(lib), seed=1)
    assert got == ["ok 1"] * 5
    assert connections == 1


@pytest.mark.parametrize("lib", ["httpx", "aiohttp"])
def test_http_clients_notice_a_server_closed_pooled_connection(lib):
    # The other half of the liveness check: a pooled connection the server
    # closed must be seen as dead, and the client reconnects without an error.
    pytest.importorskip(lib)
    got, connections = seedloop.run(lambda: keep_alive_scenario(lib, 4, close_after=2), seed=1)
    assert got == ["ok 1", "ok 1", "ok 2", "ok 2"]
    assert connections == 2
