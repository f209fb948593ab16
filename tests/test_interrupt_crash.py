"""Ctrl-C stops an exploration at once with a summary; a seed that kills its process is named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import seedloop_scenarios as sc

import seedloop

TESTS = Path(__file__).parent
SRC = Path(seedloop.__file__).parent.parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _env() -> dict[str, str]:
    env = dict(os.environ, COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(SRC), env.get("PYTHONPATH", "")])
    return env


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return (Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]) != "Z"
    except OSError:
        return True


@pytest.fixture
def sigint_handled() -> Iterator[None]:
    """SIGINT handled in this process while the test runs, so a child starts
    with the default disposition: a suite started as a background job (`cmd &`
    in a script) inherits SIGINT ignored, and so would the CLI it runs, as any
    program started that way does."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        # None: a handler not set from Python; the default one is as good.
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


@pytest.mark.extra
@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("group", [False, True], ids=["kill", "terminal"])
def test_ctrl_c_stops_the_cli_within_a_second_with_a_summary(
    jobs: int, group: bool, sigint_handled: None
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "seedloop", "explore", "seedloop_scenarios:slow"]
        + ["--seeds", "0:1000000", "-j", str(jobs), "--no-progress"],
        cwd=TESTS,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # Wait until the workers run seeds (they are up for a while by then).
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < jobs and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)
        workers = _children(proc.pid)
        assert workers, "no worker process started"
        started = time.monotonic()
        if group:  # what a terminal does: every process of the group gets it
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.decode() + err.decode()
    assert took < 1.0, (took, text)
    assert proc.returncode == 130, text
    assert "seeds run" in text and "interrupted" in text, text
    assert "Traceback" not in text and "never retrieved" not in text, text
    ran = int(text.split("seeds run")[1].split()[1])
    assert ran > 0, text
    # Workers are killed and reaped before the parent exits; multiprocessing's
    # resource tracker follows as soon as it sees the parent gone.
    deadline = time.monotonic() + 2
    while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not [pid for pid in workers if _alive(pid)], "a worker process was left behind"


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_interrupted_exploration_carries_the_summary_so_far(jobs: int) -> None:
    calls = []

    def progress(done: int, total: int, failed: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C would, in the parent

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as info:
        seedloop.explore(sc.race, range(100_000), jobs=jobs, progress=progress)
    assert time.monotonic() - started < 60
    summary = info.value.exploration
    assert summary.interrupted
    assert summary.seeds_run >= calls[1] > 0
    assert summary.seeds_run < 100_000
    assert summary.failures >= len(summary.failing_seeds) > 0
    # Every seed counted was run: the failing ones are real failures.
    for _, seed in summary.failing_seeds[:5]:
        with pytest.raises(AssertionError):
            seedloop.run(sc.race, seed)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize(
    ("scenario", "status"),
    [(sc.segfaults_at_seed_5, "signal SIGSEGV"), (sc.exits_at_seed_5, "exit code 3")],
)
def test_a_seed_that_kills_its_worker_is_named(jobs: int, scenario: object, status: str) -> None:
    with pytest.raises(seedloop.WorkerCrashError) as info:
        seedloop.explore(scenario, range(40), jobs=jobs, isolate=True)
    assert info.value.seed == sc.CRASHING_SEED
    message = str(info.value)
    assert f"seed 5 (position 5, strategy {seedloop.DEFAULT_STRATEGY}) crashed the worker process ({status})" in (
        message
    )
    assert f"seedloop.run({scenario.__name__}, seed=5, strategy={seedloop.DEFAULT_STRATEGY!r})" in message


@pytest.mark.extra
@pytest.mark.parametrize("jobs", [1, 2])
def test_the_cli_names_the_seed_that_crashed(jobs: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "seedloop", "explore", "seedloop_scenarios:segfaults_at_seed_5"]
        + ["--seeds", "0:40", "-j", str(jobs), "--no-progress"],
        cwd=TESTS,
        env=_env(),
        capture_output=True,
        timeout=120,
    )
    text = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 1, text
    assert f"seed 5 (strategy {seedloop.DEFAULT_STRATEGY}) crashed the worker (signal SIGSEGV)" in text, text
    assert "seedloop replay seedloop_scenarios:segfaults_at_seed_5 --seed 5 --strategy" in text


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_script_without_a_main_guard_is_told_so(tmp_path: Path, method: str) -> None:
    """Spawned workers import the script again; forked ones (Linux's default) do not."""
    if method == "fork" and not sys.platform.startswith("linux"):
        pytest.skip("workers fork on Linux only")
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            import seedloop
            import seedloop._parallel

            seedloop._parallel.START_METHOD = {method!r}

            async def scenario():
                await asyncio.sleep(0)

            print(seedloop.explore(scenario, range(20), jobs=2))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], env=_env(), capture_output=True, timeout=120
    )
    err = done.stderr.decode()
    if method == "fork":
        assert done.returncode == 0, err
        assert "20 seeds" in done.stdout.decode()
        return
    assert done.returncode != 0
    assert "WorkerCrashError" in err and "no 'if __name__ == \"__main__\":' guard" in err, err
    script.write_text(script.read_text().replace("print(", "if __name__ == '__main__':\n    print("))
    done = subprocess.run(
        [sys.executable, str(script)], env=_env(), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "20 seeds" in done.stdout.decode()
