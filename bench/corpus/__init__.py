"""seedloop's own corpus of asyncio concurrency bugs.

One module per bug. Each exposes ``async def scenario()`` that raises (an
AssertionError, or seedloop's DeadlockError when it hangs) only when the bug
manifests, plus metadata: ``KIND`` (bug class), ``DEPTH`` (the number of
ordering constraints the failing interleaving needs, in the PCT sense: a
preemption at an ``await`` that does not block counts as one), ``TASKS``
(tasks involved, noise included) and optionally ``MIN_PYTHON``.

Every scenario passes under stock asyncio order (``strategy="fifo"``): these
are bugs a plain ``asyncio.run`` test suite never sees.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType

__all__ = ["load"]


def load(names: list[str] | None = None) -> list[ModuleType]:
    """The corpus modules (sorted by name), skipping those this Python cannot run."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    if names:
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise SystemExit(f"unknown corpus bug(s): {', '.join(unknown)}")
        found = [n for n in found if n in names]
    modules = []
    for name in found:
        min_py = _min_python(name)
        if sys.version_info < min_py:
            continue
        modules.append(importlib.import_module(f"{__name__}.{name}"))
    return modules


def _min_python(name: str) -> tuple[int, int]:
    # Read MIN_PYTHON without importing (the module may use newer syntax).
    spec = importlib.util.find_spec(f"{__name__}.{name}")
    assert spec is not None and spec.origin is not None
    with open(spec.origin, encoding="utf-8") as f:
        for line in f:
            if line.startswith("MIN_PYTHON"):
                major, minor = line.split("=", 1)[1].strip(" ()\n").split(",")
                return int(major), int(minor)
    return (3, 10)
