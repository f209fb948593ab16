"""Decision tapes: user tapes are checked against the run, generated ones clamp; tapes stay small."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

import seedloop
from seedloop._tape import Tape


async def two_tasks() -> list[str]:
    order: list[str] = []

    async def step(name: str) -> None:
        order.append(name)
        await asyncio.sleep(0)
        order.append(name)

    await asyncio.gather(step("a"), step("b"))
    return order


def test_a_tape_entry_past_the_ready_list_is_refused_naming_the_step() -> None:
    recorded = seedloop.execute(two_tasks, 3)
    assert seedloop.replay(two_tasks, recorded.tape) == recorded.value
    with pytest.raises(seedloop.InvalidOptionError, match=r"step 0 is 9, but only 1 callback"):
        seedloop.replay(two_tasks, [9])
    bad = list(recorded.tape)
    where = next(i for i, c in enumerate(bad) if c == 0)
    bad[where] = 50
    with pytest.raises(seedloop.InvalidOptionError, match=rf"step {where} is 50"):
        seedloop.execute(two_tasks, 0, tape=bad)

    async def inside_a_loop() -> None:
        await two_tasks()

    loop = seedloop.SeedLoop(tape=[0, 7])
    try:
        with pytest.raises(seedloop.InvalidOptionError, match="step 1 is 7"):
            loop.run_until_complete(inside_a_loop())
    finally:
        loop.close()


def test_a_refused_tape_leaves_nothing_pending(
    caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    gc.collect()  # what earlier tests left behind is not this test's
    caplog.clear()
    recwarn.clear()
    caplog.set_level(logging.ERROR, logger="asyncio")
    for tape in ([9], [0, 0, 5], [1, 0, 0, 0, 4]):
        with pytest.raises(seedloop.InvalidOptionError):
            seedloop.replay(two_tasks, tape)
    gc.collect()
    assert "destroyed but it is pending" not in caplog.text
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_generated_tapes_clamp_as_documented() -> None:
    # What seedloop.hypothesis.schedules() draws and the shrinker proposes:
    # an entry past the ready list picks the newest ready callback.
    clamped = seedloop.execute(two_tasks, 0, tape=[9, 9, 9], clamp_tape=True)
    assert clamped.exception is None
    assert clamped.tape[:1] == [0]  # one callback ready at step 0
    with pytest.raises(seedloop.InvalidOptionError, match="clamp_tape"):
        seedloop.execute(two_tasks, 0, tape=[0], clamp_tape="yes")


def test_an_iterator_is_not_a_tape() -> None:
    recorded = seedloop.execute(two_tasks, 5)
    tape = iter(list(recorded.tape))
    with pytest.raises(seedloop.InvalidOptionError, match="iterator would be used up"):
        seedloop.execute(two_tasks, 0, tape=tape)
    with pytest.raises(seedloop.InvalidOptionError, match="list"):
        seedloop.SeedLoop(tape=(c for c in [0, 1]))
    with pytest.raises(seedloop.InvalidSeedError):
        seedloop.replay(two_tasks, iter([0, 1]))
    # Sequences replay the same every time.
    assert seedloop.execute(two_tasks, 0, tape=tuple(recorded.tape)).value == recorded.value


def test_a_run_keeps_its_tape_in_a_byte_per_step() -> None:
    result = seedloop.execute(two_tasks, 1)
    tape = result.tape
    assert isinstance(tape, Tape) and tape.itemsize == 1
    assert tape == list(tape) and list(tape) == tape.tolist()
    assert repr(tape) == repr(tape.tolist())
    assert pickle.loads(pickle.dumps(tape)) == tape
    assert result.step_log is None  # not kept unless asked for
    kept = seedloop.execute(two_tasks, 1, keep_steps=True)
    assert kept.step_log is not None and [s[2] for s in kept.step_log] == list(tape)
    assert kept.fingerprint == result.fingerprint


def test_a_choice_past_255_widens_the_tape() -> None:
    async def many() -> None:
        async def noop() -> None:
            await asyncio.sleep(0)

        await asyncio.gather(*(noop() for _ in range(400)))

    result = seedloop.execute(many, 2, "random")
    assert max(result.tape) > 255 and result.tape.itemsize == 4
    assert seedloop.replay(many, result.tape, seed=2) is None
    assert seedloop.execute(many, 0, tape=result.tape).fingerprint == result.fingerprint


def test_a_feasible_run_keeps_its_timing_as_words_that_replay_it() -> None:
    loops: list[seedloop.SeedLoop] = []
    result = seedloop.execute(two_tasks, 3, "feasible", instrument=loops.append)
    timing = result.timing
    assert isinstance(timing, Tape) and timing.itemsize == 8
    assert timing == loops[0]._engine_timing_tape() and len(timing) > 0
    assert repr(timing) == repr(timing.tolist())
    assert pickle.loads(pickle.dumps(timing)) == timing
    assert seedloop.replay(two_tasks, [], timing=timing) == result.value
    again = seedloop.execute(
        two_tasks, 0, "fifo", instrument=lambda loop: loop._engine_set_timing_tape(list(timing))
    )
    assert again.fingerprint == result.fingerprint
    assert seedloop.execute(two_tasks, 3, "shuffle").timing == []  # only feasible times


@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage")
def test_memory_per_step_is_a_few_bytes() -> None:
    child = textwrap.dedent(
        """
        import asyncio, resource, sys
        import seedloop

        async def scenario(n):
            async def worker():
                for _ in range(n):
                    await asyncio.sleep(0)
            await asyncio.gather(worker(), worker())

        n = int(sys.argv[1])
        seedloop.run(lambda: scenario(n), 0, max_steps=2 * n + 100)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )

    def peak_kb(n: int) -> int:
        out = subprocess.run(
            [sys.executable, "-c", child, str(n)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        return int(out.stdout)

    small, big = peak_kb(100), peak_kb(1_000_000)
    per_step = (big - small) * 1024 / 2_000_000
    assert per_step < 10, f"{per_step:.1f} bytes per step (was about 44 before tapes were compact)"
