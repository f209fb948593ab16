"""seedloop: deterministic simulation testing for asyncio.

A seeded scheduler decides every interleaving, a virtual clock makes sleeps
instant, and the same seed replays the same run exactly.
"""

from ._explore import (
    Failure,
    RunResult,
    execute,
    find_failing_seed,
    find_seed_where,
    replay,
    run,
)
from ._loop import STRATEGIES, SeedLoop
from ._simulate import SimulationFailure, simulate
from .errors import (
    BlockingCallError,
    DeadlockError,
    HangError,
    InvalidDelayError,
    InvalidFactoryError,
    InvalidOptionError,
    InvalidSeedError,
    InvalidStrategyError,
    NondeterminismError,
    SeedloopError,
    SimulationEscapeError,
    StuckError,
)

__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "BlockingCallError",
    "DeadlockError",
    "Failure",
    "HangError",
    "InvalidDelayError",
    "InvalidFactoryError",
    "InvalidOptionError",
    "InvalidSeedError",
    "InvalidStrategyError",
    "NondeterminismError",
    "RunResult",
    "SeedLoop",
    "SeedloopError",
    "SimulationEscapeError",
    "SimulationFailure",
    "StuckError",
    "execute",
    "find_failing_seed",
    "find_seed_where",
    "replay",
    "run",
    "simulate",
]

from ._parallel import Exploration, explore  # noqa: E402

__all__ += ["Exploration", "explore"]
