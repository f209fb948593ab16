"""Which tests of a pytest suite seedloop can take over, under what settings, and their fixtures run inside each seed.

Used by the pytest plugin: ``not_simulable(item)`` says why a collected test
cannot run on a SeedLoop (None when it can), and a function-scoped fixture
that must live on the seed's loop is set up as a :class:`Deferred` that
``FixtureRun`` sets up and tears down inside every seed's run.
"""

from __future__ import annotations

import inspect
import itertools
import os
import sys
import unittest
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import pytest

_PYTEST_ASYNCIO = "pytest_asyncio.plugin"
#: The marker's name: ``@pytest.mark.seedloop(...)``.
MARKER = "seedloop"
#: Fixtures through which a suite makes or picks its own event loop.
_LOOP_FIXTURES = {
    "event_loop": "uses an 'event_loop' fixture (a loop the suite makes itself)",
    "_asyncio_loop_factory": "its loop comes from a pytest_asyncio_loop_factories hook",
}


@dataclass(frozen=True)
class CommandLine:
    """The command line's say over every seedloop test of a session."""

    seeds: Iterable[int] | None
    strategy: str | None
    replay: int | None
    all: bool = False
    #: The failure database's settings: (``--seedloop-db`` or None, the
    #: default directory), or None for none.
    database: tuple[str | None, str | os.PathLike[str]] | None = None


def is_simulate_wrapper(obj: object) -> bool:
    """``obj`` is a test decorated with ``@seedloop.simulate``."""
    return isinstance(getattr(obj, "seedloop", None), dict) and hasattr(obj, "__wrapped__")


def asked_for_seedloop(item: pytest.Item) -> bool:
    """``item`` asked for seedloop itself (the marker, ``@simulate``), not only ``--seedloop-all``."""
    return item.get_closest_marker(MARKER) is not None or is_simulate_wrapper(
        getattr(item, "obj", None)
    )


def is_async_function(func: object) -> bool:
    func = getattr(func, "__func__", func)
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def is_coroutine_test(item: pytest.Item) -> bool:
    func = getattr(item, "obj", None)
    func = getattr(func, "__func__", func)  # a staticmethod or bound method
    return inspect.iscoroutinefunction(func)


def is_unittest_item(item: pytest.Item) -> bool:
    """``item`` is a test method of a ``unittest.TestCase`` (pytest's ``TestCaseFunction``)."""
    return type(item).__name__ in ("TestCaseFunction", "SeedloopTestCase")


def isolated_case_reason(cls: type) -> str | None:
    """Why an async test method of unittest class ``cls`` cannot run on a SeedLoop (None: it can)."""
    if not issubclass(cls, unittest.IsolatedAsyncioTestCase):
        return "an async method of a unittest.TestCase that is not an IsolatedAsyncioTestCase"
    if sys.version_info >= (3, 13) and getattr(cls, "loop_factory", None) is not None:
        return "its IsolatedAsyncioTestCase sets loop_factory (it picks its own loop)"
    return None


def not_simulable(item: pytest.Item) -> str | None:
    """Why seedloop cannot run ``item`` on its loop; None when it can."""
    if not isinstance(item, pytest.Function):
        return "sync test"  # doctests and other plugins' items
    obj = item.obj
    func = getattr(obj, "__func__", obj)
    if is_unittest_item(item):
        if inspect.iscoroutinefunction(func):
            return isolated_case_reason(item.cls)
        return "sync test"
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", None)
    if getattr(obj, "is_hypothesis_test", False) and inspect.iscoroutinefunction(inner):
        return "a Hypothesis @given test (run its scenario with seedloop.hypothesis instead)"
    if inspect.isasyncgenfunction(func):
        return "an async generator, not a test function"
    if not inspect.iscoroutinefunction(func):
        return "sync test"
    if item.get_closest_marker("trio") is not None:
        return "a trio test"
    asyncio_marker = item.get_closest_marker("asyncio")
    if asyncio_marker is not None and asyncio_marker.kwargs.get("loop_factories"):
        return "mark.asyncio(loop_factories=...) picks its own loop"
    callspec = getattr(item, "callspec", None)
    params = getattr(callspec, "params", {})
    for name in params:
        if name in _LOOP_FIXTURES:  # pytest-asyncio's loop factories parametrize this
            return _LOOP_FIXTURES[name]
    if "anyio_backend" in params:
        reason = anyio_backend_reason(params["anyio_backend"])
        if reason:
            return reason
    return fixture_reason(item)


