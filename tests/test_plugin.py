"""The pytest plugin, driven through pytester as a user would meet it."""

from __future__ import annotations

import re
import sys

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


# -- an existing suite: --seedloop-all, async fixtures, what cannot be taken over --

ASYNCIO_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def run_asyncio(pytester: pytest.Pytester, mode: str, *args: str) -> pytest.RunResult:
    pytest.importorskip("pytest_asyncio")
    pytester.makeini(ASYNCIO_INI)
    return pytester.runpytest(f"--asyncio-mode={mode}", *QUIET, *args)


@pytest.mark.extra
def test_marker_added_by_a_conftest_is_honoured(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.seedloop(seeds=range(5)))
"""
    )
    pytester.makepyfile(
        test_conf="""
import asyncio
import seedloop

SEEN = []

async def test_on_seedloop():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, seedloop.SeedLoop), type(loop)
    SEEN.append(loop.seed)

def test_seen():
    assert SEEN == [0, 1, 2, 3, 4]
"""
    )
    run_asyncio(pytester, "auto").assert_outcomes(passed=2)


SUITE = """
import asyncio
import pytest
import seedloop

SEEN = []

def record(name):
    loop = asyncio.get_running_loop()
    assert isinstance(loop, seedloop.SeedLoop), type(loop)
    SEEN.append((name, loop.seed, loop.strategy))

@pytest.mark.asyncio
async def test_marked():
    await asyncio.sleep(1)
    record("marked")

class TestClass:
    @pytest.mark.asyncio
    async def test_method(self):
        record("method")

@pytest.mark.seedloop(seeds=range(2), strategy="fifo")
async def test_own_marker():
    record("own")

def test_sync():
    pass
"""


@pytest.mark.extra
@pytest.mark.parametrize("how", ["option", "ini"])
@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_seedloop_all_takes_over_every_async_test(
    pytester: pytest.Pytester, mode: str, how: str
) -> None:
    from seedloop._options import SUITE_STRATEGY

    pytester.makepyfile(
        test_suite=SUITE
        + f"""
def test_zz_seen():
    runs = lambda name: [(s, st) for n, s, st in SEEN if n == name]
    assert runs("marked") == [(s, {SUITE_STRATEGY!r}) for s in range(4)]
    assert runs("method") == [(s, {SUITE_STRATEGY!r}) for s in range(4)]
    # The marker keeps its strategy; the command line's seeds apply to every test.
    assert runs("own") == [(s, "fifo") for s in range(4)]
"""
    )
    if how == "ini":
        pytest.importorskip("pytest_asyncio")
        pytester.makeini(ASYNCIO_INI + "seedloop_all = true\n")
        result = pytester.runpytest(f"--asyncio-mode={mode}", *QUIET, "--seedloop-seeds", "4")
    else:
        result = run_asyncio(pytester, mode, "--seedloop-all", "--seedloop-seeds", "4")
    result.assert_outcomes(passed=5)
    out = result.stdout.str()
    assert "3 tests simulated (seeds 0..3, strategy" in out, out
    assert "2 tests not simulated (they ran as usual):" in out
    assert re.search(r"2  sync test", out)


@pytest.mark.extra
def test_seedloop_all_defaults_to_the_suite_seeds_and_strategy(pytester: pytest.Pytester) -> None:
    from seedloop._options import SUITE_SEEDS, SUITE_STRATEGY

    pytester.makepyfile(
        test_default=f"""
import asyncio

SEEN = []

async def test_async():
    loop = asyncio.get_running_loop()
    SEEN.append((loop.seed, loop.strategy))

def test_zz_seen():
    assert SEEN == [(s, {SUITE_STRATEGY!r}) for s in {list(SUITE_SEEDS)!r}]
"""
    )
    run_asyncio(pytester, "auto", "--seedloop-all").assert_outcomes(passed=2)
    # --seedloop-strategy opts into wider exploration.
    wide = run_asyncio(pytester, "auto", "--seedloop-all", "--seedloop-strategy", "random")
    wide.assert_outcomes(passed=1, failed=1)
    assert "'random'" in wide.stdout.str()


FIXTURES = """
import asyncio
import pytest
import pytest_asyncio
import seedloop

