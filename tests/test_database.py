"""The failure database: saved on failure, replayed first, dropped when fixed, plain data only."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import seedloop
from seedloop import Failure, SeedloopError, SeedloopWarning
from seedloop._database import FORMAT, FailureDatabase, Key, database_at, explore_saved_first

pytest_plugins = ["pytester"]

PYTHON_DIR = Path(seedloop.__file__).resolve().parent.parent
BAD_SEED = 777

#: Seeds the scenarios below ran, in order (runs are in this process: jobs=1).
RAN: list[int] = []
BROKEN = [True]


async def fails_at_777() -> None:
    seed = asyncio.get_running_loop().seed
    RAN.append(seed)
    await asyncio.sleep(0)
    if BROKEN[0] and seed == BAD_SEED:
        raise AssertionError(f"bad seed {seed}")


def _search(db: FailureDatabase | None, seeds: range, strategy: str = "auto") -> tuple:
    RAN.clear()
    return explore_saved_first(
        db,
        Key.of("tests:fails_at_777", strategy, {}),
        fails_at_777,
        seeds,
        strategy=strategy,
        options={},
        stop_on_failure=True,
    )


@pytest.fixture(autouse=True)
def _broken() -> None:
    BROKEN[0] = True


def _entries(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix == ".json")


def test_a_failure_is_saved_as_plain_json(tmp_path: Path) -> None:
    db = FailureDatabase(tmp_path / "db")
    summary, run = _search(db, range(770, 780))
    assert summary.failure is not None and summary.failure.seed == BAD_SEED
    [path] = _entries(tmp_path / "db")
    assert run.saved == path
    assert path.name == f"{Key.of('tests:fails_at_777', 'auto', {}).digest}-{BAD_SEED}.json"
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT
    assert data["key"] == {"test": "tests:fails_at_777", "strategy": "auto", "options": {}}
    assert data["seed"] == BAD_SEED
    assert data["tape"] == list(summary.failure.shrunk_tape)
    assert data["exception"] == {"type": "AssertionError", "message": f"bad seed {BAD_SEED}"}
    assert data["outcome"] == f"raised AssertionError: bad seed {BAD_SEED}"
    assert data["seedloop_version"]
    assert not [p for p in (tmp_path / "db").iterdir() if p.name.startswith(".tmp-")]


def test_saved_seeds_run_before_the_range_even_outside_it(tmp_path: Path) -> None:
    db = FailureDatabase(tmp_path)
    _search(db, range(770, 780))
    summary, run = _search(db, range(5))
    # 777 is not in range(5): found anyway, because it ran first.
    assert RAN[0] == BAD_SEED
    assert summary.failure is not None and summary.failure.seed == BAD_SEED
    assert summary.failure_index == 0 and run.replayed == [BAD_SEED]
    # Another strategy is another search: the entry is not its business.
    summary, run = _search(db, range(5), strategy="fifo")
    assert summary.failure is None and run.replayed == [] and BAD_SEED not in RAN


def test_a_fixed_bug_drops_out(tmp_path: Path) -> None:
    db = FailureDatabase(tmp_path)
    _search(db, range(770, 780))
    BROKEN[0] = False
    summary, run = _search(db, range(5))
    # The saved seed first, the range, then the saved schedule before dropping it.
    assert RAN == [BAD_SEED, *range(5), BAD_SEED]
    assert summary.failure is None and run.dropped == [BAD_SEED]
    assert _entries(tmp_path) == []
    assert "dropped 777 (they pass now)" in run.describe()
    summary, run = _search(db, range(5))
    assert run.replayed == [] and RAN == list(range(5))


def test_a_seed_that_passes_with_a_schedule_that_still_fails_is_kept(tmp_path: Path) -> None:
    import seedloop_scenarios

    failure = seedloop.find_failing_seed(seedloop_scenarios.race, range(200))
    assert failure is not None
    passing = next(s for s in range(200) if s != failure.seed and _passes(s))
    db = FailureDatabase(tmp_path)
    key = Key.of("race", "auto", {})
    # The schedule fails whatever the seed: saved under a seed that passes.
    moved = Failure(passing, failure.exception, shrunk_tape=list(failure.shrunk_tape))
    db.save(key, moved)
    with pytest.warns(SeedloopWarning, match=f"seed {passing} of race now passes"):
        summary, run = explore_saved_first(
            db, key, seedloop_scenarios.race, [passing], strategy="auto", options={}
        )
    assert summary.failure is None and run.dropped == [] and len(_entries(tmp_path)) == 1


def _passes(seed: int) -> bool:
    import seedloop_scenarios

    return seedloop.execute(seedloop_scenarios.race, seed).exception is None


def _write(path: Path, key: Key, seed: int, data: object) -> Path:
    file = path / f"{key.digest}-{seed}.json"
    file.write_text(data if isinstance(data, str) else json.dumps(data))
    return file


def _good(key: Key, seed: int) -> dict:
    return {"format": FORMAT, "key": key.as_json(), "seed": seed, "tape": [0], "timing": []}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not a JSON entry"),
        (b"\xff\xfe".decode("latin-1"), "not a JSON entry"),
        ("[1, 2]", "not a seedloop failure entry"),
        ({"format": FORMAT + 1, "seedloop_version": "9.0"}, "entry format 2 by seedloop 9.0"),
        ("foreign", "belongs to another test"),
        ({"tape": [-1]}, "seed, tape or timing"),
        ({"seed": "5"}, "seed, tape or timing"),
        ({"seed": 6}, "seed, tape or timing"),  # a file name that does not match its seed
    ],
)
def test_an_unusable_entry_is_skipped_with_a_warning(
    tmp_path: Path, content: object, why: str
) -> None:
    key = Key.of("t", "auto", {})
    data = content
    if content == "foreign":
        data = {**_good(key, 5), "key": Key.of("other", "auto", {}).as_json()}
    elif isinstance(content, dict) and "format" not in content:
        data = {**_good(key, 5), **content}
    _write(tmp_path, key, 5, data)
    _write(tmp_path, key, 9, _good(key, 9))
    with pytest.warns(SeedloopWarning, match=why):
        entries = FailureDatabase(tmp_path).load(key)
    assert [e.seed for e in entries] == [9]  # the good entry still counts


def test_an_entry_never_runs_what_it_contains(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    key = Key.of("t", "auto", {})
    payload = f"open({str(marker)!r}, 'w').write('x')"
    data = {
        **_good(key, 3),
        "code": payload,
        "outcome": payload,
        "pickle": "gASVIAAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAVlY2hvIJSFlFKULg==",
        "exception": {"type": "__import__('os').system", "message": payload},
    }
    _write(tmp_path, key, 3, data)
    [entry] = FailureDatabase(tmp_path).load(key)
    assert entry.seed == 3 and entry.tape == [0] and entry.outcome == payload
    assert not marker.exists()


def test_the_database_refuses_to_work_inside_a_run(tmp_path: Path) -> None:
    db = FailureDatabase(tmp_path)

    async def scenario() -> None:
        db.load(Key.of("t", "auto", {}))

    with pytest.raises(SeedloopError, match="inside a seedloop run"):
        seedloop.run(scenario)


def test_where_the_database_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEEDLOOP_DB")
    assert database_at(None, ".seedloop").path == Path(".seedloop")
    assert database_at("x/y", ".seedloop").path == Path("x/y")
    assert database_at("off", ".seedloop") is None
    monkeypatch.setenv("SEEDLOOP_DB", str(tmp_path))
    assert database_at(None, ".seedloop").path == tmp_path
    assert database_at("x", ".seedloop").path == Path("x")  # the explicit setting wins
    monkeypatch.setenv("SEEDLOOP_DB", "OFF")
    assert database_at(None, ".seedloop") is None


def _writer(path: str, worker: int) -> None:
    db = FailureDatabase(path)
    for round_ in range(30):
        # Every worker writes the shared key's entries and its own.
        for test in ("shared", f"own-{worker}"):
            key = Key.of(test, "auto", {"depth": 2})
            exc = AssertionError(f"{test} round {round_ % 3}")
            db.save(key, Failure(round_ % 5, exc, tape=list(range(round_ % 7))))


def test_concurrent_writers_leave_only_valid_entries(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.startswith(".tmp-")]  # no half-written file left
    assert len(names) == 5 * 5  # 5 seeds for the shared key and for each worker's own
    for worker in range(4):
        key = Key.of(f"own-{worker}", "auto", {"depth": 2})
        assert [e.seed for e in FailureDatabase(tmp_path).load(key)] == [0, 1, 2, 3, 4]
    shared = FailureDatabase(tmp_path).load(Key.of("shared", "auto", {"depth": 2}))
    assert [e.seed for e in shared] == [0, 1, 2, 3, 4]
    assert all(re.fullmatch(r"shared round \d", e.exception_message) for e in shared)


# -- the command line -----------------------------------------------------------


def _explore(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "COLUMNS": "200"}
    env.pop("SEEDLOOP_DB")
    return subprocess.run(
        [sys.executable, "-m", "seedloop", "explore", "scen:scenario", "--no-progress", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


SCENARIO = """
import asyncio

