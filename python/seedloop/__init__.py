"""seedloop: deterministic simulation testing for asyncio.

A seeded scheduler decides every interleaving, a virtual clock makes sleeps
instant, and the same seed replays the same run exactly.
"""

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
    DeadlockError,
    HangError,
    InvalidDelayError,
    InvalidFactoryError,
    InvalidOptionError,
    InvalidSeedError,
    InvalidStrategyError,
    InvalidWorldOptionError,
    NeverSatisfiedWarning,
    NondeterminismError,
    PropertyViolation,
    SeedloopError,
    SimulationEscapeError,
    StuckError,
    UnreachableReached,
    UnsupportedTestError,
    WorkerCrashError,
)

__version__ = "0.1.0"

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
    "DeadlockError",
    "Exploration",
    "Failure",
    "HangError",
    "InvalidDelayError",
    "InvalidFactoryError",
    "InvalidOptionError",
    "InvalidSeedError",
    "InvalidStrategyError",
    "InvalidWorldOptionError",
    "NeverSatisfiedWarning",
    "NondeterminismError",
    "PropertyViolation",
    "Race",
    "RunResult",
    "SeedLoop",
    "SeedloopError",
    "SimulationEscapeError",
    "SimulationFailure",
    "Site",
    "StuckError",
    "UnreachableReached",
    "UnsupportedTestError",
    "WorkerCrashError",
    "always",
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