EVENTS = []

def seed():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, seedloop.SeedLoop), type(loop)
    return loop.seed

@pytest_asyncio.fixture
async def queue():
    q = asyncio.Queue()  # bound to the loop that runs it
    EVENTS.append(("setup", seed()))
    yield q
    await q.put("bye")
    assert await q.get() == "bye"
    EVENTS.append(("teardown", seed()))

@pytest_asyncio.fixture
async def lock():
    return asyncio.Lock()

@pytest.fixture
def wrapped(queue):  # a sync fixture that needs an async one
    return {"queue": queue}

@pytest_asyncio.fixture(autouse=True)
async def everywhere(request):
    if request.node.name == "test_zz_events":
        yield  # a sync test: pytest-asyncio runs this fixture, as usual
        return
    EVENTS.append(("auto", seed()))
    yield
    EVENTS.append(("auto-teardown", seed()))

@pytest.fixture
def plain():
    EVENTS.append(("plain", None))
    return []

@pytest.mark.seedloop(seeds=range(3))
async def test_uses_loop_bound_fixtures(queue, lock, wrapped, plain):
    async with lock:
        await queue.put(seed())
        assert await queue.get() == seed()
    assert wrapped["queue"] is queue
    plain.append(seed())

class TestInClass:
    @pytest_asyncio.fixture
    async def mine(self):
        return (self, asyncio.get_running_loop())

    @pytest.mark.seedloop(seeds=range(2))
    async def test_method(self, mine):
        assert mine[0] is self
        assert mine[1] is asyncio.get_running_loop()

def test_zz_events():
    per_seed = lambda s: [("auto", s), ("setup", s), ("teardown", s), ("auto-teardown", s)]
    # The sync fixture: once per test; the async ones: inside every seed.
    assert EVENTS[0] == ("plain", None)
    assert EVENTS[1:13] == [e for s in range(3) for e in per_seed(s)]
    assert EVENTS[13:] == [("auto", 0), ("auto-teardown", 0), ("auto", 1), ("auto-teardown", 1)]
"""


@pytest.mark.extra
@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_function_scoped_async_fixtures_run_inside_each_seed(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(test_fixtures=FIXTURES)
    result = run_asyncio(pytester, mode)
    result.assert_outcomes(passed=3)
    assert "different event loop" not in result.stdout.str()


@pytest.mark.extra
def test_a_failing_fixture_teardown_fails_that_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_teardown="""
import asyncio
import pytest

@pytest.fixture
async def resource():
    yield "r"
    await asyncio.sleep(1)
    if asyncio.get_running_loop().seed == 2:
        raise RuntimeError("teardown broke under seed 2")

@pytest.mark.seedloop(seeds=range(5))
async def test_uses(resource):
    assert resource == "r"
"""
    )
    result = run_asyncio(pytester, "auto")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "fails under seed 2" in out
    assert "RuntimeError: teardown broke under seed 2" in out
    assert "--seedloop-replay 2" in out
    assert "fixtures:    resource (set up and torn down inside each run)" in out


WIDE = """
import asyncio
import pytest
import seedloop

@pytest.fixture(scope="module")
async def conn():
    return asyncio.get_running_loop()

async def test_needs_module_fixture(conn):
    assert not isinstance(asyncio.get_running_loop(), seedloop.SeedLoop)
    assert not isinstance(conn, seedloop.SeedLoop)