async def scenario():
    seed = asyncio.get_running_loop().seed
    await asyncio.sleep(0)
    assert seed != 777, "bad seed 777"
"""


@pytest.mark.extra
def test_the_command_replays_saved_seeds_first(tmp_path: Path) -> None:
    pytest.importorskip("click")
    pytest.importorskip("rich")
    (tmp_path / "scen.py").write_text(SCENARIO)
    first = _explore(tmp_path, "--seeds", "770:780", "-j", "2")
    assert first.returncode == 1 and "seed 777" in first.stdout
    assert "failure saved to" in first.stdout
    [saved] = _entries(tmp_path / ".seedloop")  # the default place, written by the parent
    again = _explore(tmp_path, "--seeds", "0:10", "-j", "2")
    assert again.returncode == 1, again.stdout
    assert "saved seed(s) 777 ran first" in again.stdout
    assert re.search(r"first failure at\s+│?\s*position 0", again.stdout), again.stdout
    assert _explore(tmp_path, "--seeds", "0:10", "--no-db").returncode == 0
    assert _explore(tmp_path, "--seeds", "0:10", "--db", str(tmp_path / "other")).returncode == 0
    assert _explore(tmp_path, "--seeds", "0:10", "--shard", "0/2").returncode == 0
    (tmp_path / "scen.py").write_text(SCENARIO.replace("seed != 777", "True"))
    fixed = _explore(tmp_path, "--seeds", "0:10")
    assert fixed.returncode == 0 and "dropped 777 (they pass now)" in fixed.stdout
    assert not saved.exists()


# -- the pytest plugin ------------------------------------------------------------

TEST_FILE = """
import asyncio
import pytest

