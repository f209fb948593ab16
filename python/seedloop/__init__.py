"""seedloop: deterministic simulation testing for asyncio.

A seeded scheduler decides every interleaving, a virtual clock makes sleeps
instant, and the same seed replays the same run exactly.
"""

from . import check
from ._loop import SeedLoop
from ._options import DEFAULT_STRATEGY, STRATEGIES
from ._result import Exploration, Failure, RunResult
from ._run import execute, replay, run
from ._search import explore, find_failing_seed, find_seed_where
from ._simulate import SimulationFailure, simulate
from .check import eventually
from .errors import (
    BlockingCallError,
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
    NondeterminismError,
    NoRecordingError,
    SeedloopError,
    SeedloopWarning,
    SimulationEscapeError,
    StuckError,
    UnsupportedTestError,
    WorkerCrashError,
)

__version__ = "0.1.0"

# Public classes live in private modules; show them where users import them from
# (tracebacks, reprs, pickles say seedloop.SimulationFailure, not seedloop._simulate...).
for _cls in (SeedLoop, Exploration, Failure, RunResult, SimulationFailure):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "BlockingCallError",
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
    "NondeterminismError",
    "NoRecordingError",
    "RunResult",
    "SeedLoop",
    "SeedloopError",
    "SeedloopWarning",
    "SimulationEscapeError",
    "SimulationFailure",
    "StuckError",
    "UnsupportedTestError",
    "WorkerCrashError",
    "check",
    "eventually",
    "execute",
    "explore",
    "find_failing_seed",
    "find_seed_where",
    "replay",
    "run",
    "simulate",
]
