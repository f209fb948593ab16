"""Execute one seed: build the loop, install the world, run, clean up -> RunResult."""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from . import _assertions, _world
from ._loop import SeedLoop
from ._options import (
    DEFAULT_STRATEGY,
    RunOptions,
    check_factory,
    check_fail_if,
    check_timing,
    factory_name,
    needs_arguments,
)
from ._result import Failure, RunResult, annotate, failure_from
from ._tape import Tape
from .errors import (
    InvalidFactoryError,
    InvalidOptionError,
    InvalidSeedError,
    SeedloopError,
    StuckError,
)

Factory = Callable[[], Coroutine[Any, Any, Any]]

_CLEANUP_STEPS = 100_000
_CoroutineType = types.CoroutineType


def check_not_in_running_loop(api: str) -> None:
    """seedloop runs its own loops: refuse to start inside someone else's."""
    if asyncio._get_running_loop() is not None:
        raise SeedloopError(
            f"{api}() cannot run inside a running event loop (it runs its own SeedLoop); "
            "call it from synchronous code, e.g. a plain 'def test_...', or decorate the "
            "async test with @seedloop.simulate / @pytest.mark.seedloop"
        )


def make_coroutine(factory: Factory, api: str) -> Coroutine[Any, Any, Any]:
    try:
        coro = factory()
    except TypeError as exc:
        # Raised by the call itself (no frame of the factory ran): bad arity.
        tb = exc.__traceback__
        if tb is not None and tb.tb_next is None:
            raise needs_arguments(factory, api, exc) from None
        raise
    if type(coro) is not _CoroutineType and not inspect.iscoroutine(coro):
        if inspect.isawaitable(coro):

            async def _await(aw: Any = coro) -> Any:
                return await aw

            return _await()
        raise InvalidFactoryError(
            f"{api}(): the factory {factory_name(factory)} returned {type(coro).__name__}, "
            "not a coroutine; it must be an 'async def' function (or return a coroutine)"
        )
    return coro


def judge_result(expression: str, value: Any) -> AssertionError | None:
    """``fail_if``: an AssertionError when ``expression`` holds for the result ``value``.

    A returned value that is wrong is a failure like a raised one, so every
    search, shrink, timeline and replay treats it the same way.
    """
    code = check_fail_if(expression)
    try:
        verdict = eval(code, {"result": value})
    except Exception as exc:
        raise InvalidOptionError(
            f"fail_if={expression!r} raised {type(exc).__name__}: {exc} for the result "
            f"{value!r}; make the expression handle every value the scenario returns"
        ) from exc
    if not verdict:
        return None
    return AssertionError(f"fail_if {expression!r} holds: the scenario returned {value!r}")


