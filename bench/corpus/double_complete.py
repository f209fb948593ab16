"""Check-then-act on a Future: two responders complete the same request.

Bug class: check-then-act (``if not fut.done()`` then an await, then
``set_result``). A primary and a hedged backup both answer; whichever
resolves second crashes with InvalidStateError, which kills the connection
handler.
Depth 2: the backup must check ``done()`` while the primary is between its
check and its ``set_result``.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "check-then-act (future completed twice)"
DEPTH = 2
TASKS = 3


async def respond(fut: asyncio.Future[str], who: str, latency: int) -> None:
    await io(latency)
    if not fut.done():
        body = await render(who)  # BUG: the check is stale after this await
        try:
            fut.set_result(body)
        except asyncio.InvalidStateError:
            raise AssertionError(f"{who}: request completed twice") from None


async def render(who: str) -> str:
    await io(2)
    return f"<html>{who}</html>"


async def scenario() -> None:
    fut = asyncio.get_running_loop().create_future()
    await asyncio.gather(respond(fut, "primary", 1), respond(fut, "backup", 5))
    assert fut.done(), "request never answered"