def fixture_reason(item: pytest.Function) -> str | None:
    """A fixture of ``item`` that binds it to a loop other than the seed's, as a reason."""
    defs_by_name = item._fixtureinfo.name2fixturedefs
    for name in item.fixturenames:
        if name in _LOOP_FIXTURES:
            return _LOOP_FIXTURES[name]
        defs = defs_by_name.get(name)
        if not defs:
            continue
        fixturedef = defs[-1]  # the one that applies here
        if name == "event_loop_policy" and fixturedef.func.__module__ != _PYTEST_ASYNCIO:
            return "overrides the event_loop_policy fixture (the suite picks its own loop)"
        if fixturedef.scope != "function" and is_async_function(fixturedef.func):
            return (
                f"async fixture {name!r} has scope {fixturedef.scope!r}: what it creates is "
                "bound to one event loop, and every seed runs on a fresh one (make it "
                "function-scoped: it then runs inside each seed)"
            )
    return None


def anyio_backend_reason(backend: object) -> str | None:
    """Why anyio's ``anyio_backend`` value keeps a test off seedloop (None: asyncio)."""
    name, options = (backend, {}) if isinstance(backend, str) else (backend[0], backend[1])  # type: ignore[index]
    if name != "asyncio":
        return f"runs on anyio's {name!r} backend"
    chosen = sorted(k for k in ("use_uvloop", "loop_factory") if options.get(k))
    if chosen:
        return f"anyio backend option {', '.join(chosen)} picks its own loop"
    return None


# -- fixtures that live inside each seed ----------------------------------------


@dataclass(eq=False)
class Deferred:
    """A function-scoped fixture set up inside each seed's run, on that seed's loop.

    pytest holds this placeholder as the fixture's value; the test sees the
    real value, which :class:`FixtureRun` makes once per seed.
    """

    name: str
    func: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<fixture {self.name!r}, set up inside each seed's run>"


def returns(value: object) -> Callable[..., Any]:
    """A plain function returning ``value``: what a deferred fixture's setup calls."""

    def placeholder(**kwargs: Any) -> Any:
        return value

    return placeholder


def deferred_fixture(
    name: str, original: Callable[..., Any], func: Callable[..., Any], kwargs: dict[str, Any]
) -> Callable[..., Any]:
    """What pytest runs instead of fixture ``name`` (``original``, bound as ``func``)
    of a simulated test, so that each seed's run sets it up: its value is a
    :class:`Deferred`. pytest's own ``tmp_path`` and ``caplog`` need help to
    give each seed a value of its own (below)."""
    if is_pytest_fixture(original) and name == "tmp_path":
        return seed_directories(name, original)
    if is_pytest_fixture(original) and name == "caplog":
        func = cleared_per_seed(func)
    return returns(Deferred(name, func, kwargs))


def is_pytest_fixture(func: Callable[..., Any]) -> bool:
    """``func`` is one of pytest's own fixtures (``tmp_path``, ``caplog``...)."""
    return getattr(func, "__module__", "").startswith("_pytest.")