"""


@pytest.mark.extra
def test_a_wider_scoped_async_fixture_keeps_the_test_off_seedloop(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_wide=WIDE)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = module\n")
    pytest.importorskip("pytest_asyncio")
    # Suite mode: it runs as usual, on pytest-asyncio's loop, and the summary says why.
    result = pytester.runpytest("--asyncio-mode=auto", *QUIET, "--seedloop-all")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "0 tests simulated" in out
    assert "async fixture 'conn' has scope 'module'" in out
    assert "test_wide.py::test_needs_module_fixture" in out


@pytest.mark.extra
def test_a_marked_test_with_a_wider_scoped_async_fixture_is_refused(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_wide=WIDE.replace("async def test_", "@pytest.mark.seedloop\nasync def test_")
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = module\n")
    pytest.importorskip("pytest_asyncio")
    result = pytester.runpytest("--asyncio-mode=auto", *QUIET)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "UnsupportedTestError: async fixture 'conn' has scope 'module'" in out
    assert "make it function-scoped" in out


@pytest.mark.extra
def test_a_suite_that_picks_its_own_loop_is_reported_not_replaced(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
import asyncio
import pytest

class Policy(asyncio.DefaultEventLoopPolicy):
    pass

@pytest.fixture(scope="session")
def event_loop_policy():
    return Policy()
"""
    )
    pytester.makepyfile(
        test_own="""
import asyncio
import seedloop

async def test_on_the_suites_loop():
    assert not isinstance(asyncio.get_running_loop(), seedloop.SeedLoop)
"""
    )
    result = run_asyncio(pytester, "auto", "--seedloop-all")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "overrides the event_loop_policy fixture" in out
    assert "test_own.py::test_on_the_suites_loop" in out


def test_no_internal_error_whatever_a_simulation_leaves_behind(pytester: pytest.Pytester) -> None:
    # Tasks whose exception was never retrieved, in reference cycles: the
    # garbage collector finalizes them, and their finalizer logs a traceback,
    # which (3.11) calls ast.parse. Run inside another ast.parse, that killed
    # the pytest session ("AST constructor recursion depth mismatch").
    pytester.makeconftest(
        """
import ast
import gc
import pytest

SOURCE = "\\n".join(
    f"def f{i}(x):\\n    return [x[{i}] + {i} * (x[0] - x[1]) for _ in range({i})]\\n"
    for i in range(6000)
)

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    if call.when != "call" or item.name != "test_later":
        return
    # A full collection while a report is built, as happens by chance in a long
    # session: pytest parses the test's module to show the failing lines.
    threshold = gc.get_threshold()
    gc.set_threshold(10, 1, 1)
    try:
        ast.parse(SOURCE)
    finally:
        gc.set_threshold(*threshold)
"""
    )
    pytester.makepyfile(
        test_left="""
import asyncio
import pytest

@pytest.mark.seedloop(seeds=range(3))
async def test_leaves_tasks_behind():
    async def boom():
        me = asyncio.current_task()  # a cycle: only the collector frees the task
        raise ValueError(f"never retrieved {me is not None}")

    for _ in range(20):
        asyncio.get_running_loop().create_task(boom())
    await asyncio.sleep(0)

def test_later():
    assert [1, 2][0] + 1 == 3
"""
    )
    result = run(pytester)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1, failed=1)


ANYIO = """
import asyncio
import anyio
import pytest
import seedloop

SEEN = []

@pytest.fixture
async def stream():
    send, receive = anyio.create_memory_object_stream(1)
    yield send, receive
    await send.aclose()
    SEEN.append(("closed", asyncio.get_running_loop().seed))

@pytest.mark.anyio
async def test_anyio(stream):
    loop = asyncio.get_running_loop()
    assert isinstance(loop, seedloop.SeedLoop), type(loop)
    send, receive = stream
    async with anyio.create_task_group() as tg:
        tg.start_soon(send.send, loop.seed)
        assert await receive.receive() == loop.seed
    SEEN.append(("ran", loop.seed))

def test_zz_seen():
    assert SEEN == [(what, s) for s in range(3) for what in ("ran", "closed")]
"""


