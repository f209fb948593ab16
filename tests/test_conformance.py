"""CPython's own asyncio tests on SeedLoop (fifo): a quick slice of the conformance run.

The full run is ``python tests/conformance/run_cpython_asyncio.py`` (see
docs/conformance.md).  Here (a few seconds) every module runs, except
test_runners' one known failure (a busy loop waiting for wall-clock time,
which would cost the runner's whole per-test timeout); test_tasks runs two of
its eight Task/Future implementation pairs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

RUNNER = Path(__file__).parent / "conformance" / "run_cpython_asyncio.py"

needs_cpython_tests = pytest.mark.skipif(
    importlib.util.find_spec("test.test_asyncio") is None,
    reason="this interpreter ships without CPython's test package",
)


def _runner_module() -> Any:
    spec = importlib.util.spec_from_file_location("run_cpython_asyncio", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


# The quick selection: every module; of the eight Task/Future implementation
# pairs test_tasks repeats its tests over, the two plain ones (C Task + C
# Future, Python Task + Python Future); and not test_runners' one known failure
# (it spins on sleep(0) for a real-time timer and would wait out its timeout).
QUICK_DESELECT = "Subclass|SubFuture|CTask_PyFuture|PyTask_CFuture|test_interrupt_call_soon"


@needs_cpython_tests
def test_cpython_asyncio_tests_meet_the_target(tmp_path: Path) -> None:
    runner = _runner_module()
    modules = list(runner.MODULES)
    proc, report = _run(tmp_path, "--in-process", "--deselect", QUICK_DESELECT, *modules)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = report["total"]
    ran = total["passed"] + total["failed"] + total["errors"]
    assert ran >= 450, report  # 500+ tests run on every supported CPython
    assert total["pass_percent"] >= runner.TARGET, proc.stdout
    for module in report["modules"]:
        assert not module.get("crashed"), module


@needs_cpython_tests
def test_a_test_on_another_loop_class_counts_as_an_error(tmp_path: Path) -> None:
    # Without its adapter, test_pep492 builds a bare asyncio.BaseEventLoop():
    # the runner's guard must count those tests as errors, never as passes.
    script = (
        "import sys, json\n"
        f"sys.path.insert(0, {str(RUNNER.parent)!r})\n"
        "import run_cpython_asyncio as r\n"
        "r.BARE_LOOP_BUILDERS.clear()\n"
        "s = r.run_module('test_pep492', 30.0, False)\n"
        "print(json.dumps([s['passed'], s['errors'], s['failures'][0]['detail']]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    passed, errors, detail = json.loads(proc.stdout.strip().splitlines()[-1])
    assert passed == 0 and errors >= 10
    assert "not a SeedLoop" in detail


@needs_cpython_tests
def test_exclusion_rules() -> None:
    runner = _runner_module()

    def info(method: str, source: str, module: str = "test_tasks") -> Any:
        return runner.TestInfo(f"x.{method}", module, object, method, source)

    rule = runner.exclusion_for(
        info("test_a", "loop = self.new_test_loop(gen)\nloop.advance_time(1)")
    )
    assert rule is not None and rule.name == "scripted-clock"
    # A clock script alone is run (its deadline checks included), not excluded.
    assert runner.exclusion_for(info("test_b", "loop = self.new_test_loop(gen)")) is None
    assert runner.exclusion_for(info("test_c", "loop = self.new_test_loop()")) is None
    rule = runner.exclusion_for(info("test_d", "loop = asyncio.SelectorEventLoop()"))
    assert rule is not None and rule.name == "own-loop-class"
    rule = runner.exclusion_for(
        info("test_d2", "asyncio.run(main(), loop_factory=asyncio.EventLoop)")
    )
    assert rule is not None and rule.name == "own-loop-class"
    assert runner.exclusion_for(info("test_d3", "loop = asyncio.BaseEventLoop()")) is None
    rule = runner.exclusion_for(info("test_e", "r, w = await asyncio.open_connection(h, p)"))
    assert rule is not None and rule.name == "real-io"
    src = "loop = self.new_test_loop(gen)"
    rule = runner.exclusion_for(info("test_stop_while_run_in_complete", src))
    assert rule is not None and rule.name == "testloop-clock-artifact"
    # The artifact list is keyed by module: the same name elsewhere runs.
    assert runner.exclusion_for(info("test_get_cancelled", "q.get()", "test_queues")) is None


# -- loop behaviours the conformance run found, checked against stock asyncio --


@pytest.fixture(params=["stock", "seedloop"])
def loop(request: pytest.FixtureRequest) -> Iterator[Any]:
    import asyncio

    import seedloop

    if request.param == "stock":
        ev = asyncio.new_event_loop()
    else:
        ev = seedloop.SeedLoop(0, "fifo", executor="thread")
    try:
        yield ev
    finally:
        ev.close()


def test_ready_shows_the_engine_queue(loop: Any) -> None:
    assert len(loop._ready) == 0 and not loop._ready
    loop.call_soon(lambda: None)
    loop.call_soon(lambda: None)
    assert len(loop._ready) == 2 and loop._ready
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(loop._ready) == 0


def test_shutdown_default_executor_waits_for_its_thread(loop: Any) -> None:
    assert loop.run_until_complete(loop.run_in_executor(None, sum, [1, 2])) == 3
    loop.run_until_complete(loop.shutdown_default_executor())  # no DeadlockError
    with pytest.raises(RuntimeError, match="shutdown"):
        loop.run_in_executor(None, sum, [1])


async def _coro() -> None:
    pass


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at", "call_soon_threadsafe"])
def test_debug_mode_refuses_coroutines(loop: Any, method: str) -> None:
    args = (_coro,) if method.startswith("call_soon") else (1, _coro)
    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used"):
        getattr(loop, method)(*args)
    loop.set_debug(False)
    getattr(loop, method)(*args).cancel()  # unchecked again outside debug mode


def test_debug_mode_refuses_calls_from_other_threads(loop: Any) -> None:
    import threading

    errors: list[BaseException] = []

    def from_thread() -> None:
        try:
            loop.call_soon(lambda: None)
        except RuntimeError as exc:
            errors.append(exc)
        loop.call_soon_threadsafe(lambda: None)  # allowed

    async def main() -> None:
        thread = threading.Thread(target=from_thread)
        thread.start()
        thread.join()

    loop.set_debug(True)
    loop.run_until_complete(main())
    assert len(errors) == 1 and "Non-thread-safe" in str(errors[0])


def test_debug_mode_keeps_subclass_overrides() -> None:
    import seedloop

    class Counting(seedloop.SeedLoop):
        calls = 0

        def call_soon(self, *args: Any, **kwargs: Any) -> Any:
            Counting.calls += 1
            return super().call_soon(*args, **kwargs)

    loop = Counting(0, "fifo")
    try:
        loop.set_debug(True)
        loop.call_soon(lambda: None)
        assert Counting.calls == 1
    finally:
        loop.close()


def _boom(x: int) -> None:
    raise ZeroDivisionError(x)


@pytest.mark.parametrize("debug", [False, True])
def test_callback_error_message_matches_stock(debug: bool) -> None:
    import asyncio

    import seedloop

    messages = []
    for loop in (asyncio.new_event_loop(), seedloop.SeedLoop(0, "fifo")):
        try:
            loop.set_debug(debug)
            seen: list[dict[str, Any]] = []
            loop.set_exception_handler(lambda _loop, ctx, seen=seen: seen.append(ctx))
            loop.call_soon(_boom, 1)
            loop.call_soon(loop.stop)
            loop.run_forever()
            assert isinstance(seen[0]["exception"], ZeroDivisionError)
            messages.append(seen[0]["message"])
        finally:
            loop.close()
    # "Exception in callback _boom(1) at <file>:<line>" (3.13 omits the
    # arguments outside debug mode), not the handle's repr.
    assert messages[0] == messages[1]
    assert re.fullmatch(r"Exception in callback _boom\((1)?\) at .+:\d+", messages[1])


def test_seedloop_does_not_depend_on_the_asyncio_name() -> None:
    import asyncio

    import seedloop

    real = asyncio.BaseEventLoop
    asyncio.BaseEventLoop = lambda: None  # type: ignore[misc, assignment]
    try:
        loop = seedloop.SeedLoop(0, "fifo")
        loop.close()
    finally:
        asyncio.BaseEventLoop = real  # type: ignore[misc]