def seed_directories(name: str, tmp_path: Callable[..., Any]) -> Callable[..., Any]:
    """pytest's ``tmp_path`` fixture, giving every seed a fresh directory of its own.

    The directory pytest makes (and cleans up, by its retention policy) is set
    up once per test, as usual; each seed gets a new empty one inside it.
    pytest's fixture cannot simply run once per seed: its tear-down reads the
    test's reports, which do not exist yet inside the call.
    """

    def fixture(**kwargs: Any) -> Any:
        setup = tmp_path(**kwargs)
        shared = next(setup)
        seeds = itertools.count()

        def fresh() -> Any:
            path = shared / f"seed-{next(seeds)}"
            path.mkdir()
            return path

        yield Deferred(name, fresh)
        next(setup, None)

    return fixture


def cleared_per_seed(caplog: Callable[..., Any]) -> Callable[..., Any]:
    """pytest's ``caplog`` fixture, run inside each seed, without earlier seeds' records.

    Its records live in the test's log handler, which pytest keeps for the
    whole call: a fresh fixture would still show every earlier seed's.
    """

    def fixture(**kwargs: Any) -> Any:
        setup = caplog(**kwargs)
        capture = next(setup)
        capture.clear()
        yield capture
        next(setup, None)

    return fixture


class FixtureTeardownError(Exception):
    """A fixture that yields more than once (as pytest says it)."""


class FixtureRun:
    """One seed's deferred fixtures: set up on first use, torn down last-in first-out.

    ``real_io`` (a context manager factory) surrounds a sync fixture's own
    code, set-up and tear-down: outside a seedloop test it would run outside
    the simulation, and may reach the real world (a free port, a server).
    """

    def __init__(self, real_io: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        self._values: dict[Deferred, Any] = {}
        self._open: list[tuple[Deferred, Any]] = []
        self._real_io = real_io

    async def value(self, value: Any) -> Any:
        if not isinstance(value, Deferred):
            return value
        if value in self._values:
            return self._values[value]
        kwargs = {name: await self.value(arg) for name, arg in value.kwargs.items()}
        func = value.func
        if inspect.isasyncgenfunction(func):
            gen = func(**kwargs)
            result = await gen.__anext__()
            self._open.append((value, gen))
        elif inspect.iscoroutinefunction(func):
            result = await func(**kwargs)
        elif inspect.isgeneratorfunction(func):
            with self._real_io():
                gen = func(**kwargs)
                result = next(gen)
            self._open.append((value, gen))
        else:
            with self._real_io():
                result = func(**kwargs)
        if isinstance(result, Deferred):
            # A fixture returning another through request.getfixturevalue(),
            # which hands out that fixture's placeholder.
            result = await self.value(result)
        self._values[value] = result
        return result

    async def close(self) -> BaseException | None:
        """Tear every fixture down (all of them, whatever fails); the first error."""
        first: BaseException | None = None
        while self._open:
            deferred, gen = self._open.pop()
            try:
                if inspect.isasyncgen(gen):
                    try:
                        await gen.__anext__()
                    except StopAsyncIteration:
                        continue
                    await gen.aclose()
                else:
                    try:
                        with self._real_io():
                            next(gen)
                    except StopIteration:
                        continue
                    gen.close()
                raise FixtureTeardownError(f"fixture {deferred.name!r} yields more than once")
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                first = first or exc
        return first


async def run_test(
    fn: Callable[..., Any],
    funcargs: dict[str, Any],
    names: Iterable[str],
    argnames: Iterable[str],
    real_io: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Any:
    """Set up ``names``' deferred fixtures (pytest's order), run the test, tear down.

    A failing teardown fails the seed; when the test itself failed, its
    exception wins and the teardown's is added as a note. ``real_io``: see
    :class:`FixtureRun`.
    """
    run = FixtureRun(real_io)
    try:
        values = {name: await run.value(funcargs[name]) for name in names if name in funcargs}
        result = await fn(**{name: values[name] for name in argnames})
    except BaseException as exc:
        error = await run.close()
        if error is not None and hasattr(exc, "add_note"):
            exc.add_note(f"and then a fixture's teardown raised {type(error).__name__}: {error}")
        raise
    error = await run.close()
    if error is not None:
        raise error
    return result
