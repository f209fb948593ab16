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


def test_guided_learns_and_extends_its_corpus() -> None:
    summary = seedloop.explore(seedloop_scenarios.with_goals, range(60), strategy="guided")
    stats = summary.guided
    assert summary.seeds_run == 60 and summary.failures == 0
    assert stats.fresh_runs + stats.mutant_runs == 60
    # Every arm ran: the warm-up's random and pos, the learnt policy, and the
    # corpus-extending runs (two per entry that joined after the warm-up).
    assert set(stats.arms) == {"random", "pos", "learn", "extend"}
    assert sum(n for n, _ in stats.arms.values()) == 60
    assert stats.mutant_runs == stats.arms["extend"][0] > 0
    assert stats.corpus >= 1 and stats.features >= stats.corpus
    assert "guided:" in str(summary) and "guided runs by arm" in str(summary)
    # The goals are aggregated as for any strategy.
    assert [s.name for s in summary.unsatisfied] == ["third increment"]


def test_the_learnt_policy_avoids_what_it_has_seen() -> None:
    """Q-learning's values fall for choices taken often: over a search the
    policy's runs spread over more distinct interleavings than the same
    number of uniform runs would visit from one state."""
    import random

    from seedloop import _guided

    learner = _guided._Learner(random.Random(1))

    class _Handle:
        def __init__(self, name: str) -> None:
            self._callback = type(name, (), {"__qualname__": name})

    ready = [_Handle("a"), _Handle("b"), _Handle("c")]
    firsts = []
    for _ in range(30):
        learner._prefix, learner._last = [], None
        firsts.append(learner.choose(0, ready))
        learner.finish()
    # The choice taken first loses value each time it is taken, so all
    # three get taken.
    assert set(firsts) == {0, 1, 2}
    # A prefix is followed (clamped to the ready list) before the policy decides.
    learner._prefix = [2, 7]
    assert [learner.choose(0, ready), learner.choose(1, ready)] == [2, 2]


def test_a_chooser_decides_the_steps_and_its_choices_replay() -> None:
    """The engine hook guided runs use: the choices land in the tape, and the
    tape replays the same run."""
    scenario = _bug("lost_update")
    asked: list[int] = []

    def newest(step: int, ready: list) -> int:
        asked.append(len(ready))
        return len(ready) - 1

    def install(loop) -> None:
        loop._engine_set_chooser(newest)

    from seedloop._options import RunOptions
    from seedloop._run import run_seed

    result = run_seed(scenario, 3, RunOptions.build("test", "random", {}), instrument=install)
    assert asked and all(n >= 2 for n in asked)
    tape = list(result.tape)
    assert sum(1 for c in tape if c > 0) == len(asked)  # newest of >= 2 is never index 0
    replayed = run_seed(scenario, 3, RunOptions.build("test", "random", {}), tape=tape)
    assert replayed.fingerprint == result.fingerprint
    assert type(replayed.exception) is type(result.exception)

    def bad(step: int, ready: list) -> object:
        return "first"

    with pytest.raises(TypeError, match="step chooser must return an index"):
        run_seed(
            scenario, 3, RunOptions.build("test", "random", {}),
            instrument=lambda loop: loop._engine_set_chooser(bad),
        )


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


def test_a_guided_search_is_the_same_in_another_process() -> None:
    """The learnt policy's table is keyed by code objects (hashed by their
    strings): lookups only, so PYTHONHASHSEED changes nothing."""
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        sys.path[:0] = [sys.argv[1], sys.argv[2]]
        import corpus, seedloop
        (m,) = corpus.load(["stale_leader_write"])
        e = seedloop.explore(m.scenario, range(200), strategy="guided", shrink=False,
                             explain=False)
        print(e.failing_seeds, sorted(e.outcomes.items()), e.guided.corpus,
              e.guided.features, sorted(e.guided.arms.items()))
        """
    )
    here = Path(__file__).resolve().parent
    package_root = Path(seedloop.__file__).resolve().parent.parent
    outs = [
        subprocess.run(
            [sys.executable, "-c", code, str(here.parent / "bench"), str(here)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(package_root), "PYTHONHASHSEED": str(i)},
        ).stdout
        for i in (1, 2)
    ]
    assert outs[0] == outs[1] and "learn" in outs[0]
