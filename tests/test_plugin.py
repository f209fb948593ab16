"""The pytest plugin, driven through pytester as a user would meet it."""

from __future__ import annotations

import re

import pytest

from seedloop import DEFAULT_STRATEGY

pytest_plugins = ["pytester"]

RACE = """
import asyncio
import pytest
import seedloop

RUNS = []

async def race():
    state = {"ready": False}

    async def producer():
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer():
        await asyncio.sleep(0)
        assert state["ready"], "consumer ran before producer was ready"

    await asyncio.gather(producer(), consumer())
"""


# Other installed plugins that only slow each inner session down.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:xdist", "-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:asyncio", *QUIET, *args)


def _seed_from(output: str) -> int:
    match = re.search(r"--seedloop-replay (\d+)", output)
    assert match, output
    return int(match.group(1))


def test_marker_finds_the_race_and_reports_how_to_replay(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_race=RACE
        + """
@pytest.mark.seedloop(seeds=range(200))
async def test_race():
    await race()
"""
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "SimulationFailure" in out
    assert "consumer ran before producer was ready" in out
    assert "seedloop" in out and "seed:" in out and f"strategy:    {DEFAULT_STRATEGY}" in out
    seed = _seed_from(out)
    assert "pytest test_race.py::test_race --seedloop-replay" in out
    assert f"seedloop.run(test_race, seed={seed}, strategy={DEFAULT_STRATEGY!r})" in out
    # The failing interleaving, step by step, and the minimal schedule.
    assert "timeline:" in out and "consumer()" in out
    assert "schedule:    seedloop.replay(test_race, [" in out
    # The smallest failing seed of the range, as find_failing_seed would say.
    import seedloop

    ns: dict = {}
    exec(compile(RACE, "race", "exec"), ns)
    assert seedloop.find_failing_seed(ns["race"], range(200)).seed == seed

    # The replay command reruns exactly that seed and fails with the test's own error.
    replay = run(pytester, "--seedloop-replay", str(seed))
    replay.assert_outcomes(failed=1)
    rout = replay.stdout.str()
    assert "AssertionError: consumer ran before producer was ready" in rout
    assert "SimulationFailure" not in rout
    assert "seeds run:   1 " in rout


def test_command_line_seeds_and_strategy_beat_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_race=RACE
        + """
SEEN = []

@pytest.mark.seedloop(seeds=range(5))
async def test_count():
    SEEN.append(seedloop.SeedLoop and asyncio.get_running_loop().seed)

def test_seen_count():
    assert SEEN == list(range(3, 10))

# fifo is asyncio's own order: the race never shows.

@pytest.mark.seedloop(seeds=range(500), strategy="shuffle")
async def test_race_under_fifo():
    await race()
"""
    )
    result = run(pytester, "--seedloop-seeds", "3:10", "--seedloop-strategy", "fifo")
    result.assert_outcomes(passed=3)


def test_fixtures_reach_every_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fix="""
import asyncio
import pytest

CALLS = []

@pytest.fixture
def box():
    CALLS.append("setup")
    return {"n": 0}

@pytest.mark.seedloop(seeds=range(10))
async def test_uses_fixture(box, tmp_path):
    box["n"] += 1
    await asyncio.sleep(10)  # virtual time: instant
    assert tmp_path.exists()

class TestInClass:
    @pytest.mark.seedloop(seeds=range(3))
    async def test_method(self, box):
        assert isinstance(self, TestInClass)
        await asyncio.sleep(0)

def test_fixture_was_set_up_once_per_test():
    assert CALLS == ["setup", "setup"]
"""
    )
    result = run(pytester, "-q")
    result.assert_outcomes(passed=3)


def test_simulate_decorator_gets_the_options_and_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sim=RACE
        + """
@seedloop.simulate(seeds=range(1))
async def test_sim():
    await race()
"""
    )
    # seed 0 alone passes; the command line widens the search to find the race.
    run(pytester).assert_outcomes(passed=1)
    wide = run(pytester, "--seedloop-seeds", "200")
    wide.assert_outcomes(failed=1)
    out = wide.stdout.str()
    assert "--seedloop-replay" in out and "consumer ran before producer" in out
    # The report's python line reruns the one failing seed, not the decorated seed list.
    seed = _seed_from(out)
    python_line = re.search(r"python: +(.*)", out).group(1)
    assert python_line == f"seedloop.run(test_sim.__wrapped__, seed={seed}, strategy={DEFAULT_STRATEGY!r})"
    namespace: dict = {}
    exec(compile((pytester.path / "test_sim.py").read_text(), "test_sim.py", "exec"), namespace)
    with pytest.raises(AssertionError, match="consumer ran before producer"):
        eval(python_line, namespace)


