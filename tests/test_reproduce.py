"""A seed found by a search reproduces through every public entry point, under every strategy.

(The pytest plugin's --seedloop-replay is covered in test_plugin.py.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import seedloop_scenarios as sc

import seedloop

TESTS = Path(__file__).parent

# (strategy, extra options): every strategy that can fail the race, with and without options.
CASES = [
    (strategy, options)
    for strategy in seedloop.STRATEGIES
    for options in ({}, {"depth": 3} if strategy == "pct" else {"max_steps": 10_000})
]


# lost_update needs one task to run ahead of another (PCT's change points matter
# there); race is found by every reordering strategy; tight_deadline only by
# varying timing (feasible).
SCENARIOS = {
    "lost_update": sc.lost_update,
    "race": sc.race,
    "tight_deadline": sc.tight_deadline,
}


def _found(strategy: str, options: dict[str, object]) -> seedloop.Failure | None:
    for factory in SCENARIOS.values():
        failure = seedloop.find_failing_seed(factory, range(300), strategy=strategy, **options)
        if failure is not None:
            return failure
    return None


@pytest.mark.parametrize(("strategy", "options"), CASES)
def test_every_entry_point_reruns_the_found_seed(strategy: str, options: dict[str, object]) -> None:
    failure = _found(strategy, options)
    if failure is None:
        assert strategy in ("fifo", "strict"), f"{strategy} no longer finds any of them"
        return
    seed, factory = failure.seed, SCENARIOS[failure.factory_name]
    message = str(failure.exception)
    again = seedloop.execute(factory, seed, strategy, **options)
    assert again.fingerprint == failure.fingerprint
    assert str(again.exception) == message
    kind = type(failure.exception)
    with pytest.raises(kind) as info:
        seedloop.run(factory, seed=seed, strategy=strategy, **options)
    assert str(info.value).startswith(message)
    # The full tape, then the Failure (its shrunk tape, or a feasible run's timing).
    with pytest.raises(kind):
        seedloop.replay(factory, failure.tape, seed=seed, timing=failure.timing or None)
    with pytest.raises(kind):
        seedloop.replay(factory, failure)
    # A search over just that seed agrees, and so does explore.
    alone = seedloop.find_failing_seed(
        factory, [seed], strategy=strategy, shrink=False, explain=False, **options
    )
    assert alone is not None and alone.fingerprint == failure.fingerprint
    assert seedloop.explore(factory, [seed], strategy=strategy, **options).failures == 1


@pytest.mark.extra
@pytest.mark.parametrize("strategy", [s for s in seedloop.STRATEGIES if s not in ("fifo", "strict")])
def test_cli_replay_and_the_failure_replay_command_rerun_it(strategy: str) -> None:
    failure = _found(strategy, {})
    assert failure is not None
    cli = subprocess.run(
        [sys.executable, "-m", "seedloop", "replay", f"seedloop_scenarios:{failure.factory_name}",
         "--seed", str(failure.seed), "--strategy", strategy],
        cwd=TESTS, capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert failure.fingerprint in cli.stdout
    # Failure.replay_command is what reports print: run it as written.
    code = (
        "import seedloop\n"
        f"from seedloop_scenarios import {failure.factory_name} as scenario\n"
        f"r = seedloop.execute(scenario, {failure.seed}, {failure.strategy!r}"
        + "".join(f", {k}={v!r}" for k, v in sorted(failure.options.items()))
        + ")\nprint(r.fingerprint)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == failure.fingerprint, out.stderr
