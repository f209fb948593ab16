"""Torn read: a client reads host and port of a config that is being reloaded.

Bug class: atomicity violation (multi-field read across an await) among
many tasks. The reloader writes the new host, awaits the secrets store,
then writes the new port; a client reads the host, awaits DNS, then reads
the port. Connecting to new-host:old-port or old-host:new-port fails.
Six request handlers and heartbeats make for a long run of unrelated steps.
Depth 2: one client's two reads must straddle one of the reloader's writes
(one preemption in the right window of a long run).
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "atomicity violation (torn read)"
DEPTH = 2
TASKS = 12

VALID = {("db-a", 5432), ("db-b", 6432)}


class Config:
    def __init__(self) -> None:
        self.host = "db-a"
        self.port = 5432

    async def reload(self) -> None:
        self.host = "db-b"
        await io(1)  # fetch the new port's secret
        self.port = 6432


async def handler(config: Config, arrive: int, connected: list[tuple[str, int]]) -> None:
    await io(arrive)
    host = config.host
    await io(1)  # resolve the host  -- BUG: port read separately, later
    connected.append((host, config.port))


async def scenario() -> None:
    config = Config()
    connected: list[tuple[str, int]] = []
    noise = start_noise(5, 60)

    async def reloader() -> None:
        await io(9)
        await config.reload()

    await asyncio.gather(
        reloader(), *(handler(config, a, connected) for a in (0, 3, 5, 13, 15, 17))
    )
    await asyncio.gather(*noise)
    torn = [c for c in connected if c not in VALID]
    assert not torn, f"connected to a torn config: {torn}"