def run_seed(
    factory: Factory,
    seed: int,
    opts: RunOptions,
    *,
    tape: Sequence[int] | None = None,
    api: str = "seedloop.run",
    instrument: Callable[[SeedLoop], None] | None = None,
    keep_steps: bool = False,
    clamp_tape: bool = False,
    timing: Sequence[int] | None = None,
    walk: Any = None,
) -> RunResult:
    """Run ``factory()`` once under ``seed`` with already validated options.

    ``instrument(loop)`` is called before the scenario starts (observers,
    creation hooks); ``keep_steps`` keeps the full step log in the result;
    ``timing`` replays a ``feasible`` run's recorded timing; ``walk`` (a plan
    of ``_engine.Explorer``) makes the run one of a systematic exploration:
    the result's ``walk`` is then its record, and a walk that stopped early
    leaves no outcome (``exception`` None, ``walk.stopped`` set).
    A ``tape`` entry past the ready list raises InvalidOptionError, or with
    ``clamp_tape`` picks the newest ready callback (generated tapes).
    """
    check_not_in_running_loop(api)
    # The loop first: a bad seed or tape fails before a coroutine exists.
    loop = SeedLoop._for_run(seed, opts, tape, keep_steps, clamp_tape, walk)
    if timing is not None:
        loop._engine_set_timing_tape(list(timing))
    try:
        coro = make_coroutine(factory, api)
        if instrument is not None:
            instrument(loop)
        installation = _world.install(loop, seed, opts.world)
        rec = _assertions.Recording().__enter__()
        try:
            world = installation[0]
            main = loop.create_task(coro, name="main")
            value: Any = None
            exception: BaseException | None = None
            try:
                value = loop._run_main(main)
            except (KeyboardInterrupt, SystemExit):
                if main.done() and not main.cancelled():
                    # The scenario raised it: consume it as asyncio.run does, or
                    # the task logs "exception was never retrieved" on top.
                    main.exception()
                raise
            except BaseException as exc:
                exception = exc
            if loop._tape_error is not None:
                # The tape, not the scenario, is wrong: unwind the tasks (the
                # rest of the tape clamps), then say so.
                loop._engine_clamp_tape()
                finish(loop)
                raise loop._tape_error
            finish(loop)
            if exception is None and rec.violation is not None:
                exception = rec.violation  # an always/unreachable the code under test swallowed
            if loop._walk_stopped:
                exception = None  # not an outcome: the exploration drops this run
            elif exception is None and world is not None and world.escapes:
                exception = world.escapes[0]  # swallowed by the code under test
            if exception is None and opts.fail_if is not None and not loop._walk_stopped:
                exception = judge_result(opts.fail_if, value)
            fingerprint, width, tape_bytes, steps, now, strict, timing_used = (
                loop._engine_outcome()
            )
            # By position, in the fields' order: half the cost of 14 keywords.
            result = RunResult(
                seed,  # seed
                loop.strategy,  # strategy
                value,  # value
                exception,  # exception
                fingerprint,  # fingerprint
                Tape.from_engine(width, tape_bytes),  # tape
                steps,  # steps
                now,  # virtual_time
                opts.kwargs,  # options
                strict,  # strict_order
                loop._engine_steps() if keep_steps else None,  # step_log
                Tape.from_engine(8, timing_used) if timing_used else [],  # timing
                loop._engine_take_walk() if walk is not None else None,  # walk
                rec.sites,  # assertions
            )
        finally:
            rec.__exit__(None, None, None)
            _world.uninstall(installation)
    finally:
        loop.close()
    return result


def calibrate(factory: Factory, opts: RunOptions, api: str) -> RunOptions:
    """Fix PCT's run length k from the scenario itself, never from earlier seeds.

    One pilot run in stock (fifo) order, so every seed sees the same k
    whatever ran before it: a seed found by a parallel or sharded search
    reproduces alone, through every entry point.
    """
    if opts.strategy != "pct" or opts.steps is not None:
        return opts
    pilot = run_seed(factory, 0, opts.with_strategy("fifo"), api=api)
    return opts.with_steps(max(pilot.steps, 10))


def execute(
    factory: Factory,
    seed: int,
    strategy: str = DEFAULT_STRATEGY,
    *,
    tape: Sequence[int] | None = None,
    api: str = "seedloop.run",
    instrument: Callable[[SeedLoop], None] | None = None,
    keep_steps: bool = False,
    clamp_tape: bool = False,
    **options: Any,
) -> RunResult:
    """Run ``factory()`` once on a fresh SeedLoop and report everything about it.

    Takes the same options as :func:`seedloop.run` (PCT's ``steps`` is measured
    the same way, so a seed behaves here as in a search). ``instrument(loop)``
    is called before the scenario starts; ``keep_steps`` keeps the step log.
    ``tape`` replays a decision tape (a list or tuple of ints): an entry past
    the callbacks ready at its step raises InvalidOptionError naming the
    step, unless ``clamp_tape`` (as for the tapes ``seedloop.hypothesis``
    draws), which picks the newest ready callback instead.
    """
    check_factory(factory, api, call_signature=False)
    opts = RunOptions.build(api, strategy, options)
    if tape is None:
        opts = calibrate(factory, opts, api)
    if not isinstance(clamp_tape, bool):
        raise InvalidOptionError(f"{api}(): clamp_tape must be True or False, got {clamp_tape!r}")
    return run_seed(
        factory,
        seed,
        opts,
        tape=tape,
        api=api,
        instrument=instrument,
        keep_steps=keep_steps,
        clamp_tape=clamp_tape,
    )