def test_marker_fail_if_fails_a_test_on_its_return_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_value="""
import asyncio
import pytest

@pytest.mark.seedloop(seeds=range(100), fail_if="result == 'MISSED'")
async def test_value():
    state = {"ready": False}

    async def producer():
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer():
        await asyncio.sleep(0)
        return "ok" if state["ready"] else "MISSED"

    return (await asyncio.gather(producer(), consumer()))[1]
"""
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the scenario returned 'MISSED'" in out
    seed = _seed_from(out)
    assert f"seedloop.run(test_value, seed={seed}, strategy={DEFAULT_STRATEGY!r}, fail_if=" in out
    run(pytester, "--seedloop-replay", str(seed)).assert_outcomes(failed=1)


def test_simulate_outside_pytest_names_a_replay_that_runs_one_seed() -> None:
    import seedloop

    namespace: dict = {"seedloop": seedloop}
    exec(compile(RACE, "race", "exec"), namespace)

    @seedloop.simulate(seeds=range(200))
    async def test_sim():
        await namespace["race"]()

    with pytest.raises(seedloop.SimulationFailure) as info:
        test_sim()
    command = info.value.failure.replay_command
    assert command.startswith("seedloop.run(test_simulate_outside_pytest_names_a_replay_that_runs_one_seed.<locals>.test_sim.__wrapped__, seed=")
    with pytest.raises(AssertionError, match="consumer ran before producer"):
        seedloop.run(test_sim.__wrapped__, seed=info.value.failure.seed)


def test_pct_failure_replays_with_the_same_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pct=RACE
        + """
@pytest.mark.seedloop(seeds=range(300), strategy="pct", depth=2)
async def test_pct():
    await race()
"""
    )
    first = run(pytester)
    first.assert_outcomes(failed=1)
    seed = _seed_from(first.stdout.str())
    assert "--seedloop-strategy pct" in first.stdout.str()
    replay = run(pytester, "--seedloop-replay", str(seed), "--seedloop-strategy", "pct")
    replay.assert_outcomes(failed=1)
    assert "consumer ran before producer was ready" in replay.stdout.str()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seedloop-seeds", "ten"], "cannot read seeds 'ten'"),
        (["--seedloop-seeds", "5:2"], "is empty"),
        (["--seedloop-strategy", "chaos"], "choose one of"),
        (["--seedloop-replay", "x"], "takes one seed"),
    ],
)
def test_bad_options_say_what_to_write(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_marker_on_a_sync_test_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sync="""
import pytest

@pytest.mark.seedloop(seeds=range(3))
def test_sync():
    pass
"""
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "goes on 'async def' tests" in result.stdout.str()


def test_module_marker_covers_async_tests_and_parametrize(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mod="""
import asyncio
import pytest

pytestmark = pytest.mark.seedloop(seeds=range(4))
SEEN = []

def test_sync_test_is_left_alone():
    assert True

@pytest.mark.parametrize("n", [1, 3])
async def test_param(n):
    await asyncio.sleep(n)
    SEEN.append((n, asyncio.get_running_loop().seed))

def test_zz_seen():
    assert SEEN == [(1, s) for s in range(4)] + [(3, s) for s in range(4)]
"""
    )
    run(pytester).assert_outcomes(passed=4)


ASYNCIO_MIX = """
import asyncio
import pytest
import seedloop

LOOPS = []

@pytest.mark.seedloop(seeds=range(20))
async def test_on_seedloop():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, seedloop.SeedLoop), type(loop)
    await asyncio.sleep(3600)
    LOOPS.append(loop.seed)

@pytest.mark.asyncio
async def test_on_pytest_asyncio():
    loop = asyncio.get_running_loop()
    assert not isinstance(loop, seedloop.SeedLoop)
    await asyncio.sleep(0)

def test_all_seeds_ran():
    assert LOOPS == list(range(20))
"""


@pytest.mark.extra
@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_coexists_with_pytest_asyncio(pytester: pytest.Pytester, mode: str) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makepyfile(test_mix=ASYNCIO_MIX)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest(f"--asyncio-mode={mode}", *QUIET)
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    for sign_of_trouble in ("never awaited", "not an async function", "not natively supported"):
        assert sign_of_trouble not in out


@pytest.mark.extra
def test_pytest_asyncio_auto_mode_failure_is_still_reported_by_seedloop(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makepyfile(
        test_race=RACE
        + """
@pytest.mark.seedloop(seeds=range(100))
async def test_race():
    await race()
"""
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest("--asyncio-mode=auto", *QUIET)
    result.assert_outcomes(failed=1)
    assert "--seedloop-replay" in result.stdout.str()


@pytest.mark.extra
def test_runs_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_dist=RACE
        + """
@pytest.mark.seedloop(seeds=range(50))
async def test_ok():
    await asyncio.sleep(1)

@pytest.mark.seedloop(seeds=range(200))
async def test_race():
    await race()

@seedloop.simulate(seeds=range(30))
async def test_simulated():
    await asyncio.sleep(0)
"""
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:asyncio", "-p", "no:hypothesispytest"
    )
    result.assert_outcomes(passed=2, failed=1)
    assert "--seedloop-replay" in result.stdout.str()
