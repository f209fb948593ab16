"""Staged failover: a bug only reached after three earlier races each went one way.

Bug class: multi-stage protocol (each stage's race decides whether the next
stage runs at all). A failover walks three checks in order (lease, quorum,
epoch), each its own code: a check reads a value, awaits a probe and reads
it again, while a writer changes the value after two round trips. Only when
the write lands inside the check's window does the failover go on to the
next check; passing all three promotes a standby whose epoch is stale.
Heartbeats add steps. Depth 3 in stages: each check needs its own
preemption, and a check only runs after the one before it tripped, so a
uniform schedule takes all three with the product of the three chances; a
search that keeps the runs that reached a later check (new code ran) and
varies what follows needs fewer runs.
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "multi-stage protocol (stage k runs only if race k-1 went wrong)"
DEPTH = 3
TASKS = 5


class Cluster:
    def __init__(self) -> None:
        self.lease = 0
        self.quorum = 3
        self.epoch = 7


async def renew_lease(cluster: Cluster) -> None:
    await io(2)
    cluster.lease += 1


async def lease_lapsed(cluster: Cluster) -> bool:
    seen = cluster.lease
    await io(1)  # ask the lease service
    return cluster.lease != seen


async def lose_member(cluster: Cluster) -> None:
    await io(2)
    cluster.quorum -= 1


async def quorum_shrank(cluster: Cluster) -> bool:
    members = cluster.quorum
    await io(1)  # poll the members
    return cluster.quorum < members


async def bump_epoch(cluster: Cluster) -> None:
    await io(2)
    cluster.epoch += 1


async def epoch_moved(cluster: Cluster) -> bool:
    epoch = cluster.epoch
    await io(1)  # read the standby's log position
    return cluster.epoch != epoch


async def scenario() -> None:
    noise = start_noise(2, 6)
    cluster = Cluster()
    lapsed, _ = await asyncio.gather(lease_lapsed(cluster), renew_lease(cluster))
    if lapsed:
        shrank, _ = await asyncio.gather(quorum_shrank(cluster), lose_member(cluster))
        if shrank:
            moved, _ = await asyncio.gather(epoch_moved(cluster), bump_epoch(cluster))
            assert not moved, f"standby promoted with a stale epoch {cluster.epoch}"
    await asyncio.gather(*noise)
