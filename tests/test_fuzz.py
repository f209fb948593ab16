"""Every public entry point, fed valid and hostile arguments, answers or refuses clearly.

Hypothesis draws arguments (plausible values mixed with junk: wrong types,
out-of-range numbers, NaN, unknown option names) for run, execute, replay,
find_failing_seed, find_seed_where, explore, SeedLoop(...), simulate, the
Hypothesis helpers, seedloop.net's fault API and the command line. Each call
must either succeed with the right answer, or raise a SeedloopError subclass
or a standard TypeError/ValueError whose message says something: never a
Rust panic (pyo3's PanicException), a hang, another exception type, or a
silently wrong result.

Bounded to a few seconds by default; SEEDLOOP_FUZZ_EXAMPLES=2000 runs longer.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import seedloop  # noqa: E402
from seedloop import net  # noqa: E402

EXAMPLES = int(os.environ.get("SEEDLOOP_FUZZ_EXAMPLES", "60"))
#: A call that takes longer than this (real seconds) counts as a hang.
HANG = 20.0
ALLOWED = (seedloop.SeedloopError, TypeError, ValueError)
TESTS = Path(__file__).parent

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# -- what a call may do ------------------------------------------------------


class _Refused:
    """The call raised an allowed error (its message was checked)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def call(fn: Callable[[], Any]) -> Any:
    """``fn()``'s value, or _Refused for an allowed error with a message; anything else fails."""
    started = time.monotonic()
    try:
        value = fn()
    except BaseException as exc:  # noqa: BLE001 - classifying is the point
        if type(exc).__name__ == "PanicException":
            pytest.fail(f"a Rust panic reached Python: {exc!r}")
        if not isinstance(exc, ALLOWED):
            raise AssertionError(f"unexpected {type(exc).__name__}: {exc!r}") from exc
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return _Refused(exc)
    finally:
        assert time.monotonic() - started < HANG, "a call took so long it looks like a hang"
    return value


def ran_right(result: Any) -> None:
    """A RunResult of ``scenario``: 42, or seedloop's own error (a budget option hit)."""
    if result.exception is None:
        assert result.value == 42
    else:
        assert isinstance(result.exception, seedloop.HangError), result.exception


# -- arguments -----------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=3),
    st.lists(st.integers(-3, 300), max_size=3),
    st.just(object()),
    st.just({"a": 1}),
)
seeds_ = st.one_of(st.integers(0, 2**64 - 1), junk)
strategies_ = st.one_of(st.sampled_from(seedloop.STRATEGIES), junk)
seed_lists = st.one_of(
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=3),
    st.builds(range, st.integers(0, 3), st.integers(0, 6)),
    junk,
)
OPTION_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "depth": st.one_of(st.integers(1, 5), junk),
    "steps": st.one_of(st.integers(1, 50), junk),
    "max_steps": st.one_of(st.integers(1, 10_000), junk),
    "max_time": st.one_of(st.floats(0.001, 100), junk),
    "executor": st.one_of(st.sampled_from(["inline", "thread"]), junk),
    "world": junk,
    "sleep": st.one_of(st.sampled_from(["advance", "error"]), junk),
    "wall_epoch": st.one_of(st.floats(-7e10, 3e11), junk),
    "no_such_option": junk,
}
options_ = st.dictionaries(
    st.sampled_from(sorted(OPTION_VALUES)), st.just(None), max_size=3
).flatmap(
    lambda keys: st.fixed_dictionaries({k: OPTION_VALUES[k] for k in keys})
)
#: Never a number of processes that would start workers (slow): those paths
#: have their own tests.
jobs_ = st.sampled_from([1, -1, -5, 1.5, "2", True, False, b"1", [1], 0.0])
tapes = st.one_of(st.lists(st.integers(0, 5), max_size=8), junk)


async def scenario() -> int:
    async def worker(n: int) -> int:
        await asyncio.sleep(0.001 * n)
        return n

    values = await asyncio.gather(worker(1), worker(2))
    return sum(values) * 14  # 42


async def failing() -> None:
    await asyncio.sleep(0)
    raise KeyError("always")


# -- the entry points ----------------------------------------------------------


@fuzz
@given(seed=seeds_, strategy=strategies_, options=options_)
def test_run_and_execute(seed: Any, strategy: Any, options: dict[str, Any]) -> None:
    got = call(lambda: seedloop.run(scenario, seed, strategy=strategy, **options))
    if not isinstance(got, _Refused):
        assert got == 42
    result = call(lambda: seedloop.execute(scenario, seed, strategy, **options))
    if not isinstance(result, _Refused):
        ran_right(result)
        assert result.steps == len(result.tape) > 0
        assert isinstance(got, _Refused) or result.seed == seed


