"""SeedLoop: a real asyncio event loop whose scheduler and clock are Rust.

The Rust base class ``LoopCore`` provides the hot path (``call_soon``,
``call_later``, ``call_at``, ``call_soon_threadsafe``, ``time`` and one loop
iteration); ``asyncio.BaseEventLoop`` provides the rest of the documented
loop API (tasks, futures, run_until_complete, exception handling, asyncgen
hooks). Nothing here opens a selector, a pipe or a socket.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.tasks
import concurrent.futures
import contextlib
import itertools
import math
import re
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from . import _engine
from ._netloop import NetLoopMixin
from ._world import inline_work
from .errors import (
    DeadlockError,
    HangError,
    InvalidOptionError,
    InvalidSeedError,
    InvalidStrategyError,
)

# Bound once: code (tests, tools) may rebind the ``asyncio.BaseEventLoop`` name.
_BaseEventLoop = asyncio.base_events.BaseEventLoop

_PY310 = sys.version_info < (3, 11)
_DEFAULT_NAME = re.compile(r"Task-\d+")
# 3.12+: tasks started eagerly that have not been scheduled yet (usually empty).
_EAGER_TASKS: Any = getattr(asyncio.tasks, "_eager_tasks", ())
STRATEGIES = ("shuffle", "random", "pct", "pos", "strict", "auto", "feasible", "fifo")
_MAX_SEED = 2**64


def check_seed(seed: object) -> int:
    """Return ``seed`` if it is a usable seed, else raise InvalidSeedError."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidSeedError(
            f"a seed must be an int in 0..2**64-1, got {seed!r} ({type(seed).__name__})"
        )
    if not 0 <= seed < _MAX_SEED:
        raise InvalidSeedError(f"a seed must be an int in 0..2**64-1, got {seed}")
    return seed


