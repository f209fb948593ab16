"""Stale leader: a deposed leader's write lands after a new leader's.

Bug class: atomicity violation with a long overtake (check ``is_leader``,
await, then write without a fencing token). While the old leader serialises
its entry (one await), a full election (the candidate's six message rounds)
completes and the new leader writes; the old leader's write then clobbers
it. Two followers replicate in the background.
Depth 2: old-leader check before the election ends, the new leader's write
before the old leader's write.
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "atomicity violation (stale leader, long overtake)"
DEPTH = 2
TASKS = 5


class Cluster:
    def __init__(self) -> None:
        self.leader = "n1"
        self.term = 1
        self.log: list[tuple[int, str]] = []


async def old_leader(cluster: Cluster) -> None:
    if cluster.leader == "n1":
        term = cluster.term
        await io(1)  # serialise the entry
        cluster.log.append((term, "n1: set x=1"))  # BUG: no fencing on the term


async def candidate(cluster: Cluster) -> None:
    await io(6)  # request votes, gather a quorum, announce
    cluster.term += 1
    cluster.leader = "n2"
    cluster.log.append((cluster.term, "n2: set x=2"))


async def scenario() -> None:
    cluster = Cluster()
    noise = start_noise(2, 10, "replicate")
    await asyncio.gather(old_leader(cluster), candidate(cluster))
    await asyncio.gather(*noise)
    terms = [t for t, _ in cluster.log]
    assert terms == sorted(terms), f"entry from a stale term after a newer one: {cluster.log}"