@pytest.mark.extra
@pytest.mark.parametrize("backend", ["parametrized", "a conftest fixture"])
def test_anyio_asyncio_backend_runs_on_seedloop(pytester: pytest.Pytester, backend: str) -> None:
    pytest.importorskip("anyio")
    if backend == "a conftest fixture":
        pytester.makeconftest(
            """
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""
        )
    pytester.makepyfile(test_any=ANYIO)
    result = run(pytester, "--seedloop-all", "--seedloop-seeds", "3")
    result.assert_outcomes(passed=2)
    assert "1 tests simulated" in result.stdout.str()


def test_which_anyio_backends_seedloop_takes_over() -> None:
    from seedloop._pytest_suite import anyio_backend_reason

    assert anyio_backend_reason("asyncio") is None
    assert anyio_backend_reason(("asyncio", {"debug": True})) is None
    assert anyio_backend_reason("trio") == "runs on anyio's 'trio' backend"
    assert "use_uvloop" in str(anyio_backend_reason(("asyncio", {"use_uvloop": True})))


@pytest.mark.extra
def test_a_suite_with_loop_factories_is_reported_not_replaced(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import asyncio

class Custom(asyncio.SelectorEventLoop):
    pass

def pytest_asyncio_loop_factories(config, item):
    return {"custom": Custom}
"""
    )
    pytester.makepyfile(
        test_factories="""
import asyncio
import pytest

@pytest.mark.asyncio
async def test_on_the_custom_loop():
    assert type(asyncio.get_running_loop()).__name__ == "Custom"
"""
    )
    result = run_asyncio(pytester, "strict", "--seedloop-all")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "its loop comes from a pytest_asyncio_loop_factories hook" in out


LOADED = """
import sys

def pytest_sessionfinish(session):
    loaded = sorted(m for m in sys.modules if m.startswith("seedloop"))
    print("\\nseedloop modules:", " ".join(loaded))
"""


@pytest.mark.parametrize("with_seedloop_test", [False, True])
def test_a_session_loads_the_engine_only_to_run_a_seedloop_test(
    pytester: pytest.Pytester, with_seedloop_test: bool
) -> None:
    """Installed, the plugin is imported by every pytest session: one without a
    seedloop test must not pay for the loop, the world and the search."""
    pytester.makeconftest(LOADED)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    if with_seedloop_test:
        pytester.makepyfile(test_race=RACE + "\n@pytest.mark.seedloop(seeds=range(300))\n"
                            "async def test_race():\n    await race()\n")
    result = pytester.runpytest_subprocess("-p", "no:asyncio", *QUIET, "-s")
    result.assert_outcomes(passed=1, failed=int(with_seedloop_test))
    line = next(x for x in result.outlines if x.startswith("seedloop modules:"))
    loaded = set(line.split()[2:])
    assert "seedloop.pytest_plugin" in loaded
    heavy = {"seedloop._pytest_run", "seedloop._search", "seedloop._run", "seedloop._loop"}
    assert (heavy <= loaded) if with_seedloop_test else not (heavy & loaded), loaded


# -- unittest.IsolatedAsyncioTestCase ---------------------------------------------

ISOLATED = """
import asyncio
import unittest

import seedloop

LOOPS = []


class Cases(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        LOOPS.append(asyncio.get_running_loop())
        self.state = {"ready": False}

    async def test_timer_race(self):
        async def producer():
            await asyncio.sleep(0.001)
            self.state["ready"] = True

        async def consumer():
            await asyncio.sleep(0.0011)  # 100 us later: CPU time can close the gap
            self.assertTrue(self.state["ready"], "consumer woke before the producer")

        await asyncio.gather(producer(), consumer())

    async def test_on_a_fresh_seedloop_each_seed(self):
        await asyncio.sleep(3600)  # virtual time: instant
        loop = asyncio.get_running_loop()
        self.assertIsInstance(loop, seedloop.SeedLoop)
        self.assertEqual(len(set(map(id, LOOPS))), len(LOOPS))

    async def test_cleanups_and_subtests(self):
        done = []

        async def cleanup():
            done.append(asyncio.get_running_loop())

        self.addAsyncCleanup(cleanup)
        for i in range(3):
            with self.subTest(i=i):
                await asyncio.sleep(0)

    @unittest.expectedFailure
    async def test_expected_failure(self):
        raise ValueError("expected")

    @unittest.skip("skipped")
    async def test_skipped(self):
        raise AssertionError("never runs")


class OwnLoop(unittest.IsolatedAsyncioTestCase):
    loop_factory = asyncio.SelectorEventLoop  # 3.13: the class picks its loop

    async def test_own(self):
        pass
"""


