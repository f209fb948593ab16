"""Human-readable descriptions of tasks and where they are suspended."""

from __future__ import annotations

import asyncio
import os
from types import FrameType
from typing import Any


def innermost_frame(task: asyncio.Future[Any], skip: tuple[str, ...] = ()) -> FrameType | None:
    """The frame of the innermost coroutine the task is suspended in.

    Frames whose file starts with a prefix in ``skip`` (asyncio's own, say)
    are passed over when a frame outside them exists.
    """
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if get_coro else None
    frame = None
    seen = 0
    while coro is not None and seen < 200:
        seen += 1
        f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if f is None:
            f = getattr(coro, "ag_frame", None)
        if f is not None and (frame is None or not f.f_code.co_filename.startswith(skip)):
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


_PKG_DIR = os.path.dirname(__file__)
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)
LIBRARY_DIRS = (_PKG_DIR, _ASYNCIO_DIR)


def task_label(task: asyncio.Future[Any], ordinal: int) -> str:
    """'#3 consumer': asyncio's default names (Task-N) count process-wide, so
    unnamed tasks are labelled by their coroutine instead (stable across runs)."""
    name = task.get_name() if hasattr(task, "get_name") else "?"
    if name.startswith("Task-") and name[5:].isdigit():
        coro = task.get_coro() if hasattr(task, "get_coro") else None
        name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None) or name
        name = name.replace(".<locals>.", ".").split(".")[-1]
    return f"#{ordinal} {name}"


def describe_task(task: asyncio.Future[Any], ordinal: int) -> str:
    """'task #3 consumer waits at app.py:12 in consumer() (in asyncio acquire()) on <Future>'."""
    user = innermost_frame(task, skip=LIBRARY_DIRS)
    inner = innermost_frame(task)
    via = ""
    if inner is not None and inner is not user:
        via = f" (in {inner.f_code.co_name}())"
    waiter = getattr(task, "_fut_waiter", None)
    on = f" on {_short(waiter)}" if waiter is not None else ""
    return f"task {task_label(task, ordinal)} waits at {where(user)}{via}{on}"


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 100 else text[:97] + "..."
