"""aiohttp, unmodified, on seedloop's simulated network.

An aiohttp web server runs on host "api", an aiohttp ClientSession on host
"web". The link has 20-60 ms latency. Halfway through, the server is isolated
for 2 s: requests made then time out (aiohttp's own ClientTimeout, in virtual
time) and the client retries; the output shows what that does to a
non-idempotent counter. No real socket is opened.

    pip install aiohttp
    python examples/real_library.py
"""

import asyncio
import socket

from aiohttp import ClientError, ClientSession, ClientTimeout, web

import seedloop
from seedloop import net


async def api_server(ready):
    counter = {"n": 0}

    async def incr(request):
        body = await request.json()
        counter["n"] += body["by"]
        return web.json_response({"n": counter["n"], "client": request.remote})

    app = web.Application()
    app.router.add_post("/incr", incr)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, None, 8080).start()
    ready.set()
    await asyncio.sleep(3600)


async def scenario():
    n = net.current()
    api, web_host = n.host("api"), n.host("web")
    n.set_latency(api, web_host, net.Uniform(0.02, 0.06))
    ready = asyncio.Event()
    api.spawn(api_server(ready))
    loop = asyncio.get_running_loop()
    outcomes = []

    async def client():
        await ready.wait()
        async with ClientSession(timeout=ClientTimeout(total=0.5)) as session:
            for i in range(12):
                if i == 6:
                    n.isolate(api)
                    loop.call_later(2.0, n.heal)
                tries = 0
                while True:
                    tries += 1
                    try:
                        async with session.post("http://api:8080/incr", json={"by": i}) as r:
                            data = await r.json()
                        break
                    except (ClientError, asyncio.TimeoutError) as exc:
                        outcomes.append((i, type(exc).__name__, round(loop.time(), 3)))
                await asyncio.sleep(0.1)
                outcomes.append((i, data["n"], tries, round(loop.time(), 3)))

    await web_host.spawn(client())
    return outcomes, n.stats()


real_calls = []
for name in ("connect", "bind", "listen"):
    original = getattr(socket.socket, name)
    setattr(
        socket.socket,
        name,
        lambda self, *a, _n=name, _o=original: (real_calls.append(_n), _o(self, *a))[1],
    )

for seed in (1, 2):
    result = seedloop.execute(scenario, seed)
    if result.exception:
        raise result.exception
    outcomes, stats = result.value
    print(
        f"seed {seed}: virtual time {result.virtual_time:.3f} s, {result.steps} steps, "
        f"fingerprint {result.fingerprint}"
    )
    for row in outcomes:
        if isinstance(row[1], str):
            print(f"  request {row[0]}: {row[1]} at t={row[2]}")
        else:
            print(f"  request {row[0]}: counter={row[1]} after {row[2]} attempt(s), t={row[3]}")
    print(
        f"  network: {stats['streams_opened']} TCP connections, {stats['resets']} resets, "
        f"{stats['bytes_sent']} bytes sent"
    )
    final = [row[1] for row in outcomes if not isinstance(row[1], str)][-1]
    expected = sum(range(12))
    print(
        f"  final counter {final}; {expected} if every increment applied exactly once"
        + (
            ""
            if final == expected
            else " -> a request that timed out during the partition was still delivered after"
            " the heal, and its retry applied it again"
        )
    )
print("real socket connect/bind/listen calls:", len(real_calls))
