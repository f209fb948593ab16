"""TaskGroup error handling: retrying on "the" error when two children fail.

Bug class: TaskGroup error handling. The caller looks only at the first
exception of the ExceptionGroup to decide whether to retry. When a
transient and a fatal error race, the fatal one is dropped whenever the
transient one happens to be first, and a corrupted upload is retried as if
nothing happened.
Depth 1: the transient failure must happen before the fatal one (stock
order has the fatal check fail first).
"""

from __future__ import annotations

import asyncio

from ._util import io

KIND = "TaskGroup error handling"
DEPTH = 1
TASKS = 3
MIN_PYTHON = (3, 11)


class Transient(Exception):
    pass


class Corrupt(Exception):
    pass


async def checksum(parts: list[bytes]) -> None:
    await io(2)
    if parts[1] != b"xx":
        raise Corrupt("part 1 checksum mismatch")


async def upload(parts: list[bytes]) -> None:
    await io(2)
    await io(1)
    raise Transient("503 from storage")


async def scenario() -> None:
    parts = [b"aa", b"x?"]
    decision = None
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(checksum(parts))
            tg.create_task(upload(parts))
            tg.create_task(io(4))
    except ExceptionGroup as eg:  # noqa: F821 (3.11+, see MIN_PYTHON)
        first = eg.exceptions[0]  # BUG: ignores the other failures
        decision = "retry" if isinstance(first, Transient) else "abort"
    assert decision == "abort", "corrupt upload scheduled for retry"
