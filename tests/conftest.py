"""Test-wide settings: no failure database unless a test asks for one.

The suite's searches fail on purpose, and a database would run their saved
seeds first the next time, changing what later runs (and the docs' pinned
outputs) show. Tests of the database name its directory explicitly, which
overrides this.
"""

from __future__ import annotations

import os

os.environ["SEEDLOOP_DB"] = "off"
