"""Test-wide settings: no failure database unless a test asks for one, and seedloop loaded whole.

The suite's searches fail on purpose, and a database would run their saved
seeds first the next time, changing what later runs (and the docs' pinned
outputs) show. Tests of the database name its directory explicitly, which
overrides this.

``import seedloop`` loads its modules on first use, and pytester's in-process
runs drop every module first imported inside them when they end: a module
loaded there would be imported a second time later, with classes of its own
(a ``SimulationFailure`` that ``seedloop.SimulationFailure`` does not catch).
So the suite loads them all before any test runs, as an eager package did.
"""

from __future__ import annotations

import os

import seedloop

os.environ["SEEDLOOP_DB"] = "off"

for _name in (*seedloop.__all__, "_pytest_run"):
    getattr(seedloop, _name)
