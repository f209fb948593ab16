"""Time-travel replay: `seedloop replay --break-at STEP` opens pdb in the task's frame, `--watch` prints changes."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import seedloop
from seedloop._investigate import record_timeline
from seedloop._options import RunOptions
from seedloop._timetravel import time_travel
from seedloop.errors import InvalidOptionError

pytestmark = pytest.mark.extra
pytest.importorskip("click")
pytest.importorskip("rich")

PYTHON_DIR = Path(seedloop.__file__).resolve().parent.parent

# A lost update: both withdrawals read the balance before either writes it back.
BANK = textwrap.dedent(
    """\
    import asyncio


    class Account:
        def __init__(self):
            self.balance = 100

        async def withdraw(self, amount):
            current = self.balance
            await asyncio.sleep(0.5)
            self.balance = current - amount


    async def helper(acct, amount):
        await acct.withdraw(amount)


    async def scenario():
        acct = Account()
        await asyncio.gather(helper(acct, 10), helper(acct, 20))
        assert acct.balance == 70, f"balance {acct.balance}"
    """
)

SEED = 2  # fails (lost update) under the default strategy; checked below


@pytest.fixture
def bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "bank.py").write_text(BANK)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bank", None)
    return tmp_path


def _seedloop(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "seedloop", "replay", "bank:scenario", "--seed", str(SEED), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _fingerprint(output: str) -> str:
    match = re.search(r"fingerprint\s+([0-9a-f]{16})", output)
    assert match, output
    return match.group(1)


def test_the_seed_fails_without_a_debugger(bank: Path) -> None:
    plain = _seedloop(bank)
    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert "AssertionError: balance 80" in plain.stdout or "balance 90" in plain.stdout


def test_break_at_opens_pdb_in_the_tasks_frame_and_replays_exactly(bank: Path) -> None:
    plain = _seedloop(bank)
    debugged = _seedloop(
        bank,
        "--break-at",
        "4",
        stdin="p current\np amount\nwhere\nup\np amount\np acct.balance\nc\n",
    )
    out = debugged.stdout
    assert debugged.returncode == 1, out + debugged.stderr
    # The same step the timeline calls 4: the second helper, about to resume line 10.
    opts = RunOptions.build("test", seedloop.DEFAULT_STRATEGY, {})
    import bank as module  # type: ignore[import-not-found]

    _, recording = record_timeline(module.scenario, SEED, None, opts)
    row = next(r for r in recording.steps if r.step == 4)
    assert row.what.strip() == "resumes  bank.py:10 withdraw()"
    label = recording.lane(row.task).label
    assert f"seedloop: before step 4 t={row.time:.6f} {label}  {row.what}" in out
    prompt = out.split("(Pdb) ")
    # p current / p amount in withdraw's frame, then `where` lists the await chain.
    assert prompt[1].strip() == "100"
    assert prompt[2].strip() == "10"
    where = prompt[3].splitlines()
    assert where[0].endswith("bank.py(15)helper()") and where[2].endswith("bank.py(10)withdraw()")
    # `up` moves to helper(); nobody has written the balance back yet.
    assert "bank.py(15)helper()" in prompt[4]
    assert prompt[5].strip() == "10"
    assert prompt[6].strip() == "100"
    # pdb changed nothing: the run is the one a plain replay makes.
    assert _fingerprint(out) == _fingerprint(plain.stdout)


def test_watch_prints_every_change_with_its_step_and_task(bank: Path) -> None:
    result = _seedloop(bank, "--watch", "acct.balance")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert lines == [
        "step 0 t=0 #1 main acct.balance: <unset> -> 100",
        "step 4 t=0.5 #2 helper acct.balance: 100 -> 90",
        "step 7 t=0.5 #3 helper acct.balance: 90 -> 80",
    ]
    assert "AssertionError: balance 80" in result.stdout


def test_watch_in_a_named_tasks_frame(bank: Path) -> None:
    # `current` exists in both helpers' frames: --task picks one, by label or name.
    first = _seedloop(bank, "--watch", "current", "--task", "#3")
    lines = [line for line in first.stdout.splitlines() if line.startswith("step ")]
    assert lines == ["step 2 t=0 #3 helper current: <unset> -> 100"], first.stdout
    unknown = _seedloop(bank, "--watch", "current", "--task", "nobody")
    assert unknown.returncode == 2
    assert "--task 'nobody'" in unknown.stderr and "#2 helper" in unknown.stderr


def test_next_and_step_move_by_steps_and_quit_stops(bank: Path) -> None:
    result = _seedloop(bank, "--break-at", "1", stdin="n\ns\nq\n")
    stops = re.findall(r"seedloop: before step (\d+) t=\S+ (#\d \w+)", result.stdout)
    # n: the same task's next step; s: the next step of any task; q ends the run.
    assert stops == [("1", "#2 helper"), ("4", "#2 helper"), ("7", "#3 helper")], result.stdout
    assert "quit in the debugger at step 7; the run did not finish" in result.stdout
    assert result.returncode == 1


def test_a_step_beyond_the_end_says_where_the_run_ends(bank: Path) -> None:
    result = _seedloop(bank, "--break-at", "500")
    assert result.returncode == 2
    assert re.search(
        r"error: --break-at 500: the run \(seed 2, strategy \w+\) ends at step \d+; pick a "
        r"step from its timeline \(steps 0\.\.\d+\)",
        result.stderr,
    ), result.stderr


def test_time_spent_at_the_prompt_never_trips_max_wall(bank: Path) -> None:
    # Burn real time at the prompt: past max_wall, yet the run must not hang-fail.
    burn = "p sum(range(20_000_000)) > 0\nc\n"
    result = _seedloop(bank, "-o", "max_wall=0.05", "--break-at", "3", stdin=burn)
    assert "HangError" not in result.stdout + result.stderr
    # Step 3 is a timer's callback, not a task step: the debugger says where it stops instead.
    assert re.search(
        r"seedloop: step 3 runs callback \S+, not a task; stopping at step 4, the next task step",
        result.stdout,
    ), result.stdout
    assert "AssertionError: balance" in result.stdout
    assert _fingerprint(result.stdout) == _fingerprint(_seedloop(bank).stdout)


def test_the_minimal_schedule_replays_under_the_debugger_too(bank: Path) -> None:
    result = _seedloop(bank, "--tape", "[]", "--watch", "acct.balance")
    lines = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert lines[-1].endswith("acct.balance: 90 -> 80")
    assert "a tape of 0 decisions" in result.stdout
    bad = _seedloop(bank, "--tape", "[-1]")
    assert bad.returncode == 2 and "--tape" in bad.stderr


def test_time_travel_in_process_matches_execute(bank: Path) -> None:
    import bank as module  # type: ignore[import-not-found]

    opts = RunOptions.build("test", "pct", {})
    expected = seedloop.execute(module.scenario, 7, "pct")
    out = io.StringIO()
    steps = opts.with_steps(expected.options["steps"])
    travelled = time_travel(
        module.scenario,
        7,
        steps,
        breaks=[1],
        watches=["acct.balance"],
        stdin=io.StringIO("p acct.balance\nc\n"),
        stdout=out,
    )
    assert travelled.result.fingerprint == expected.fingerprint
    assert travelled.stopped_at == [1]
    assert "(Pdb) 100" in out.getvalue()
    with pytest.raises(InvalidOptionError, match="not a Python expression"):
        time_travel(module.scenario, 7, steps, watches=["x ="])


def test_watching_a_shared_object_outlives_the_task_that_reached_it() -> None:
    # The guide's lost update: both withdrawals read 100; the second write wins.
    root = Path(__file__).resolve().parent.parent  # the repository: examples/ is there
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "seedloop", "replay", "examples/lost_update.py:buggy"]
        + ["--seed", "5278", "--watch", "self.balance", "--watch", "balance"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert lines == [
        "step 0 t=0 #1 main self.balance: <unset> -> 100",
        "step 2 t=0 #2 withdraw balance: <unset> -> 100",
        "step 6 t=0.003719 #2 withdraw self.balance: 100 -> 70",
        "step 9 t=0.005987 #3 withdraw self.balance: 70 -> 50",
    ]
