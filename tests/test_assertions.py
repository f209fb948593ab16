"""always / sometimes / reachable / unreachable: runs fail on broken properties, and
explorations report the goals no run satisfied, through every entry point."""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from pathlib import Path

import pytest

import seedloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seedloop_scenarios  # noqa: E402

pytest_plugins = ["pytester"]


def _names(sites: list[seedloop.Site]) -> list[tuple[str, str]]:
    return [(s.kind, s.name) for s in sites]


def test_outside_a_run_always_raises_and_sometimes_costs_nothing() -> None:
    seedloop.always(True, "fine")
    seedloop.sometimes(False, "ignored")
    seedloop.reachable("ignored")
    with pytest.raises(seedloop.AlwaysViolated, match="'positive' was violated at test_assertions.py"):
        seedloop.always(0, "positive")
    with pytest.raises(seedloop.UnreachableReached) as info:
        seedloop.unreachable("dead branch")
    assert isinstance(info.value, AssertionError)
    assert info.value.name == "dead branch" and info.value.file == __file__


async def _swallows_violation() -> None:
    async def child() -> None:
        seedloop.always(False, "invariant")

    try:
        await asyncio.gather(child())
    except AssertionError:
        pass  # the code under test hides it: the run must fail all the same


def test_a_swallowed_violation_still_fails_the_run() -> None:
    failure = seedloop.find_failing_seed(_swallows_violation, range(3), shrink=False, explain=False)
    assert failure is not None and failure.seed == 0
    assert isinstance(failure.exception, seedloop.AlwaysViolated)
    assert failure.exception.kind == "always" and failure.exception.name == "invariant"


def test_a_run_records_its_sites() -> None:
    result = seedloop.execute(seedloop_scenarios.with_goals, 0, "fifo")
    by_name = {key[1]: stats for key, stats in result.assertions.items()}
    assert by_name["overlap"] == [2, 1]  # evaluated by both workers, held once
    assert by_name["done"] == [1, 1]
    assert by_name["third increment"] == [1, 0]
    assert by_name["at most two increments"] == [2, 2]
    assert all(key[2] == seedloop_scenarios.__file__ for key in result.assertions)


def test_exploration_lists_the_goals_never_satisfied() -> None:
    summary = seedloop.explore(seedloop_scenarios.with_goals, range(20), strategy="random")
    assert summary.failures == 0
    assert _names(summary.unsatisfied) == [("sometimes", "third increment")]
    (site,) = summary.unsatisfied
    assert site.evaluations == 20 and site.satisfied == 0
    assert "never satisfied" in str(summary) and "'third increment' at seedloop_scenarios.py" in str(
        summary
    )
    # Every site is known, satisfied or not, with totals over all runs.
    done = next(s for s in summary.assertions.values() if s.name == "done")
    assert (done.evaluations, done.satisfied) == (20, 20)


def test_workers_merge_to_the_serial_answer() -> None:
    serial = seedloop.explore(seedloop_scenarios.with_goals, range(40), strategy="random")
    parallel = seedloop.explore(
        seedloop_scenarios.with_goals, range(40), strategy="random", jobs=2
    )
    assert parallel.assertions == serial.assertions
    assert list(parallel.assertions) == list(serial.assertions)  # the same order, too


def test_declared_sites_that_never_ran_are_reported() -> None:
    path = seedloop_scenarios.__file__
    line = next(
        i
        for i, text in enumerate(Path(path).read_text().splitlines(), 1)
        if 'reachable("retry")' in text
    )
    seedloop.expect("reachable", "retry", path, line)
    try:
        summary = seedloop.explore(seedloop_scenarios.with_goals, range(5), strategy="random")
        assert ("reachable", "retry") in _names(summary.unsatisfied)
        assert "reachable 'retry' at seedloop_scenarios.py" in str(summary)
        assert "never evaluated" in str(summary)
    finally:
        seedloop._assertions._expected.clear()


def test_searches_without_failure_warn_about_unmet_goals() -> None:
    with pytest.warns(seedloop.errors.NeverSatisfiedWarning, match="third increment"):
        assert seedloop.find_failing_seed(seedloop_scenarios.with_goals, range(5)) is None
    with pytest.warns(seedloop.errors.NeverSatisfiedWarning, match="third increment"):
        assert (
            seedloop.find_seed_where(seedloop_scenarios.with_goals, lambda n: n != 2, range(5))
            is None
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Every goal met: no warning.
        seedloop.find_failing_seed(seedloop_scenarios.race, range(1), strategy="fifo")


@pytest.mark.extra  # the command line needs click and rich (requirements-dev.txt)
def test_cli_and_html_show_the_goals_never_satisfied(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from seedloop._cli import cli

    monkeypatch.chdir(Path(__file__).parent)
    monkeypatch.setenv("COLUMNS", "200")
    html, summary = tmp_path / "r.html", tmp_path / "s.json"
    result = CliRunner().invoke(
        cli,
        ["explore", "seedloop_scenarios:with_goals", "--seeds", "0:10", "--jobs", "1",
         "--html", str(html), "--json", str(summary)],
    )
    assert result.exit_code == 0, result.output
    assert "never satisfied" in result.output and "third increment" in result.output
    assert "seedloop_scenarios.py" in result.output
    page = html.read_text()
    assert "Never satisfied" in page and "third increment" in page
    data = json.loads(summary.read_text())
    assert [s["name"] for s in data["never_satisfied"]] == ["third increment"]


def test_pytest_report_lists_the_goals_never_satisfied(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_goals="""
import asyncio
import pytest
import seedloop

@pytest.mark.seedloop(seeds=range(5))
async def test_goal():
    await asyncio.sleep(0)
    seedloop.sometimes(False, "cache miss path")
"""
    )
    result = pytester.runpytest(
        "-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:xdist", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "seedloop: never satisfied" in out
    assert "test_goals.py::test_goal" in out and "'cache miss path' at test_goals.py:8" in out
