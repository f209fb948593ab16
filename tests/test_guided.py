"""strategy="guided": a coverage-guided search over decision tapes, deterministic for its seeds."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

import seedloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
import seedloop_scenarios  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    # Failing runs log "Exception in callback": expected here.
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def _bug(name: str):
    (module,) = corpus.load([name])
    return module.scenario


def test_guided_finds_a_corpus_bug_and_the_failure_replays() -> None:
    scenario = _bug("lost_update")
    failure = seedloop.find_failing_seed(scenario, range(300), strategy="guided")
    assert failure is not None and failure.strategy == "guided"
    assert failure.replay_command.startswith("seedloop.replay(scenario, [")
    with pytest.raises(AssertionError, match="lost update"):
        seedloop.replay(scenario, list(failure.tape), seed=failure.seed)
    with pytest.raises(AssertionError, match="lost update"):
        seedloop.replay(scenario, failure)  # its shrunk tape
    assert failure.race is not None and failure.race.location == "Account.balance"


def test_guided_is_a_function_of_its_seeds() -> None:
    scenario = _bug("oversell_three_buyers")
    first = seedloop.explore(scenario, range(100, 400), strategy="guided", shrink=False)
    second = seedloop.explore(scenario, range(100, 400), strategy="guided", shrink=False)
    assert first.failure_index == second.failure_index
    assert first.failing_seeds == second.failing_seeds
    assert first.outcomes == second.outcomes
    assert (first.guided.corpus, first.guided.features) == (
        second.guided.corpus,
        second.guided.features,
    )
    other = seedloop.explore(scenario, range(500, 800), strategy="guided", shrink=False)
    assert other.failing_seeds != first.failing_seeds  # another seed range, another search


def test_guided_learns_and_mutates() -> None:
    summary = seedloop.explore(seedloop_scenarios.with_goals, range(60), strategy="guided")
    stats = summary.guided
    assert summary.seeds_run == 60 and summary.failures == 0
    assert stats.fresh_runs + stats.mutant_runs == 60 and stats.mutant_runs > 20
    assert stats.corpus >= 1 and stats.features >= stats.corpus
    assert "guided:" in str(summary) and "coverage feature(s)" in str(summary)
    # The goals are aggregated as for any strategy.
    assert [s.name for s in summary.unsatisfied] == ["third increment"]


def test_guided_stops_at_the_first_failure_when_asked() -> None:
    scenario = _bug("lost_update")
    summary = seedloop.explore(
        scenario, range(1000), strategy="guided", stop_on_failure=True, explain=False
    )
    assert summary.stopped_early and summary.failures == 1
    assert summary.seeds_run == summary.failure_index + 1
    assert summary.failure is not None and summary.failure.seed == summary.failing_seeds[0][1]


@pytest.mark.extra  # the command line needs click and rich (requirements-dev.txt)
def test_cli_explores_guided(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from seedloop._cli import cli

    monkeypatch.chdir(Path(__file__).parent)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(
        cli,
        ["explore", "seedloop_scenarios:lost_update", "--seeds", "0:300", "--strategy", "guided",
         "--no-progress"],
    )
    assert result.exit_code == 1, result.output
    assert "seedloop.replay(lost_update, [" in result.output


def test_guided_refuses_what_it_cannot_honour() -> None:
    scenario = _bug("lost_update")
    with pytest.raises(seedloop.InvalidOptionError, match="shard"):
        seedloop.explore(scenario, range(10), strategy="guided", shard=(0, 2))
    with pytest.raises(seedloop.InvalidStrategyError):
        seedloop.run(scenario, strategy="guided")  # a single run has no corpus to learn from


def test_mutations_stay_valid_for_any_corpus() -> None:
    """Tapes longer or shorter than their recorded ready counts (splices) mutate safely."""
    from seedloop import _engine, _guided

    search = _guided._Search(_engine.Rng(7, "test"))
    search.corpus = [
        _guided._Entry([0, 1, 2, 0, 1, 0, 0, 3, 1], [1, 2, 3, 1, 2], gain=3, frontier=2),
        _guided._Entry([1, 0], [2, 2, 2, 4, 1, 1, 3], gain=1, frontier=6),
        _guided._Entry([], [], gain=1),
    ]
    for _ in range(500):
        tape = search.mutate()
        assert all(isinstance(c, int) and c >= 0 for c in tape)
