"""The failure report names the race: the state read before and written after the
decisive switch, with both lines and tasks (attribute, dict item, global)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

import seedloop
from seedloop import _investigate as investigate
from seedloop import _race


def _line(text: str) -> int:
    """The line of this file that contains ``text`` (once)."""
    lines = Path(__file__).read_text().splitlines()
    (found,) = [i for i, line in enumerate(lines, 1) if text in line]
    return found


class Counter:
    def __init__(self) -> None:
        self.value = 0


async def io(round_trips: int) -> None:
    for _ in range(round_trips):
        await asyncio.sleep(0)


# Each scenario passes in asyncio's own order (the later caller is still doing
# its I/O when the first one finishes): only a reordering makes it fail.


async def attribute_race() -> None:
    counter = Counter()

    async def bump(round_trips: int) -> None:
        await io(round_trips)
        seen = counter.value  # READ-ATTR
        await asyncio.sleep(0)
        counter.value = seen + 1  # WRITE-ATTR

    await asyncio.gather(bump(0), bump(3))
    assert counter.value == 2, f"lost update: {counter.value}"


async def item_race() -> None:
    stock = {"apples": 0, "pears": 0}

    async def restock(n: int, round_trips: int) -> None:
        await io(round_trips)
        stock["pears"] += 0  # an access to another key: not the race
        have = stock["apples"]  # READ-ITEM
        await asyncio.sleep(0)
        stock["apples"] = have + n  # WRITE-ITEM

    await asyncio.gather(restock(1, 0), restock(2, 3))
    assert stock["apples"] == 3, f"lost update: {stock}"


TOTAL = 0


async def global_race() -> None:
    global TOTAL
    TOTAL = 0

    async def add(n: int, round_trips: int) -> None:
        global TOTAL
        await io(round_trips)
        before = TOTAL  # READ-GLOBAL
        await asyncio.sleep(0)
        TOTAL = before + n  # WRITE-GLOBAL

    await asyncio.gather(add(1, 0), add(10, 3), add(100, 6))
    assert TOTAL == 111, f"lost update: {TOTAL}"


@pytest.fixture(autouse=True)
def _quiet():
    # Failing runs log "Exception in callback": expected here.
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.mark.parametrize(
    ("scenario", "kind", "location", "tag"),
    [
        (attribute_race, "attribute", "Counter.value", "ATTR"),
        (item_race, "item", "stock['apples']", "ITEM"),
        (global_race, "global", "TOTAL (module test_race_report)", "GLOBAL"),
    ],
)
def test_the_report_names_the_raced_state_and_both_lines(scenario, kind, location, tag) -> None:
    assert seedloop.find_failing_seed(scenario, range(1), strategy="fifo") is None
    failure = seedloop.find_failing_seed(scenario, range(200), strategy="random")
    assert failure is not None
    assert failure.shrunk_tape and any(failure.shrunk_tape)  # it depends on a reordering
    race = failure.race
    assert race is not None, failure.report()
    assert (race.kind, race.location) == (kind, location)
    assert race.read.line == _line(f"# READ-{tag}")
    assert race.write.line == _line(f"# WRITE-{tag}")
    assert race.read.file == __file__ and race.write.file == __file__
    assert race.read.task != race.write.task
    assert race.read.step < race.write.step
    # The reader then wrote back what it read before the other task's write.
    assert race.overwrite is not None and race.overwrite.task == race.read.task
    assert race.overwrite.line == _line(f"# WRITE-{tag}")
    text = failure.report()
    assert f"race on {kind} {location}" in text
    assert f"test_race_report.py:{_line(f'# READ-{tag}')}" in text
    assert f"test_race_report.py:{_line(f'# WRITE-{tag}')}" in text
    assert "# READ-" in text  # the source line itself


def test_the_search_runs_untraced() -> None:
    """Tracing is for explaining one failure: searches leave no tracer behind."""
    before = sys.gettrace()
    assert seedloop.find_failing_seed(attribute_race, range(50), explain=False) is not None
    assert sys.gettrace() is before
    failure = seedloop.find_failing_seed(attribute_race, range(50))
    assert failure is not None and failure.race is not None
    assert sys.gettrace() is before
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        assert all(monitoring.get_tool(i) != "seedloop race explainer" for i in range(6))


async def stock_order_lost_update() -> None:
    account = Counter()

    async def deposit() -> None:
        seen = account.value
        await asyncio.sleep(0)
        account.value = seen + 1

    await asyncio.gather(deposit(), deposit())
    assert account.value == 2


def test_a_lost_update_in_stock_order_is_named_too() -> None:
    failure = seedloop.find_failing_seed(stock_order_lost_update, range(1), strategy="fifo")
    assert failure is not None and failure.race is not None
    assert failure.race.location == "Counter.value" and failure.race.switch_step is None
    assert failure.race.overwrite is not None


def test_failures_in_stock_order_name_no_race() -> None:
    async def plain() -> None:
        await asyncio.sleep(0)
        raise ValueError("always")

    failure = seedloop.find_failing_seed(plain, range(3))
    assert failure is not None and failure.race is None
    assert "race on" not in failure.report()


def test_find_race_prefers_the_lost_update_across_the_switch() -> None:
    def access(step: int, task: str, write: bool, line: int) -> _race.Access:
        return _race.Access(step, task, write, __file__, line)

    key = ("attr", 1, "x")
    accesses = [
        (key, "attribute", "A.x", access(1, "#2", False, 10)),
        (key, "attribute", "A.x", access(2, "#3", False, 10)),
        (key, "attribute", "A.x", access(3, "#3", True, 11)),
        (key, "attribute", "A.x", access(4, "#2", True, 11)),
        (("attr", 2, "y"), "attribute", "A.y", access(2, "#3", True, 12)),
    ]
    race = _race.find_race(accesses, decisive=[2])
    assert race is not None
    assert (race.read.step, race.write.step, race.switch_step) == (1, 3, 2)
    assert race.overwrite is not None and race.overwrite.step == 4
    assert "decisive switch: step 2" in str(race)
    assert _race.find_race(accesses[:1] + accesses[4:], decisive=[2]) is None


def test_seedloops_own_files_are_never_user_code_wherever_it_is_installed() -> None:
    # Installed as a wheel, seedloop lives in site-packages beside the libraries under
    # test: its own recorder must still not be taken for the code that raced.
    assert not _race._user_file(investigate.__file__)
    assert not _race._user_file(asyncio.tasks.__file__)
    assert _race._user_file(__file__)
