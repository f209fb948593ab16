"""The seedloop command line: explore, replay, HTML and JSON reports."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.extra
pytest.importorskip("click")
pytest.importorskip("rich")

from click.testing import CliRunner  # noqa: E402

from seedloop import DEFAULT_STRATEGY  # noqa: E402
from seedloop._cli import cli  # noqa: E402

TESTS = Path(__file__).parent


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(TESTS)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_explore_summarises_and_names_the_first_failure(runner: CliRunner, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    summary_json = tmp_path / "summary.json"
    result = runner.invoke(
        cli,
        [
            "explore",
            "seedloop_scenarios:race",
            "--seeds",
            "0:300",
            "--jobs",
            "1",
            "--html",
            str(report),
            "--json",
            str(summary_json),
        ],
    )
    assert result.exit_code == 1, result.output
    out = result.output
    assert "seeds run" in out and "300" in out
    assert "distinct outcomes" in out and "distinct interleavings" in out
    assert "seeds/s" in out
    match = re.search(
        r"seedloop replay seedloop_scenarios:race --seed (\d+) --strategy " + DEFAULT_STRATEGY, out
    )
    assert match, out
    seed = int(match.group(1))
    import seedloop_scenarios

    import seedloop

    assert seedloop.find_failing_seed(seedloop_scenarios.race, range(300)).seed == seed
    assert f"seedloop.run(race, seed={seed}, strategy={DEFAULT_STRATEGY!r})" in out
    assert "minimal schedule" in out and "timeline of the failing interleaving" in out

    data = json.loads(summary_json.read_text())
    assert data["seeds_run"] == 300 and data["failure_seed"] == seed
    assert data["failure_index"] == seed and data["failures"] == len(data["failing_seeds"])

    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert f"seed {seed}" in page and "AssertionError" in page
    assert "consumer missed the data" in page and "Step log" in page and "Timeline" in page
    assert "consumer()" in page  # the timeline itself
    assert "virtual time (s)" in page  # the step log table
    # Self-contained: no scripts, stylesheets or images fetched from anywhere.
    assert not re.search(r"<(script|link|img)\b", page)
    assert "http://" not in page and "https://" not in page

    # The printed replay command reproduces the failure.
    replay = runner.invoke(cli, ["replay", "seedloop_scenarios:race", "--seed", str(seed)])
    assert replay.exit_code == 1, replay.output
    assert "AssertionError: consumer missed the data" in replay.output
    assert 'seedloop_scenarios.py", line' in replay.output
    assert "_run.py" not in replay.output  # seedloop's own frames are hidden
    assert "_search.py" not in replay.output


def test_replay_of_a_passing_seed_exits_zero(runner: CliRunner, tmp_path: Path) -> None:
    report = tmp_path / "ok.html"
    result = runner.invoke(
        cli,
        [
            "replay",
            "seedloop_scenarios:race",
            "--seed",
            "0",
            "--strategy",
            "fifo",
            "--html",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "passes" in result.output and "42" in result.output
    assert "No failure" in report.read_text()


def test_parallel_explore_with_stop_and_pct_options(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        [
            "explore",
            "seedloop_scenarios:slow_early_failure",
            "--seeds",
            "400",
            "-j",
            "2",
            "--stop-on-failure",
            "--no-progress",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "--seed 40 " in result.output
    assert "stopped at the first failure" in result.output

    pct = runner.invoke(
        cli,
        [
            "explore",
            "seedloop_scenarios:race",
            "--seeds",
            "100",
            "-j",
            "1",
            "--strategy",
            "pct",
            "-o",
            "depth=2",
            "--no-progress",
        ],
    )
    assert pct.exit_code == 1, pct.output
    assert "--strategy pct -o depth=2" in pct.output
    assert "depth=2" in pct.output and "steps=" in pct.output  # the Python call is exact


def test_all_passing_exits_zero(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        [
            "explore",
            "seedloop_scenarios:race",
            "--seeds",
            "50",
            "--strategy",
            "fifo",
            "-j",
            "1",
            "--shard",
            "1/2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "25" in result.output and "shard" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["explore", "seedloop_scenarios:race", "--seeds", "1:x"], "cannot read seeds"),
        (["explore", "seedloop_scenarios:nope"], "cannot find 'nope'"),
        (["explore", "no_such_mod_q:race"], "cannot import module"),
        (["explore", "seedloop_scenarios:race", "--shard", "4/2"], "shard 4/2"),
        (["explore", "seedloop_scenarios:race", "-o", "depth"], "KEY=VALUE"),
        (["explore", "seedloop_scenarios:race", "--strategy", "chaos"], "chaos"),
        (["replay", "seedloop_scenarios:race"], "--seed"),
        (
            ["explore", "seedloop_scenarios:leaks_state_between_runs", "--check-determinism"],
            "ran twice with different interleavings",
        ),
    ],
)
def test_usage_errors_say_what_to_do(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_fail_if_searches_for_a_bad_return_value(runner: CliRunner, tmp_path: Path) -> None:
    """A race that corrupts a value instead of raising is found from the shell too."""
    import seedloop_scenarios

    import seedloop

    plain = runner.invoke(cli, ["explore", "seedloop_scenarios:missed", "--seeds", "200", "-j", "1"])
    assert plain.exit_code == 0, plain.output  # returning 'MISSED' is not a failure by itself
    summary_json = tmp_path / "summary.json"
    found = runner.invoke(
        cli,
        [
            "explore",
            "seedloop_scenarios:missed",
            "--seeds",
            "200",
            "-j",
            "2",
            "--fail-if",
            'result == "MISSED"',
            "--json",
            str(summary_json),
        ],
    )
    assert found.exit_code == 1, found.output
    data = json.loads(summary_json.read_text())
    expected = seedloop.find_seed_where(
        seedloop_scenarios.missed, lambda r: r == "MISSED", range(200)
    )
    assert expected is not None and data["failure_seed"] == expected[0]
    assert data["failures"] > 0
    assert "--fail-if 'result == \"MISSED\"'" in data["replay"]
    assert "the scenario returned 'MISSED'" in found.output
    # The printed replay command reproduces the seed alone, with the same verdict.
    argv = shlex.split(data["replay"])[1:]
    again = runner.invoke(cli, argv)
    assert again.exit_code == 1, again.output
    assert "holds: the scenario returned 'MISSED'" in again.output
    ok = runner.invoke(cli, [*argv[:-2], "--fail-if", "result == 'never'"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize(
    "expression, message",
    [("result ==", "is not a Python expression"), ("result.nope", "raised AttributeError")],
)
def test_a_bad_fail_if_says_what_to_do(runner: CliRunner, expression: str, message: str) -> None:
    result = runner.invoke(
        cli, ["explore", "seedloop_scenarios:missed", "--seeds", "5", "-j", "1", "--fail-if", expression]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_python_dash_m_and_file_targets(tmp_path: Path) -> None:
    scenario = tmp_path / "my_scenario.py"
    scenario.write_text(
        "import asyncio\n\nasync def main():\n    await asyncio.sleep(5)\n    return 'ok'\n"
    )
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedloop",
            "explore",
            f"{scenario}:main",
            "--seeds",
            "20",
            "-j",
            "1",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "'ok'" in proc.stdout and "20" in proc.stdout


def test_the_guides_example_behaves_as_the_guide_says(runner: CliRunner) -> None:
    example = str(TESTS.parent / "examples" / "lost_update.py")
    buggy = runner.invoke(cli, ["explore", f"{example}:buggy", "--seeds", "300", "-j", "1"])
    assert buggy.exit_code == 1, buggy.output
    assert "lost update: balance is 50, expected 20" in buggy.output
    assert "feasible on a real loop" in buggy.output
    fixed = runner.invoke(cli, ["explore", f"{example}:fixed", "--seeds", "300", "-j", "1"])
    assert fixed.exit_code == 0, fixed.output


def test_html_report_escapes_what_the_scenario_says() -> None:
    import seedloop
    from seedloop._html import render_report

    async def hostile() -> None:
        raise ValueError("<script>alert(1)</script> & <b>")

    result = seedloop.execute(hostile, 3, keep_steps=True)
    page = render_report(target="m:<hostile>", result=result)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "No timeline" in page  # a bare RunResult has none; the page says so
    assert "ValueError" in page and "seed 3" in page


def test_trace_option_writes_chrome_trace_json(runner: CliRunner, tmp_path: Path) -> None:
    found = tmp_path / "explore.json"
    result = runner.invoke(
        cli,
        ["explore", "seedloop_scenarios:race", "--seeds", "0:300", "-j", "1", "--no-progress",
         "--stop-on-failure", "--trace", str(found)],
    )
    assert result.exit_code == 1, result.output
    assert f"trace: {found}" in result.output
    events = json.loads(found.read_text())["traceEvents"]
    assert {"M", "X"} <= {e["ph"] for e in events}
    assert any(e["ph"] == "X" and e.get("cat") == "reordered" for e in events)
    # A passing seed's run is recorded too.
    passing = tmp_path / "pass.json"
    result = runner.invoke(
        cli,
        ["replay", "seedloop_scenarios:race", "--seed", "0", "--strategy", "fifo",
         "--trace", str(passing)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(passing.read_text())
    assert data["otherData"]["exception"] == ""
    assert any(e["ph"] == "X" for e in data["traceEvents"])


def test_systematic_explore_needs_no_seeds_and_prints_a_tape_replay(
    runner: CliRunner, tmp_path: Path
) -> None:
    report, summary = tmp_path / "r.html", tmp_path / "s.json"
    result = runner.invoke(
        cli,
        ["explore", "seedloop_scenarios:race", "--strategy", "systematic", "--no-progress",
         "--html", str(report), "--json", str(summary)],
    )
    assert result.exit_code == 1, result.output
    assert "systematic schedule" in result.output
    match = re.search(
        r"seedloop replay seedloop_scenarios:race --seed 0 --tape ([0-9,]+)", result.output
    )
    assert match, result.output
    replayed = runner.invoke(
        cli, ["replay", "seedloop_scenarios:race", "--seed", "0", "--tape", match.group(1)]
    )
    assert replayed.exit_code == 1, replayed.output
    assert "consumer missed the data" in replayed.output
    stock = runner.invoke(
        cli, ["replay", "seedloop_scenarios:race", "--seed", "0", "--tape", "0,0,0,0,0,0,0,0,0"]
    )
    assert stock.exit_code == 0, stock.output
    data = json.loads(summary.read_text())
    assert data["strategy"] == "systematic" and data["complete"] is False
    assert ",".join(map(str, data["tape"])) == match.group(1)
    assert "systematic exploration (bound 2): schedule" in report.read_text()


def test_systematic_explore_says_what_it_covered(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["explore", "seedloop_scenarios:race", "--strategy", "systematic", "--bound", "0",
         "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "all 1 interleavings within bound 0 explored: no failure" in result.output
    capped = runner.invoke(
        cli,
        ["explore", "seedloop_scenarios:race", "--strategy", "systematic", "--bound", "none",
         "--max-runs", "1", "--no-progress"],
    )
    assert capped.exit_code == 0 and "not complete: max_runs=1" in capped.output
    seeds = runner.invoke(
        cli,
        ["explore", "seedloop_scenarios:race", "--strategy", "systematic", "--bound", "0",
         "--seeds", "3", "--no-progress"],
    )
    assert seeds.exit_code == 0 and "for 3 world seeds: no failure" in seeds.output
    bad = runner.invoke(
        cli, ["explore", "seedloop_scenarios:race", "--strategy", "systematic", "--bound", "x"]
    )
    assert bad.exit_code == 2 and "'none'" in bad.output
