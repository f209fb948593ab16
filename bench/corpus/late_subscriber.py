"""Order violation: a subscriber registers after the event it waits for.

Bug class: order violation / lost notification. A job publishes "ready" on
a tiny pub-sub bus; a watcher subscribes after loading its config (awaits)
and then waits for "ready". If the job publishes first, the watcher waits
forever (seedloop: DeadlockError).
Depth 1: the job's publish must come before the watcher's subscribe.
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "order violation (lost notification)"
DEPTH = 1
TASKS = 3


class Bus:
    def __init__(self) -> None:
        self.subscribers: dict[str, list[asyncio.Future[str]]] = {}

    def subscribe(self, topic: str) -> asyncio.Future[str]:
        fut = asyncio.get_running_loop().create_future()
        self.subscribers.setdefault(topic, []).append(fut)
        return fut

    def publish(self, topic: str, message: str) -> None:
        for fut in self.subscribers.pop(topic, []):  # BUG: no retained last message
            if not fut.done():
                fut.set_result(message)


async def job(bus: Bus) -> None:
    await io(2)  # warm up
    await io(1)
    bus.publish("ready", "job-1")


async def watcher(bus: Bus, seen: list[str]) -> None:
    await io(2)  # load config
    seen.append(await bus.subscribe("ready"))


async def scenario() -> None:
    bus = Bus()
    seen: list[str] = []
    await asyncio.gather(watcher(bus, seen), job(bus))
    assert seen == ["job-1"]