def test_isolated_asyncio_test_cases_run_under_every_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cases=ISOLATED)
    result = run(pytester, "--seedloop-all", "--seedloop-seeds", "0:40", "-rA")
    result.assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1)
    out = result.stdout.str()
    # The timer race: CPU time per callback can put the consumer's deadline first.
    assert "FAILED test_cases.py::Cases::test_timer_race" in out
    assert "consumer woke before the producer" in out
    seed = int(re.search(r"seed:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    # Its replay line names --seedloop-all: without it the test runs on unittest's loop.
    command = f"pytest test_cases.py::Cases::test_timer_race --seedloop-all --seedloop-replay {seed}"
    assert command in out
    # (3.13's loop_factory picks the class's own loop; before 3.13 unittest ignores it.)
    own_loop = sys.version_info >= (3, 13)
    assert ("its IsolatedAsyncioTestCase sets loop_factory" in out) == own_loop
    assert f"{5 - own_loop} tests simulated" in out  # the skip decorator's wrapper is sync
    replay = run(pytester, *command.split()[1:])
    replay.assert_outcomes(failed=1)
    assert "consumer woke before the producer" in replay.stdout.str()
    # Stock unittest, no seedloop: what does not sleep an hour or need a SeedLoop passes.
    stock = pytester.runpytest("-p", "no:seedloop", *QUIET, "-p", "no:asyncio", "-k", "not fresh")
    stock.assert_outcomes(passed=3, skipped=1, xfailed=1, deselected=1)


# -- suite mode: every function-scoped fixture is fresh for each seed -------------

PER_SEED = """
import asyncio
import logging
import socket

import pytest

SEEDS = []


@pytest.fixture
def calls():
    return []


@pytest.fixture
def free_port():
    # A sync fixture's own code reaches the real world, as it does outside seedloop.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def resource():
    return {"opened": 1}


@pytest.fixture
def chosen(request):
    return request.getfixturevalue("resource")


async def test_fresh_values(calls, tmp_path, caplog, free_port, chosen):
    SEEDS.append(1)
    calls.append(1)
    with open(tmp_path / "log", "a") as f:
        f.write("x")
    logging.getLogger("t").warning("seen")
    await asyncio.sleep(0)
    assert calls == [1]
    assert (tmp_path / "log").read_text() == "x"
    assert [r.getMessage() for r in caplog.records] == ["seen"]
    assert free_port > 0 and chosen == {"opened": 1}


def test_every_seed_ran():
    assert len(SEEDS) == 5
"""


def test_suite_mode_gives_each_seed_fresh_function_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fresh=PER_SEED)
    result = run_asyncio(pytester, "auto", "--seedloop-all", "--seedloop-seeds", "5")
    result.assert_outcomes(passed=2)


def test_pytest_skip_and_xfail_inside_a_simulated_test_are_its_outcome(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_skips="""
import asyncio
import pytest

@pytest.mark.seedloop(seeds=range(5))
async def test_skips():
    await asyncio.sleep(0)
    pytest.skip("not on this platform")

@pytest.mark.seedloop(seeds=range(5))
async def test_needs_a_missing_module():
    await asyncio.sleep(0)
    pytest.importorskip("no_such_module_anywhere")

@pytest.mark.seedloop(seeds=range(5))
async def test_xfails():
    await asyncio.sleep(0)
    pytest.xfail("known bug")
"""
    )
    result = run(pytester, "-rsx")
    result.assert_outcomes(skipped=2, xfailed=1)
    out = result.stdout.str()
    assert "not on this platform" in out and "known bug" in out
    assert "SimulationFailure" not in out
