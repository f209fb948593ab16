"""SeedLoop: a real asyncio event loop whose scheduler and clock are Rust.

The Rust base class ``LoopCore`` provides the hot path (``call_soon``,
``call_later``, ``call_at``, ``call_soon_threadsafe``, ``time`` and one loop
iteration); ``asyncio.BaseEventLoop`` provides the rest of the documented
loop API (tasks, futures, run_until_complete, exception handling, asyncgen
hooks). Nothing here opens a selector, a pipe or a socket.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from .. import _engine, _world
from .._describe import describe_task
from .._options import DEFAULT_PCT_DEPTH, DEFAULT_STRATEGY, RunOptions, check_seed, check_tape
from .._tape import Tape
from .._world import inline_work
from ..errors import DeadlockError, HangError, InvalidOptionError
from .net_methods import NetLoopMixin
from .tasks import _BaseEventLoop, _SeedTasks

_set_running_loop = asyncio.events._set_running_loop
_run_until_complete_cb = asyncio.base_events._run_until_complete_cb
# 3.12+ split run_forever's set-up and clean-up out of its loop.
_RUN_FOREVER_SETUP = getattr(_BaseEventLoop, "_run_forever_setup", None)
_RUN_FOREVER_CLEANUP = getattr(_BaseEventLoop, "_run_forever_cleanup", None)

def _base_state() -> dict[str, Any] | None:
    """What ``BaseEventLoop.__init__`` sets, outside debug mode, to set on new loops.

    None (keep calling ``__init__``) if it sets anything but immutable values,
    the scheduled-timer list and the two containers SeedLoop replaces.
    ``_stopping`` is left out: the engine keeps it (``LoopCore._stopping``).
    """
    probe = _BaseEventLoop.__new__(_BaseEventLoop)
    _BaseEventLoop.__init__(probe)
    state = dict(vars(probe))
    probe._closed = True  # nothing to release; keeps __del__ quiet
    if state.pop("_debug", None) is not False:
        return None
    state.pop("_ready", None)  # the engine's ready list (a property here)
    state.pop("_asyncgens", None)  # made on first use (the _asyncgens property)
    state.pop("_stopping", None)
    if state.pop("_scheduled", None) != []:
        return None
    if not all(v is None or type(v) in (bool, int, float) for v in state.values()):
        return None
    state["_debug"] = False
    return state


_BASE_STATE = _base_state()


def _base_state_setter() -> Callable[[Any], None] | None:
    """A function storing ``_BASE_STATE`` on a loop, one plain store per name.

    Specialized attribute stores take a tenth of the time of a ``setattr``
    loop over the snapshot (0.1 against 0.7 us of every run). The values are
    the snapshot's own objects (immutable: see ``_base_state``), passed in as
    defaults; the names are identifiers from ``vars()`` of the probe loop.
    """
    if _BASE_STATE is None or not all(name.isidentifier() for name in _BASE_STATE):
        return None
    params = ", ".join(f"_v{i}=_v{i}" for i in range(len(_BASE_STATE)))
    stores = "".join(f"    self.{name} = _v{i}\n" for i, name in enumerate(_BASE_STATE))
    source = f"def set_base_state(self, *, {params}):\n{stores}"
    namespace: dict[str, Any] = {f"_v{i}": v for i, v in enumerate(_BASE_STATE.values())}
    exec(compile(source, "<seedloop base state>", "exec"), namespace)
    return namespace["set_base_state"]  # type: ignore[no-any-return]


_set_base_state = _base_state_setter()
#: What ``SeedLoop._setup`` sets: BaseEventLoop's attributes and SeedLoop's own
#: (``_stopping``, ``_tasks_created`` and ``_seed_tasks_created`` are the
#: engine's: data descriptors of LoopCore, not slots).
_LOOP_SLOTS = (
    *(_BASE_STATE or ()),
    "_scheduled",
    "_agen_refs",
    "seed",
    "strategy",
    "_max_steps",
    "_max_time",
    "_max_wall",
    "_executor_mode",
    "_factory_tasks_created",
    "_on_task_created",
    "_walk_stopped",
    "_tape_error",
    "_asyncgens_set",
    "_seedloop_net",
)
_ENVIRON_DATA: Any = getattr(os.environ, "_data", None)
try:
    _DEBUG_KEY: Any = os.environ.encodekey("PYTHONASYNCIODEBUG")  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - not CPython's os.environ
    _DEBUG_KEY = None


_IS_DEBUG_MODE = asyncio.coroutines._is_debug_mode


def _asyncio_debug_mode() -> bool:
    """``asyncio.coroutines._is_debug_mode()`` without os.environ's Python-level lookup."""
    if (
        _ENVIRON_DATA is None
        or _DEBUG_KEY is None
        or asyncio.coroutines._is_debug_mode is not _IS_DEBUG_MODE  # patched (tests do)
    ):
        return bool(asyncio.coroutines._is_debug_mode())
    flags = sys.flags
    return bool(
        flags.dev_mode or (not flags.ignore_environment and _ENVIRON_DATA.get(_DEBUG_KEY))
    )


