"""seedloop's pytest plugin (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "seedloop(seeds=..., strategy=...): run an async test under many seeds on a SeedLoop",
    )
