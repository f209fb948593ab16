"""seedloop: deterministic simulation testing for asyncio.

A seeded scheduler decides every interleaving, a virtual clock makes sleeps
instant, and the same seed replays the same run exactly.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._assertions import Site, always, expect, reachable, sometimes, unreachable
from ._loop import SeedLoop
from ._options import DEFAULT_STRATEGY, STRATEGIES
from ._race import Race
from ._result import Exploration, Failure, RunResult
from ._run import execute, replay, run
from ._search import explore, find_failing_seed, find_seed_where
from ._simulate import SimulationFailure, simulate
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
    from .check import eventually

__version__ = "0.1.0"

#: Public names whose module loads on first use (PEP 562): a search or a run
#: never needs the history checker, so ``import seedloop`` does not pay for it.
#: tests/test_layout.py reads this table as imports of those modules.
_LAZY = {"check": "check", "eventually": "check"}


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

# Public classes live in private modules; show them where users import them from
# (tracebacks, reprs, pickles say seedloop.SimulationFailure, not seedloop._simulate...).
for _cls in (SeedLoop, Exploration, Failure, Race, RunResult, SimulationFailure, Site):
    _cls.__module__ = __name__
del _cls

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
