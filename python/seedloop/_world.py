"""The deterministic world inside a run (time, randomness, executors).

Installed around every simulated run and restored exactly afterwards, also
when the run raises.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

from . import _engine


@contextmanager
def installed(loop: object, seed: int) -> Iterator[None]:
    """Seed the global ``random`` module from ``seed`` for the duration of a run."""
    saved = random.getstate()
    random.seed(_engine.derive_seed(seed, "random"))
    try:
        yield
    finally:
        random.setstate(saved)