def _check_int(
    name: str,
    value: object,
    minimum: int,
    maximum: int,
    *,
    error: type[Exception] = InvalidOptionError,
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if not minimum <= value <= maximum:
        bound = f">= {minimum}" if maximum >= 2**62 else f"between {minimum} and {maximum}"
        raise error(f"{name} must be an int {bound}, got {value}")
    return value


def _check_duration(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(f"{name} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value <= 0:
        raise InvalidOptionError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_tape(tape: object) -> list[int]:
    if isinstance(tape, (str, bytes)) or not hasattr(tape, "__iter__"):
        raise InvalidOptionError(f"a tape is a list of non-negative ints, got {tape!r}")
    items = list(tape)  # type: ignore[call-overload]
    for choice in items:
        if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < 2**32:
            raise InvalidOptionError(
                f"a tape is a list of ints in 0..2**32-1 (Failure.tape / Failure.shrunk_tape), "
                f"found {choice!r}"
            )
    return items


class _ReadyView:
    """What ``loop._ready`` shows: the engine's ready entries, counted in Rust.

    asyncio code and tests read ``len(loop._ready)`` / ``bool(loop._ready)`` to
    ask whether callbacks are pending; the real queue lives in the engine.
    """

    __slots__ = ("_loop",)

    def __init__(self, loop: SeedLoop) -> None:
        self._loop = loop

    def __len__(self) -> int:
        return int(self._loop._engine_pending()[0])

    def __bool__(self) -> bool:
        return len(self) > 0

    def clear(self) -> None:  # BaseEventLoop.close(); the engine drops its entries itself
        pass

    def __repr__(self) -> str:
        return f"<ready entries of {self._loop!r}: {len(self)}>"


def _creation_hash(self: Any) -> int:
    """Hash by the order in which objects of this loop are first hashed.

    A stock future or task hashes by memory address, so sets of them
    (``asyncio.wait``'s ``done``/``pending``, ``all_tasks()``, ``asyncio.run``'s
    clean-up) iterate in an order that changes from run to run. The first
    hash draws the next number from a per-loop counter: a task is hashed when
    it registers itself (in ``__init__``), a future when it first enters a set,
    both at points the seed decides. Equality stays identity.
    """
    h: int | None = getattr(self, "_seedloop_hash", None)
    if h is None:
        counter = getattr(self._loop, "_task_hashes", None)
        h = next(counter) if counter is not None else id(self) >> 4
        self._seedloop_hash = h
    return h


class SeedTask(asyncio.Task):  # type: ignore[type-arg]
    """The task SeedLoop creates: an ``asyncio.Task`` with a deterministic hash."""

    __slots__ = ("_seedloop_hash",)
    __hash__ = _creation_hash


class SeedFuture(asyncio.Future):  # type: ignore[type-arg]
    """The future ``loop.create_future()`` returns: a deterministic hash, like :class:`SeedTask`."""

    __slots__ = ("_seedloop_hash",)
    __hash__ = _creation_hash


class _SeedTasks(_BaseEventLoop):  # type: ignore[misc]
    """Tasks the loop creates are :class:`SeedTask`s (below the network mixin in the MRO)."""

    _task_hashes: Iterator[int]
    _created_tasks: list[asyncio.Task[Any]]
    _prune_tasks_at: int
    _tasks_created: int
    _seed_tasks_created: int
    _factory_tasks_created: int
    #: Called as ``hook(task, parent_task_or_None)`` after each task is created (timelines).
    _on_task_created: Callable[[asyncio.Task[Any], asyncio.Task[Any] | None], None] | None

    def create_task(
        self, coro: Any, *, name: str | None = None, context: Any = None, **kwargs: Any
    ) -> asyncio.Task[Any]:
        """``loop.create_task``; without a task factory the task is a :class:`SeedTask`."""
        if context is not None:
            if _PY310:
                raise TypeError("create_task() got an unexpected keyword argument 'context'")
            kwargs["context"] = context
        self._tasks_created += 1
        hook = self._on_task_created
        parent = asyncio.current_task(self) if hook is not None else None
        if self._task_factory is not None:
            self._factory_tasks_created += 1
            self._check_closed()
            # As BaseEventLoop.create_task does, minus CPython 3.13.0's bug of
            # calling set_name(None) on the factory's task.
            task = self._task_factory(self, coro, **kwargs)
            if name is not None:
                with contextlib.suppress(AttributeError):
                    task.set_name(name)
            get_name = getattr(task, "get_name", None)
            if name is None and get_name is not None and _DEFAULT_NAME.fullmatch(str(get_name())):
                # Keep a factory's own name; renumber asyncio's process-wide one.
                with contextlib.suppress(AttributeError):
                    task.set_name(f"Task-{self._tasks_created}")
            if hook is not None:
                hook(task, parent)
        else:
            if name is None:
                # asyncio numbers unnamed tasks process-wide ("Task-N"): per loop,
                # the names are a function of the seed too.
                name = f"Task-{self._tasks_created}"
            self._check_closed()
            task = SeedTask(coro, loop=self, name=name, **kwargs)
            self._seed_tasks_created += 1
            if task._source_traceback:
                del task._source_traceback[-1]
            created = self._created_tasks
            created.append(task)
            if len(created) > self._prune_tasks_at:
                # Forget finished tasks so a long-lived loop stays in bounded memory.
                created[:] = [t for t in created if not t.done()]
                self._prune_tasks_at = 2 * len(created) + 1024
            if hook is not None:
                hook(task, parent)
        if self._seedloop_net is not None:
            self._track_on_host(task, context)
        return task

    # Defined by the network mixin; None until a run uses the network.
    _seedloop_net: Any = None

    def _track_on_host(self, task: asyncio.Task[Any], context: Any) -> None:
        pass

    def create_future(self) -> asyncio.Future[Any]:
        """``loop.create_future``: a :class:`SeedFuture` (hashed by creation order)."""
        return SeedFuture(loop=self)

    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """Unfinished tasks of this loop, oldest first (by creation ordinal)."""
        own = [t for t in self._created_tasks if not t.done()]
        if (
            self._engine_tasks_seen() <= self._seed_tasks_created
            and not self._factory_tasks_created
            and not any(t.get_loop() is self for t in _EAGER_TASKS)
        ):
            return own  # every task the engine has seen was created here: no scan needed
        # Tasks built directly (asyncio.Task(...)) or by a task factory: ask asyncio.
        others = {id(t): t for t in asyncio.all_tasks(self) if not t.done()}
        for t in own:
            others.pop(id(t), None)
        return sorted([*own, *others.values()], key=self.task_ordinal)


class SeedLoop(_engine.LoopCore, NetLoopMixin, _SeedTasks):  # type: ignore[misc]
    """An asyncio event loop driven by a seed.

    ``strategy`` picks how ready callbacks are ordered (``shuffle`` by default,
    the seed's per-iteration permutation; see ``STRATEGIES``). ``tape`` replays
    a recorded decision tape instead. ``max_steps``/``max_time`` bound a run:
    past them the loop raises :class:`HangError`. ``executor="inline"`` runs
    ``run_in_executor`` work synchronously (deterministic); ``"thread"`` uses
    real threads, for code that needs them outside simulations.
    """

    def __init__(
        self,
        seed: int = 0,
        strategy: str = "shuffle",
        *,
        depth: int = 3,
        steps: int = 1000,
        tape: list[int] | None = None,
        max_steps: int | None = None,
        max_time: float | None = None,
        executor: str = "inline",
    ) -> None:
        # Set first: if validation raises, BaseEventLoop.__del__ and __repr__
        # still find what they read (no "Exception ignored" noise).
        self._closed = True
        self.seed, self.strategy = seed, strategy
        check_seed(seed)
        if strategy not in STRATEGIES:
            raise InvalidStrategyError(
                f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}"
            )
        # Inline fast paths: the checks run per seed of a search.
        if type(depth) is not int or not 1 <= depth <= 10_000:
            _check_int("depth", depth, 1, 10_000, error=InvalidStrategyError)
        if type(steps) is not int or not 1 <= steps <= 2**63:
            _check_int("steps", steps, 1, 2**63)
        if max_steps is not None and (type(max_steps) is not int or not 1 <= max_steps <= 2**63):
            _check_int("max_steps", max_steps, 1, 2**63)
        if max_time is not None:
            max_time = _check_duration("max_time", max_time)
        if tape is not None:
            tape = _check_tape(tape)
        if executor not in ("inline", "thread"):
            raise InvalidOptionError(f"executor must be 'inline' or 'thread', got {executor!r}")
        _BaseEventLoop.__init__(self)
        self._engine_setup(
            seed,
            strategy,
            depth=depth,
            steps=max(1, steps),
            tape=list(tape) if tape is not None else None,
            max_steps=max_steps or 0,
            max_time=max_time,
        )
        self.seed = seed
        self.strategy = "replay" if tape is not None else strategy
        self._max_steps = max_steps
        self._max_time = max_time
        self._executor_mode = executor
        # Async generators in first-iteration order: shutdown closes them in
        # this order instead of the WeakSet's address order.
        self._agen_refs: list[weakref.ref[Any]] = []
        self._task_hashes = itertools.count(1)
        # Created tasks, oldest first (finished ones pruned as it grows):
        # clean-up finds what is pending without scanning asyncio's WeakSet.
        self._created_tasks = []
        self._prune_tasks_at = 1024
        self._tasks_created = 0
        self._seed_tasks_created = 0
        self._factory_tasks_created = 0
        self._on_task_created = None

    @property
    def _ready(self) -> _ReadyView:
        return _ReadyView(self)

    @_ready.setter
    def _ready(self, value: object) -> None:
        # BaseEventLoop.__init__ assigns a deque; the ready queue is the engine's.
        pass

    # -- debug mode ----------------------------------------------------------

    _DEBUG_CHECKED = ("call_soon", "call_later", "call_at", "call_soon_threadsafe")

    def set_debug(self, enabled: bool) -> None:
        """Like ``BaseEventLoop.set_debug``, with the stock loop's debug-mode checks.

        In debug mode the stock loop rejects coroutines passed as callbacks and
        non-thread-safe calls from other threads. The scheduling methods are
        Rust and skip those checks on the hot path, so debug mode puts
        checking wrappers on the instance (they dispatch to the class's method,
        so subclass overrides still apply); leaving debug mode removes them.
        """
        _BaseEventLoop.set_debug(self, enabled)
        for name in self._DEBUG_CHECKED:
            if enabled:
                self.__dict__[name] = self._debug_checked(name)
            else:
                self.__dict__.pop(name, None)

    def _debug_checked(self, name: str) -> Callable[..., Any]:
        method = getattr(type(self), name)
        threadsafe = name == "call_soon_threadsafe"
        at = 1 if name in ("call_later", "call_at") else 0  # where the callback is

        def checked(*args: Any, **kwargs: Any) -> Any:
            self._check_closed()
            if not threadsafe:
                self._check_thread()
            if len(args) > at:
                self._check_callback(args[at], name)
            return method(self, *args, **kwargs)

        checked.__name__ = checked.__qualname__ = name
        return checked

    def __repr__(self) -> str:
        return (
            f"<SeedLoop seed={self.seed} strategy={self.strategy} "
            f"running={self.is_running()} closed={self.is_closed()}>"
        )

    # -- the run loop -------------------------------------------------------

    def _run_once(self) -> None:
        status = self._engine_run_once(self._stopping)
        if status == _engine.RAN or (status == _engine.IDLE and self._stopping):
            return
        if status == _engine.IDLE:
            timers = self._engine_pending()[1]
            why = (
                "no timer is pending"
                if not timers
                else f"the {timers} pending timer(s) never fire (cancelled, or deadlines beyond "
                "the clock's ~570-year range, such as sleep(math.inf))"
            )
            raise DeadlockError(
                f"deadlock: nothing is ready, {why}, and the run is not done",
                self.waiting_tasks(),
            )
        if status == _engine.STEP_BUDGET:
            raise HangError(
                f"hang: the run exceeded max_steps={self._max_steps} steps "
                "(raise max_steps if it is legitimately long)",
                self.waiting_tasks(),
            )
        raise HangError(
            f"hang: virtual time passed max_time={self._max_time}s "
            "(raise max_time if it is legitimately long)",
            self.waiting_tasks(),
        )

    def waiting_tasks(self) -> list[str]:
        """One line per unfinished task, in creation order: name and where it waits."""
        from ._report import describe_task

        tasks = [t for t in asyncio.all_tasks(self) if not t.done()]
        tasks.sort(key=self.task_ordinal)
        return [describe_task(t, self.task_ordinal(t)) for t in tasks]

    def task_ordinal(self, task: asyncio.Future[Any]) -> int:
        """The task's stable identity in this loop: its creation ordinal."""
        return self._engine_task_ordinal(task)

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        _BaseEventLoop.close(self)
        self._engine_close()
        self._created_tasks.clear()

    # -- trace --------------------------------------------------------------

    def trace_fingerprint(self) -> str:
        """Hex fingerprint of every scheduling decision made so far."""
        return self._engine_fingerprint()

    def decision_tape(self) -> list[int]:
        """The index chosen among ready callbacks at each step (replayable)."""
        return self._engine_tape()

    def step_count(self) -> int:
        return self._engine_step_count()

    # -- executors ----------------------------------------------------------

    def run_in_executor(
        self, executor: concurrent.futures.Executor | None, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if self._executor_mode == "inline":
            # Deterministic: the work runs now, on the loop's thread.
            fut = self.create_future()
            was_inline = getattr(inline_work, "active", False)
            inline_work.active = True  # blocking waits refuse (see _world)
            try:
                result = func(*args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # delivered to the awaiting task
                fut.set_exception(exc)
            else:
                fut.set_result(result)
            finally:
                inline_work.active = was_inline
            return fut
        if executor is None:
            executor = self._default_executor
            self._check_default_executor()  # refuses work after shutdown_default_executor()
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="seedloop")
                self._default_executor = executor
        cfut = executor.submit(func, *args)
        afut = asyncio.wrap_future(cfut, loop=self)
        # Registered after wrap_future's own callback: the result is already
        # in the loop's inbox when the loop stops waiting for outside work.
        self._engine_external(1)
        cfut.add_done_callback(lambda _: self._engine_external(-1))
        return afut

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        # BaseEventLoop joins the executor in a helper thread that reports back
        # through call_soon_threadsafe: outside work the idle loop must wait for
        # (not a deadlock).
        self._engine_external(1)
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self._engine_external(-1)

    def _write_to_self(self) -> None:  # no self-pipe: call_soon_threadsafe wakes the engine
        pass

    def _process_events(self, event_list: Any) -> None:
        pass

    # -- async generators, closed in a deterministic order -----------------

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        super()._asyncgen_firstiter_hook(agen)  # type: ignore[misc]
        self._agen_refs.append(weakref.ref(agen))

    async def shutdown_asyncgens(self) -> None:
        self._asyncgens_shutdown_called = True
        alive = [a for a in (r() for r in self._agen_refs) if a is not None]
        alive = [a for a in alive if a in self._asyncgens]
        self._agen_refs.clear()
        self._asyncgens.clear()
        if not alive:
            return
        results = await asyncio.gather(*[ag.aclose() for ag in alive], return_exceptions=True)
        for result, agen in zip(results, alive, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )


if sys.version_info >= (3, 12):

    def new_event_loop_factory(seed: int = 0, strategy: str = "shuffle") -> Callable[[], SeedLoop]:
        """A ``loop_factory`` for ``asyncio.Runner`` / ``asyncio.run`` (3.12+)."""
        return lambda: SeedLoop(seed, strategy)