@pytest.mark.seedloop(seeds=SEEDS)
async def test_seed():
    seed = asyncio.get_running_loop().seed
    await asyncio.sleep(0)
    assert seed != 777, "bad seed 777"
"""

QUIET = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:xdist", "-p", "no:cacheprovider")


def test_the_pytest_plugin_replays_saved_seeds_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEEDLOOP_DB")
    pytester.makepyfile(test_db=TEST_FILE.replace("SEEDS", "range(770, 780)"))
    pytester.runpytest(*QUIET).assert_outcomes(failed=1)
    db = pytester.path / ".seedloop"
    [entry] = _entries(db)
    assert json.loads(entry.read_text())["key"]["test"] == "test_db.py::test_seed"
    pytester.makepyfile(test_db=TEST_FILE.replace("SEEDS", "range(10)"))
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "bad seed 777" in out and "--seedloop-replay 777" in out
    assert "database:    failure database" in out and "saved seed(s) 777 ran first" in out
    pytester.runpytest(*QUIET, "--no-seedloop-db").assert_outcomes(passed=1)
    pytester.runpytest(*QUIET, "--seedloop-db", "elsewhere").assert_outcomes(passed=1)
    pytester.makepyfile(test_db=TEST_FILE.replace("SEEDS", "range(10)").replace("777", "-1"))
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)
    assert _entries(db) == []  # fixed: dropped


def test_the_pytest_ini_option_and_corrupt_entries(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEEDLOOP_DB")
    pytester.makeini("[pytest]\nseedloop_db = failures\n")
    pytester.makepyfile(test_db=TEST_FILE.replace("SEEDS", "[777]"))
    pytester.runpytest(*QUIET).assert_outcomes(failed=1)
    [entry] = _entries(pytester.path / "failures")
    entry.write_text("{truncated")
    pytester.makepyfile(test_db=TEST_FILE.replace("SEEDS", "range(3)"))
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SeedloopWarning: skipping*not a JSON entry*"])


def test_xdist_workers_each_save_their_tests_failures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    monkeypatch.delenv("SEEDLOOP_DB")
    pytester.makepyfile(
        test_many="""
