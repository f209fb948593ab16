"""Timeout race: a lease checked at the exact instant it is renewed.

Bug class: timeout race at a timer tie. The leader renews its lease every
0.2 s with a 0.2 s TTL; the monitor declares the leader dead when
``now >= expires``. When both wake at the same virtual instant, the
monitor running first sees an expired lease and fails over while the
leader is alive: two leaders.
Depth 1: one timer-tie ordering. A real event loop can produce it too (it is
found by ``strict``, which only reorders timers due together).
"""

from __future__ import annotations

import asyncio

KIND = "timeout race (timer tie)"
DEPTH = 1
TASKS = 2

TTL = 0.2


class Lease:
    def __init__(self) -> None:
        self.expires = 0.0
        self.leaders: set[str] = set()


async def leader(lease: Lease, rounds: int) -> None:
    loop = asyncio.get_running_loop()
    lease.leaders.add("primary")
    for _ in range(rounds):
        lease.expires = loop.time() + TTL
        await asyncio.sleep(TTL)  # BUG: renews exactly at expiry, no margin


async def monitor(lease: Lease, rounds: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(rounds):
        await asyncio.sleep(TTL)
        if loop.time() >= lease.expires:
            lease.leaders.add("standby")  # failover
            return


async def scenario() -> None:
    lease = Lease()
    await asyncio.gather(leader(lease, 6), monitor(lease, 5))
    assert lease.leaders == {"primary"}, f"split brain: {sorted(lease.leaders)}"