@fuzz
@given(tape=tapes, seed=seeds_, options=options_, clamp=st.one_of(st.booleans(), junk))
def test_replay_and_tapes(tape: Any, seed: Any, options: dict[str, Any], clamp: Any) -> None:
    got = call(lambda: seedloop.replay(scenario, tape, seed=seed, **options))
    if not isinstance(got, _Refused):
        assert got == 42
    extra = {} if clamp is False else {"clamp_tape": clamp}
    result = call(lambda: seedloop.execute(scenario, 0, tape=tape, **extra, **options))
    if not isinstance(result, _Refused):
        ran_right(result)
        # A tape that was accepted is followed exactly (or clamped, if asked).
        prefix = list(tape or [])[: len(result.tape)]  # tape=None: no tape, the default
        if clamp is not True:
            assert list(result.tape)[: len(prefix)] == prefix


@fuzz
@given(
    seeds=seed_lists,
    strategy=strategies_,
    options=options_,
    check=st.one_of(st.booleans(), junk),
    jobs=jobs_,
    broken=st.booleans(),
)
def test_find_failing_seed(
    seeds: Any, strategy: Any, options: dict[str, Any], check: Any, jobs: Any, broken: bool
) -> None:
    factory = failing if broken else scenario
    got = call(
        lambda: seedloop.find_failing_seed(
            factory, seeds, strategy=strategy, check_determinism=check, jobs=jobs, **options
        )
    )
    if isinstance(got, _Refused):
        return
    if broken:
        assert got is not None and isinstance(got.exception, KeyError)
        assert got.seed in list(seeds)
    else:
        assert got is None or isinstance(got.exception, seedloop.HangError)


@fuzz
@given(
    seeds=seed_lists,
    predicate=st.one_of(st.just(lambda v: v == 42), st.just(lambda v: False), junk),
    options=options_,
)
def test_find_seed_where(seeds: Any, predicate: Any, options: dict[str, Any]) -> None:
    got = call(lambda: seedloop.find_seed_where(scenario, predicate, seeds, **options))
    if isinstance(got, _Refused) or not callable(predicate):
        assert isinstance(got, _Refused)
        return
    if "max_steps" in options or "max_time" in options:
        return  # a budget option may end a run with HangError (then raised: refused above)
    if predicate(42):
        assert got == (list(seeds)[0], 42)
    else:
        assert got is None


@fuzz
@given(
    seeds=seed_lists,
    strategy=strategies_,
    options=options_,
    jobs=jobs_,
    shard=st.one_of(st.sampled_from([(0, 2), (1, 2), "0/1", "1/3", (2, 2), "x"]), junk),
    flags=st.fixed_dictionaries(
        {
            "stop_on_failure": st.one_of(st.booleans(), junk),
            "shrink": st.one_of(st.booleans(), junk),
            "explain": st.one_of(st.booleans(), junk),
            "isolate": st.sampled_from([False, "yes", 1, None]),
        }
    ),
    broken=st.booleans(),
)
def test_explore(
    seeds: Any,
    strategy: Any,
    options: dict[str, Any],
    jobs: Any,
    shard: Any,
    flags: dict[str, Any],
    broken: bool,
) -> None:
    factory = failing if broken else scenario
    got = call(
        lambda: seedloop.explore(
            factory, seeds, strategy=strategy, jobs=jobs, shard=shard, **flags, **options
        )
    )
    if isinstance(got, _Refused):
        return
    assert got.seeds_run >= 1
    if broken:
        assert got.failures == got.seeds_run
        assert got.failure is not None and isinstance(got.failure.exception, KeyError)
    elif got.failures:
        assert isinstance(got.failure.exception, seedloop.HangError)
    else:
        assert got.failure is None and dict(got.outcomes) == {"42": got.seeds_run}


@fuzz
@given(
    seed=seeds_,
    strategy=strategies_,
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "depth": OPTION_VALUES["depth"],
            "steps": OPTION_VALUES["steps"],
            "max_steps": OPTION_VALUES["max_steps"],
            "max_time": OPTION_VALUES["max_time"],
            "executor": OPTION_VALUES["executor"],
            "tape": tapes,
        },
    ),
)
def test_seedloop_constructor(seed: Any, strategy: Any, kwargs: dict[str, Any]) -> None:
    loop = call(lambda: seedloop.SeedLoop(seed, strategy, **kwargs))
    if isinstance(loop, _Refused):
        return
    try:
        got = call(lambda: loop.run_until_complete(scenario()))
        if not isinstance(got, _Refused):
            assert got == 42
        elif "tape" not in kwargs:
            assert isinstance(got.exc, seedloop.HangError), got.exc
    finally:
        loop.close()


