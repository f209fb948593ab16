"""Shared helpers for corpus scenarios."""

from __future__ import annotations

import asyncio


def start_noise(tasks: int, steps: int, name: str = "heartbeat") -> list[asyncio.Task[int]]:
    """Unrelated background tasks (heartbeats, metrics) that each yield ``steps`` times.

    They touch no state the bug involves; they only multiply the interleavings
    a scheduler can choose from, which is what makes naive random search slow.
    """

    async def beat() -> int:
        ticks = 0
        for _ in range(steps):
            ticks += 1
            await asyncio.sleep(0)
        return ticks

    return [asyncio.ensure_future(beat()) for _ in range(tasks)]


async def io(steps: int = 1) -> None:
    """A simulated non-blocking I/O round trip: ``steps`` scheduling points."""
    for _ in range(steps):
        await asyncio.sleep(0)
