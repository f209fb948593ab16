"""Human-readable descriptions of tasks and where they are suspended."""

from __future__ import annotations

import asyncio
import os
from types import FrameType
from typing import Any


def innermost_frame(task: asyncio.Future[Any]) -> FrameType | None:
    """The frame of the innermost coroutine the task is suspended in."""
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if get_coro else None
    frame = None
    seen = 0
    while coro is not None and seen < 200:
        seen += 1
        f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if f is None:
            f = getattr(coro, "ag_frame", None)
        if f is not None:
            frame = f
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    return frame


def where(frame: FrameType | None) -> str:
    if frame is None:
        return "<not started or finished>"
    name = os.path.basename(frame.f_code.co_filename)
    return f"{name}:{frame.f_lineno} in {frame.f_code.co_name}()"


def describe_task(task: asyncio.Future[Any], ordinal: int) -> str:
    name = task.get_name() if hasattr(task, "get_name") else "?"
    waiter = getattr(task, "_fut_waiter", None)
    on = f" on {_short(waiter)}" if waiter is not None else ""
    return f"task #{ordinal} {name!r} waits at {where(innermost_frame(task))}{on}"


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 100 else text[:97] + "..."