#: PCT's run length k for a loop built by hand (a run measures it instead).
_DEFAULT_PCT_STEPS = 1000


class _WalkStopped(Exception):
    """Raised out of the loop when a systematic walk stops: the rest of the
    schedule reorders independent steps of one already explored (or is over
    the preemption bound), so the run ends here and is cleaned up."""


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



class SeedLoop(_engine.LoopCore, NetLoopMixin, _SeedTasks):  # type: ignore[misc]
    """An asyncio event loop driven by a seed.

    ``strategy`` picks how ready callbacks are ordered (``auto`` by default;
    ``shuffle`` is the seed's per-iteration permutation; see ``STRATEGIES``). ``tape`` replays
    a recorded decision tape instead. ``max_steps``/``max_time``/``max_wall``
    (real seconds, counted from the first iteration) bound a run: past them the
    loop raises :class:`HangError`; a loop built by hand has none unless given.
    ``step_time`` is the virtual time each step costs (None: nothing, except
    10 us per step once over 10,000 loop iterations ran without the ready list ever
    being empty, so polling loops see time pass). ``executor="inline"`` runs
    ``run_in_executor`` work synchronously (deterministic); ``"thread"`` uses
    real threads, for code that needs them outside simulations.
    """

    # Every attribute a run sets is a slot, so a loop has no instance dict
    # unless other code adds an attribute: CPython's adaptive interpreter then
    # specializes ``loop.call_soon`` and every other ``loop.attr`` (stock's and
    # rloop's loops get that too). ``time`` is a data descriptor for the same
    # reason: the engine never has to look in the dict for a replacement.
    __slots__ = _LOOP_SLOTS

    time = _engine.TimeAttribute()

    def __init__(
        self,
        seed: int = 0,
        strategy: str = DEFAULT_STRATEGY,
        *,
        depth: int = DEFAULT_PCT_DEPTH,
        steps: int = 1000,
        tape: list[int] | None = None,
        max_steps: int | None = None,
        max_time: float | None = None,
        max_wall: float | None = None,
        step_time: float | None = None,
        executor: str = "inline",
    ) -> None:
        # Set first: if validation raises, BaseEventLoop.__del__ and __repr__
        # still find what they read (no "Exception ignored" noise).
        self._closed = True
        self.seed, self.strategy = seed, strategy
        check_seed(seed)
        options = {
            "depth": depth,
            "steps": steps,
            "max_steps": max_steps,
            "max_time": max_time,
            "max_wall": max_wall,
            "step_time": step_time,
        }
        if executor != "inline":
            options["executor"] = executor
        opts = RunOptions.build("seedloop.SeedLoop", strategy, options)
        self._setup(seed, opts, check_tape(tape) if tape is not None else None)

    @classmethod
    def _for_run(
        cls,
        seed: int,
        opts: RunOptions,
        tape: Sequence[int] | None,
        keep_steps: bool = False,
        clamp_tape: bool = False,
        walk: Any = None,
    ) -> SeedLoop:
        """A loop for one run, from options already validated (skips ``__init__``'s checks).

        ``keep_steps`` keeps the full step log (32 bytes a step; the compact
        tape is always kept). ``clamp_tape``: a tape entry past the ready list
        picks the newest entry instead of stopping the run with
        InvalidOptionError (for generated tapes: the shrinker's, Hypothesis's).
        """
        check_seed(seed)
        checked_tape = check_tape(tape) if tape is not None else None
        loop = cls.__new__(cls)
        loop._closed = True  # what __del__ reads if the set-up fails
        # By position: keywords cost more than the rest of the call.
        loop._setup(seed, opts, checked_tape, keep_steps, clamp_tape, walk)
        return loop

    def _setup(
        self,
        seed: int,
        opts: RunOptions,
        tape: list[int] | None,
        keep_steps: bool = False,
        clamp_tape: bool = False,
        walk: Any = None,
    ) -> None:
        """Set up the loop for a run (every attribute, also those a subclass's ``__init__`` set)."""
        if (
            _set_base_state is None
            or type(self).set_debug is not SeedLoop.set_debug
            or _asyncio_debug_mode()
        ):
            _BaseEventLoop.__init__(self)
        else:
            # BaseEventLoop.__init__'s attributes from a snapshot (it reads the
            # clock's resolution and the environment, and builds a WeakSet,
            # made on first use here).
            _set_base_state(self)
        self._stopping = False
        self._scheduled = []
        # Async generators in first-iteration order: shutdown closes them in
        # this order instead of the WeakSet's address order.
        self._agen_refs = []
        self.seed = seed
        self.strategy = (
            "systematic" if walk is not None else "replay" if tape is not None else opts.strategy
        )
        self._max_steps = opts.max_steps
        self._max_time = opts.max_time
        self._max_wall = opts.max_wall
        self._executor_mode = opts.executor
        self._tasks_created = 0
        self._seed_tasks_created = 0
        self._factory_tasks_created = 0
        #: Called as ``hook(task, parent)`` after each task is created (timelines).
        self._on_task_created = None
        #: A systematic walk (an ``_engine.Explorer`` plan) drives the run and stopped it.
        self._walk_stopped = False
        #: The InvalidOptionError that stopped a run whose tape named a callback
        #: that was not ready (None if none did).
        self._tape_error = None
        self._asyncgens_set = None  # made by an async generator's first iteration
        self._seedloop_net = None  # the simulated network, made on first use
        self._engine_setup(
            seed,
            opts.strategy,
            opts.depth,
            opts.steps or _DEFAULT_PCT_STEPS,
            tape,
            opts.max_steps or 0,
            opts.max_time,
            not clamp_tape,
            keep_steps,
            opts.max_wall,
            opts.step_time,
            walk,
        )

    # The loop's own transports for pipes and subprocesses are real I/O:
    # refused while a simulated world runs on this loop.
    def _make_subprocess_transport(self, *args: Any, **kwargs: Any) -> Any:
        _world.refuse_real_transport(self, "subprocess")
        return _BaseEventLoop._make_subprocess_transport(self, *args, **kwargs)

    def _make_read_pipe_transport(self, *args: Any, **kwargs: Any) -> Any:
        _world.refuse_real_transport(self, "read_pipe")
        return _BaseEventLoop._make_read_pipe_transport(self, *args, **kwargs)

    def _make_write_pipe_transport(self, *args: Any, **kwargs: Any) -> Any:
        _world.refuse_real_transport(self, "write_pipe")
        return _BaseEventLoop._make_write_pipe_transport(self, *args, **kwargs)

    # LoopCore.call_soon without PyO3's argument parsing (the hot path of every step).
    call_soon = _engine.fast_call_soon_method()
    # The same for timers (every sleep with a delay, every timeout).
    call_later = _engine.fast_call_later_method()
    call_at = _engine.fast_call_at_method()

    @property
    def _asyncgens(self) -> weakref.WeakSet[Any]:
        """BaseEventLoop's set of live async generators, made when first needed."""
        agens = self._asyncgens_set
        if agens is None:
            agens = self._asyncgens_set = weakref.WeakSet()
        return agens

    @_asyncgens.setter
    def _asyncgens(self, value: weakref.WeakSet[Any]) -> None:
        self._asyncgens_set = value

    def _has_asyncgens(self) -> bool:
        """Is an async generator of this loop alive? (Without building the set.)"""
        agens = self._asyncgens_set
        return agens is not None and len(agens) > 0

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
                setattr(self, name, self._debug_checked(name))
            else:
                with contextlib.suppress(AttributeError):
                    delattr(self, name)

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

    def run_forever(self) -> None:
        """``BaseEventLoop.run_forever``, its iterations run by the engine (no frame per iteration)."""
        if type(self)._run_once is not SeedLoop._run_once:
            # A subclass hooks every iteration (the conformance runner's clock script).
            _BaseEventLoop.run_forever(self)
            return
        if _RUN_FOREVER_SETUP is not None:  # 3.12+
            _RUN_FOREVER_SETUP(self)
            try:
                self._run_until_stopped()
            finally:
                _RUN_FOREVER_CLEANUP(self)
            return
        # 3.10 and 3.11: BaseEventLoop.run_forever, minus its loop.
        self._check_closed()
        self._check_running()
        # Coroutine origin tracking is off unless in debug mode: no call then.
        tracking = self._debug or self._coroutine_origin_tracking_enabled
        if tracking:
            self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(self._asyncgen_firstiter_hook, self._asyncgen_finalizer_hook)
            _set_running_loop(self)
            while True:
                status = self._engine_run_until_stopped()
                if status == _engine.RAN:
                    break
                self._raise_for(status)
        finally:
            self._stopping = False
            self._thread_id = None
            _set_running_loop(None)
            if tracking or self._coroutine_origin_tracking_enabled:
                self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def _run_main(self, main: asyncio.Task[Any]) -> Any:
        """``run_until_complete(main)`` for a run's main task, a task of this loop.

        The same callback on the task as ``BaseEventLoop.run_until_complete``
        (so the same steps, in the same order), without its ``ensure_future``
        and checks, which a task this loop just created passes anyway.
        """
        if (
            getattr(self.run_until_complete, "__func__", None)
            is not _BaseEventLoop.run_until_complete
        ):
            return self.run_until_complete(main)  # overridden: keep what it does
        main.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        finally:
            main.remove_done_callback(_run_until_complete_cb)
        if not main.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return main.result()

    def _run_until_stopped(self) -> None:
        while True:
            status = self._engine_run_until_stopped()
            if status == _engine.RAN:
                return
            self._raise_for(status)

    def _run_once(self) -> None:
        status = self._engine_run_once(self._stopping)
        if status == _engine.RAN or (status == _engine.IDLE and self._stopping):
            return
        self._raise_for(status)

    def _raise_for(self, status: int) -> None:
        """The error for an iteration that ended neither RAN nor idle-while-stopping."""
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
        if status == _engine.TAPE_OVERRUN:
            overrun = self._engine_tape_overrun()
            assert overrun is not None
            step, choice, ready = overrun
            self._tape_error = InvalidOptionError(
                f"the tape's entry at step {step} is {choice}, but only {ready} callback(s) "
                f"were ready (choices 0..{ready - 1}): the tape was not recorded from this "
                "scenario and seed (or the code changed since); replay Failure.tape or "
                "Failure.shrunk_tape of the same scenario, or RunResult.tape"
            )
            self.stop()
            raise self._tape_error
        if status == _engine.WALK_STOPPED:
            self._walk_stopped = True
            self.stop()
            raise _WalkStopped
        if status == _engine.STEP_BUDGET:
            raise HangError(
                f"hang: the run exceeded max_steps={self._max_steps} steps "
                "(raise max_steps if it is legitimately long)",
                self.waiting_tasks(),
            )
        if status == _engine.WALL_BUDGET:
            raise HangError(
                f"hang: the run took more than max_wall={self._max_wall}s of real time "
                f"({self.step_count()} steps, virtual time {self.time():.6g}s). This limit "
                "depends on the machine's speed, so another machine may not reproduce it; "
                "raise max_wall (or max_wall=None) if the run is legitimately long, or use "
                "max_steps for a verdict every machine repeats",
                self.waiting_tasks(),
            )
        raise HangError(
            f"hang: virtual time passed max_time={self._max_time}s "
            "(raise max_time if it is legitimately long)",
            self.waiting_tasks(),
        )

    def waiting_tasks(self) -> list[str]:
        """One line per unfinished task, in creation order: name and where it waits."""
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
        if self._debug or self._default_executor is not None:
            _BaseEventLoop.close(self)  # its debug log line, the executor's shutdown
        else:
            # The rest of BaseEventLoop.close (the engine drops its ready entries itself).
            self._closed = True
            self._scheduled.clear()
            self._executor_shutdown_called = True
        self._engine_close()

    # -- trace --------------------------------------------------------------

    def trace_fingerprint(self) -> str:
        """Hex fingerprint of every scheduling decision made so far."""
        return self._engine_fingerprint()

    def decision_tape(self) -> Tape:
        """The index chosen among ready callbacks at each step (replayable)."""
        return Tape.from_engine(*self._engine_tape_bytes())

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
                if _world.current() is None:
                    with _world.inline_waits_refused():  # runs refuse them already
                        result = func(*args)
                else:
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


# Shown where users import it from: tracebacks, reprs and pickles say seedloop.SeedLoop.
SeedLoop.__module__ = "seedloop"