import asyncio
import pytest

@pytest.mark.parametrize("bad", range(6))
@pytest.mark.seedloop(seeds=range(100, 110))
async def test_seed(bad):
    seed = asyncio.get_running_loop().seed
    await asyncio.sleep(0)
    assert seed != 100 + bad, f"bad seed {seed}"
"""
    )
    args = ("-p", "no:asyncio", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")
    pytester.runpytest(*args, "-n", "2").assert_outcomes(failed=6)
    entries = _entries(pytester.path / ".seedloop")
    saved = sorted(
        (json.loads(p.read_text())["key"]["test"], json.loads(p.read_text())["seed"])
        for p in entries
    )
    assert saved == [(f"test_many.py::test_seed[{bad}]", 100 + bad) for bad in range(6)]
    assert not [p for p in (pytester.path / ".seedloop").iterdir() if p.name.startswith(".tmp")]


def test_a_database_that_cannot_be_written_warns_and_the_search_still_reports(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.warns(SeedloopWarning, match="cannot save seed 777"):
        summary, run = _search(FailureDatabase(blocker / "db"), range(770, 780))
    assert summary.failure is not None and summary.failure.seed == BAD_SEED
    assert run.saved is None


@pytest.mark.extra
def test_suite_mode_saves_and_replays_feasible_failures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --seedloop-all takes over pytest-asyncio tests with the feasible strategy:
    # its failures replay from recorded timing, which the entry keeps.
    pytest.importorskip("pytest_asyncio")
    monkeypatch.delenv("SEEDLOOP_DB")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    body = """
import asyncio

async def test_seed():
    seed = asyncio.get_running_loop().seed
    await asyncio.sleep(0.001)
    assert seed != BAD, f"bad seed {seed}"
"""
    pytester.makepyfile(test_suite=body.replace("BAD", "7"))
    args = ("--asyncio-mode=auto", "-p", "no:hypothesispytest", "-p", "no:xdist")
    args += ("-p", "no:cacheprovider", "--seedloop-all")
    pytester.runpytest(*args, "--seedloop-seeds", "5:10").assert_outcomes(failed=1)
    [entry] = _entries(pytester.path / ".seedloop")
    data = json.loads(entry.read_text())
    assert data["key"]["strategy"] == "feasible" and data["seed"] == 7 and data["timing"]
    again = pytester.runpytest(*args, "--seedloop-seeds", "0:3")
    again.assert_outcomes(failed=1)
    assert "bad seed 7" in again.stdout.str()
    pytester.makepyfile(test_suite=body.replace("BAD", "-1"))
    pytester.runpytest(*args, "--seedloop-seeds", "0:3").assert_outcomes(passed=1)
    assert _entries(pytester.path / ".seedloop") == []
