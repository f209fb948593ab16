"""seedloop: deterministic simulation testing for asyncio.

A seeded scheduler decides every interleaving, a virtual clock makes sleeps
instant, and the same seed replays the same run exactly.
"""

import importlib
from typing import TYPE_CHECKING, Any

# The exceptions load with the package: they are small, and the engine
# resolves them when it is imported.
from .errors import (
    AlwaysViolated,
    BlockingCallError,
    ClusterError,
    DeadlockError,
    EventuallyError,
    HangError,
    HistoryError,
    InvalidDelayError,
    InvalidFactoryError,
    InvalidOptionError,
    InvalidSeedError,
    InvalidStrategyError,
    InvalidWorldOptionError,
    ModelError,
    NeverSatisfiedWarning,
    NondeterminismError,
    NoRecordingError,
    PropertyViolation,
    SeedloopError,
    SeedloopWarning,
    SimulationEscapeError,
    StuckError,
    UnreachableReached,
    UnsupportedTestError,
    WorkerCrashError,
)

if TYPE_CHECKING:  # type checkers and the API docs see the names _LAZY loads on first use
    from . import check
    from ._assertions import Site, always, expect, reachable, sometimes, unreachable
    from ._loop import SeedLoop
    from ._options import DEFAULT_STRATEGY, STRATEGIES
    from ._race import Race
    from ._result import Exploration, Failure, RunResult
    from ._run import execute, replay, run
    from ._search import explore, find_failing_seed, find_seed_where
    from ._simulate import SimulationFailure, simulate
    from .check import eventually

__version__ = "0.1.0"

#: Every other public name loads its module on first use (PEP 562), so
#: ``import seedloop`` costs only the exceptions: pytest imports the plugin
#: (and with it this package) in every session, seedloop tests or not.
#: ``_pytest_run`` and ``_pytest_unittest`` are the plugin's runners, loaded when a seedloop test runs.
#: tests/test_layout.py reads this table as imports of those modules.
_LAZY = {
    "DEFAULT_STRATEGY": "_options",
    "STRATEGIES": "_options",
    "Exploration": "_result",
    "Failure": "_result",
    "Race": "_race",
    "RunResult": "_result",
    "SeedLoop": "_loop",
    "SimulationFailure": "_simulate",
    "Site": "_assertions",
    "always": "_assertions",
    "check": "check",
    "eventually": "check",
    "execute": "_run",
    "expect": "_assertions",
    "explore": "_search",
    "find_failing_seed": "_search",
    "find_seed_where": "_search",
    "reachable": "_assertions",
    "replay": "_run",
    "run": "_run",
    "simulate": "_simulate",
    "sometimes": "_assertions",
    "unreachable": "_assertions",
    "_pytest_run": "_pytest_run",
    "_pytest_unittest": "_pytest_unittest",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = importlib.import_module(f"{__name__}.{module}")
    if name != module:
        value = getattr(value, name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "AlwaysViolated",
    "BlockingCallError",
    "ClusterError",
    "DeadlockError",
    "EventuallyError",
    "Exploration",
    "Failure",
    "HangError",
    "HistoryError",
    "InvalidDelayError",
    "InvalidFactoryError",
    "InvalidOptionError",
    "InvalidSeedError",
    "InvalidStrategyError",
    "InvalidWorldOptionError",
    "ModelError",
    "NeverSatisfiedWarning",
    "NondeterminismError",
    "NoRecordingError",
    "PropertyViolation",
    "Race",
    "RunResult",
    "SeedLoop",
    "SeedloopError",
    "SeedloopWarning",
    "SimulationEscapeError",
    "SimulationFailure",
    "Site",
    "StuckError",
    "UnreachableReached",
    "UnsupportedTestError",
    "WorkerCrashError",
    "always",
    "check",
    "eventually",
    "execute",
    "expect",
    "explore",
    "find_failing_seed",
    "find_seed_where",
    "reachable",
    "replay",
    "run",
    "simulate",
    "sometimes",
    "unreachable",
]