@fuzz
@given(seeds=st.one_of(seed_lists, st.just([])), strategy=strategies_, options=options_)
def test_simulate_decorator(seeds: Any, strategy: Any, options: dict[str, Any]) -> None:
    async def passes() -> None:
        assert await scenario() == 42

    wrapped = call(lambda: seedloop.simulate(seeds, strategy=strategy, **options)(passes))
    if isinstance(wrapped, _Refused):
        return
    try:
        got = call(wrapped)
    except AssertionError as exc:
        # A test that fails under a seed is reported so; here only because an
        # option (max_steps=1, sleep...) made the run itself fail with seedloop's error.
        failure = exc.__cause__
        assert isinstance(failure, seedloop.SimulationFailure), exc
        assert isinstance(failure.failure.exception, seedloop.SeedloopError), failure
        return
    assert got is None or isinstance(got, _Refused)


@fuzz
@given(
    low=st.one_of(st.integers(-5, 2**65), junk),
    high=st.one_of(st.integers(-5, 2**65), junk),
    tape=st.lists(st.integers(0, 300), max_size=20),
)
def test_hypothesis_helpers(low: Any, high: Any, tape: list[int]) -> None:
    from seedloop import hypothesis as sh

    call(lambda: sh.seeds(low, high))
    call(lambda: sh.schedules(low, high))
    # Drawn schedules clamp entries past the ready list, as documented.
    assert sh.Schedule(tuple(tape)).run(scenario) == 42


net_refs = st.one_of(st.sampled_from(["a", "b", "nowhere"]), junk)


@fuzz
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("host"), st.one_of(st.text(max_size=6), junk)),
            st.tuples(st.just("partition"), net_refs, net_refs),
            st.tuples(st.just("heal"), net_refs, net_refs),
            st.tuples(st.just("isolate"), net_refs),
            st.tuples(st.just("crash"), net_refs),
            st.tuples(st.just("restart"), net_refs),
            st.tuples(
                st.just("set_loss"),
                net_refs,
                net_refs,
                st.one_of(st.floats(0, 1), junk),
            ),
            st.tuples(
                st.just("set_latency"),
                net_refs,
                net_refs,
                st.one_of(
                    st.builds(net.Fixed, st.floats(0, 1)),
                    st.builds(net.Uniform, st.floats(0, 1), st.floats(0, 1)),
                    junk,
                ),
            ),
        ),
        max_size=6,
    ),
    seed=st.integers(0, 100),
)
def test_net_fault_api(ops: list[tuple[Any, ...]], seed: int) -> None:
    async def faults() -> list[str]:
        network = net.current()
        network.host("a")
        network.host("b")
        seen = []
        for name, *args in ops:
            target = network if name != "host" else net
            got = call(lambda: getattr(target, name)(*args))  # noqa: B023
            seen.append(type(got).__name__)
        await asyncio.sleep(0.01)
        return seen

    result = call(lambda: seedloop.run(faults, seed))
    assert not isinstance(result, _Refused), result.exc
    assert len(result) == len(ops)


cli_words = st.one_of(
    st.sampled_from(["0:3", "2", "1,5", "3:1", "-1", "x", "0:4:2", "", "99999999999999999999"]),
    st.text(max_size=5),
)


@fuzz
@given(
    seed=st.one_of(st.integers(-2, 2**65), st.text(max_size=4)),
    strategy=st.one_of(st.sampled_from(seedloop.STRATEGIES), st.text(max_size=5)),
    option=st.one_of(
        st.sampled_from(["depth=2", "max_steps=1", "max_time=0", "sleep='no'", "x=1", "bad"]),
        st.text(max_size=6),
    ),
    target=st.sampled_from(
        ["seedloop_scenarios:race", "seedloop_scenarios:nothing", "nomodule:x", "bad"]
    ),
)
def test_cli_replay(seed: Any, strategy: str, option: str, target: str) -> None:
    from click.testing import CliRunner

    from seedloop._cli import cli

    old = os.getcwd()
    os.chdir(TESTS)
    try:
        result = CliRunner().invoke(
            cli, ["replay", target, "--seed", str(seed), "--strategy", strategy, "-o", option]
        )
    finally:
        os.chdir(old)
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        pytest.fail(f"the CLI raised {result.exception!r}\n{result.output}")


@settings(fuzz, max_examples=max(4, EXAMPLES // 6))
@given(seeds=cli_words, jobs=st.sampled_from(["-1", "x", "1.5", "-j"]), shard=cli_words)
def test_cli_explore_arguments(seeds: str, jobs: str, shard: str) -> None:
    """Bad explore arguments are usage errors (exit 2) before any worker starts."""
    from click.testing import CliRunner

    from seedloop._cli import cli

    old = os.getcwd()
    os.chdir(TESTS)
    try:
        result = CliRunner().invoke(
            cli,
            ["explore", "seedloop_scenarios:race", "--seeds", seeds, "-j", jobs]
            + ["--shard", shard or "x", "--no-progress"],
        )
    finally:
        os.chdir(old)
    assert result.exit_code == 2, (result.output, result.exception)
    assert math.isfinite(len(result.output)) and result.output.strip()