def run(
    factory: Factory, seed: int = 0, *, strategy: str = DEFAULT_STRATEGY, **options: Any
) -> Any:
    """Run ``factory()`` under ``seed``; return its result or raise its exception.

    The same seed (and strategy) always gives the same interleaving and the
    same virtual times. Inside the run the world is deterministic too (see
    ``seedloop._world``): ``world=False`` turns that off, ``sleep="advance"``
    (default) or ``"error"`` chooses what ``time.sleep`` does, and
    ``wall_epoch`` sets the wall clock at virtual time 0. ``fail_if`` (a
    Python expression over the returned ``result``, e.g. ``"result is None"``)
    makes a wrong return value fail like a raised AssertionError.
    """
    # execute measures PCT's k as the searches do, so their seeds reproduce here.
    result = execute(factory, seed, strategy, api="seedloop.run", **options)
    if result.exception is not None:
        annotate(failure_from(result, factory))
        raise result.exception
    return result.value


def replay(
    factory: Factory,
    tape: Sequence[int] | Failure,
    *,
    seed: int = 0,
    timing: Sequence[int] | None = None,
    **options: Any,
) -> Any:
    """Rerun a recorded decision tape exactly; return the result or raise.

    ``tape`` is a list (or tuple) of choices (``Failure.tape`` /
    ``Failure.shrunk_tape``) or a :class:`Failure` (its shrunk tape, seed and
    timing are used). An entry that names a callback that was not ready at its
    step raises InvalidOptionError: the tape does not belong to this scenario.
    ``timing`` (``Failure.timing`` of a ``feasible`` failure) replays recorded
    timing in asyncio's own order: pass an empty tape with it.
    """
    api = "seedloop.replay"
    check_factory(factory, api)
    if isinstance(tape, Failure):
        seed = tape.seed
        options = {**tape.options, **options}
        if timing is None and tape.timing:
            timing = tape.timing
        tape = tape.shrunk_tape if tape.shrunk_tape is not None else tape.tape
    if timing is not None:
        timing = check_timing(timing)
    if not isinstance(tape, (list, tuple, Tape)) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in tape
    ):
        raise InvalidSeedError("seedloop.replay() needs a tape: a list of non-negative ints")
    # The tape decides every step: PCT's settings play no part.
    options.pop("steps", None)
    options.pop("depth", None)
    if timing is not None:
        # Recorded timing decides what a feasible run varied; the order is stock.
        opts = RunOptions.build(api, "fifo", options)
        result = run_seed(factory, seed, opts, api=api, timing=timing)
    else:
        opts = RunOptions.build(api, DEFAULT_STRATEGY, options)
        result = run_seed(factory, seed, opts, tape=list(tape), api=api)
    if result.exception is not None:
        annotate(failure_from(result, factory))
        raise result.exception
    return result.value


def _quiet_cancellations(previous: Any) -> Callable[[Any, dict[str, Any]], None]:
    """Exception handler for clean-up: the CancelledError that seedloop's own
    cancellation provokes in loop callbacks (CPython 3.11/3.12's streams.py
    asks a cancelled handler task for its exception) is not the code's bug."""

    def handler(loop: Any, context: dict[str, Any]) -> None:
        callback = getattr(context.get("handle"), "_callback", None)
        if isinstance(context.get("exception"), asyncio.CancelledError) and (
            getattr(callback, "__module__", None) == "asyncio.streams"
        ):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handler


def finish(loop: SeedLoop) -> None:
    """Cancel what is left in creation order, let it unwind, close async generators."""
    pending = loop.pending_tasks()
    if not pending and not loop._has_asyncgens():
        return  # the common case: nothing to unwind
    loop._engine_set_budget(loop.step_count() + _CLEANUP_STEPS, None, loop._max_wall)
    loop.set_exception_handler(_quiet_cancellations(loop.get_exception_handler()))
    try:
        if pending:
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            for task in pending:
                if not task.cancelled() and task.exception() is not None:
                    # As asyncio.run does: a task that failed while being cancelled.
                    loop.call_exception_handler(
                        {
                            "message": "unhandled exception during seedloop's clean-up",
                            "exception": task.exception(),
                            "task": task,
                        }
                    )
        if loop._has_asyncgens():
            loop.run_until_complete(loop.shutdown_asyncgens())
    except StuckError:
        pass  # a task that refuses to unwind: the loop's close drops it
