"""Tasks and futures hashed by creation order, and the loop's ``create_task``."""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.tasks
import contextlib
import re
import sys
from collections.abc import Callable
from typing import Any

from .. import _engine

# Bound once: code (tests, tools) may rebind the ``asyncio.BaseEventLoop`` name.
_BaseEventLoop = asyncio.base_events.BaseEventLoop

_PY310 = sys.version_info < (3, 11)
_DEFAULT_NAME = re.compile(r"Task-\d+")
# 3.12+: tasks started eagerly that have not been scheduled yet (usually empty).
_EAGER_TASKS: Any = getattr(asyncio.tasks, "_eager_tasks", ())


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
        draw = getattr(self._loop, "_engine_next_hash", None)
        h = draw() if draw is not None else id(self) >> 4
        self._seedloop_hash = h
    return h


class SeedTask(asyncio.Task):  # type: ignore[type-arg]
    """The task SeedLoop creates: an ``asyncio.Task`` with a deterministic hash."""

    # The hash, and the number the loop gave the task (its identity in the
    # trace, kept here so a step does not look it up: see the engine).
    __slots__ = ("_seedloop_hash", "_seedloop_ordinal")
    __hash__ = _creation_hash


class SeedFuture(asyncio.Future):  # type: ignore[type-arg]
    """The future ``loop.create_future()`` returns: a deterministic hash, like :class:`SeedTask`."""

    __slots__ = ("_seedloop_hash",)
    __hash__ = _creation_hash


# The same hash without a Python frame per task (the engine's C-level method;
# None, keeping the function above, if the class layout is not the expected one).
for _cls in (SeedTask, SeedFuture):
    _method = _engine.creation_hash_method(_cls)
    if _method is not None:
        _cls.__hash__ = _method  # type: ignore[method-assign,assignment]
del _cls, _method
_engine.register_ordinal_slot(SeedTask)

# Reprs and asyncio's own messages ("Task exception was never retrieved",
# "Task was destroyed but it is pending!") print the class's name: read as
# stock's, so tests and log filters matching asyncio's wording still match.
SeedTask.__name__ = SeedTask.__qualname__ = "Task"
SeedFuture.__name__ = SeedFuture.__qualname__ = "Future"
# So the classes are found under the names they show (introspection, pickle's lookup).
Task = SeedTask
Future = SeedFuture


class _SeedTasks(_BaseEventLoop):  # type: ignore[misc]
    """Tasks the loop creates are :class:`SeedTask`s (below the network mixin in the MRO)."""

    _tasks_created: int
    _seed_tasks_created: int
    _factory_tasks_created: int
    #: Called as ``hook(task, parent_task_or_None)`` after each task is created (timelines).
    _on_task_created: Callable[[asyncio.Task[Any], asyncio.Task[Any] | None], None] | None

    def _create_task_slow(
        self, coro: Any, *, name: str | None = None, context: Any = None, **kwargs: Any
    ) -> asyncio.Task[Any]:
        """``loop.create_task``; without a task factory the task is a :class:`SeedTask`.

        The engine's ``create_task`` (below) does the same without a frame for
        the usual call and sends every other call here.
        """
        if kwargs or self._task_factory is not None or self._on_task_created is not None:
            return self._create_task_hooked(coro, name, context, kwargs)
        n = self._tasks_created = self._tasks_created + 1
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if name is None:
            # asyncio numbers unnamed tasks process-wide ("Task-N"): per loop,
            # the names are a function of the seed too.
            name = f"Task-{n}"
        if context is None:
            task = SeedTask(coro, loop=self, name=name)
        elif _PY310:
            raise TypeError("create_task() got an unexpected keyword argument 'context'")
        else:
            task = SeedTask(coro, loop=self, name=name, context=context)
        self._seed_tasks_created += 1
        if self._debug and task._source_traceback:
            del task._source_traceback[-1]
        # The engine keeps every task it schedules (weakly, like asyncio's own
        # registry, in creation order): clean-up reads pending tasks from there.
        if self._seedloop_net is not None:
            self._track_on_host(task, context)
        return task

    # The method above as a C-level method, its common case done in Rust:
    # a frame, three attribute writes and an f-string cost about a fifth of
    # creating, running and awaiting a task.
    create_task = _engine.fast_create_task_method(SeedTask)
    # BaseEventLoop.get_debug (``return self._debug``) in C: every Future and
    # Task calls it in its __init__.
    get_debug = _engine.fast_get_debug_method()

    def _create_task_hooked(
        self, coro: Any, name: str | None, context: Any, kwargs: dict[str, Any]
    ) -> asyncio.Task[Any]:
        """``create_task`` with a task factory, a creation hook or extra arguments."""
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
        else:
            if name is None:
                name = f"Task-{self._tasks_created}"
            self._check_closed()
            task = SeedTask(coro, loop=self, name=name, **kwargs)
            self._seed_tasks_created += 1
            if task._source_traceback:
                del task._source_traceback[-1]
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
        own = [t for t in self._engine_live_tasks() if not t.done()]
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
