"""The extension resolves the seedloop.errors classes it raises when it is imported."""

import os
import subprocess
import sys
import textwrap

import pytest

import seedloop
from seedloop import _engine

# Imports seedloop._engine under a bare `seedloop` package (its __init__ does
# not run), with an optional stand-in for seedloop.errors, in a fresh process:
# an extension module is initialised only once per process.
_IMPORT_ENGINE = textwrap.dedent(
    """
    import importlib, sys, types
    pkg = types.ModuleType("seedloop")
    pkg.__path__ = [sys.argv[1]]
    sys.modules["seedloop"] = pkg
    if len(sys.argv) > 2:
        errors = types.ModuleType("seedloop.errors")
        exec(sys.argv[2], errors.__dict__)
        sys.modules["seedloop.errors"] = errors
    try:
        importlib.import_module("seedloop._engine")
    except ImportError as e:
        print(f"ImportError: {e}")
        sys.exit(3)
    print("imported", " ".join(sorted(m for m in sys.modules if m.startswith("seedloop"))))
    """
)


def _import_engine(*errors_source: str) -> subprocess.CompletedProcess[str]:
    pkg_dir = os.path.dirname(seedloop.__file__)
    return subprocess.run(
        [sys.executable, "-c", _IMPORT_ENGINE, pkg_dir, *errors_source],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_engine_imports_with_the_real_errors_module_alone():
    # seedloop.errors is plain Python: the extension's init imports it without
    # needing (or importing) anything else of the package.
    proc = _import_engine()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["imported", "seedloop", "seedloop._engine", "seedloop.errors"]


@pytest.mark.parametrize(
    ("source", "missing", "why"),
    [
        ("class InvalidDelayError(Exception): pass", "InvalidStrategyError", "is not defined"),
        (
            "InvalidDelayError = 'typo'\nclass InvalidStrategyError(Exception): pass",
            "InvalidDelayError",
            "is not a class",
        ),
        (
            "class InvalidDelayError(Exception): pass\nclass InvalidStrategyError: pass",
            "InvalidStrategyError",
            "is not an Exception subclass",
        ),
    ],
)
def test_engine_import_fails_when_a_raised_class_is_missing(source, missing, why):
    proc = _import_engine(source)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"seedloop.errors.{missing}, which {why}" in proc.stdout
    assert "reinstall seedloop" in proc.stdout


def test_engine_raises_the_resolved_classes():
    # Straight to the engine, past the Python-side checks.
    core = _engine.LoopCore()
    with pytest.raises(
        seedloop.InvalidStrategyError,
        match=f"unknown strategy \"nope\"; choose one of: {', '.join(_engine.STRATEGIES)}",
    ):
        core._engine_setup(0, "nope")
    core._engine_setup(0, "fifo")
    with pytest.raises(seedloop.InvalidDelayError, match=r"call_later\(\) delay is NaN"):
        core.call_later(float("nan"), print)


def test_strategy_names_come_from_the_engine():
    # shuffle first (the seed README's semantics), fifo last (the baseline).
    assert _engine.STRATEGIES[0] == "shuffle" and _engine.STRATEGIES[-1] == "fifo"
    assert {"random", "pct", "pos", "strict", "auto", "feasible"} <= set(_engine.STRATEGIES)
    assert tuple(seedloop.STRATEGIES) == _engine.STRATEGIES
