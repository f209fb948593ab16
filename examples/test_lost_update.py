"""The guide's test: python -m pytest examples/test_lost_update.py (it fails: the bug is there)."""

import pytest
from lost_update import buggy  # pytest puts this file's folder, examples/, on sys.path


@pytest.mark.seedloop(seeds=range(2000))
async def test_no_lost_update():
    await buggy()
