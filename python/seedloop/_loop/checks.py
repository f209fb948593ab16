"""Checks the loop's arguments: seed, strategy names, bounded ints, durations, tapes."""

from __future__ import annotations

import math

from ..errors import InvalidOptionError, InvalidSeedError

STRATEGIES = ("shuffle", "random", "pct", "pos", "strict", "fifo")
_MAX_SEED = 2**64


def check_seed(seed: object) -> int:
    """Return ``seed`` if it is a usable seed, else raise InvalidSeedError."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidSeedError(
            f"a seed must be an int in 0..2**64-1, got {seed!r} ({type(seed).__name__})"
        )
    if not 0 <= seed < _MAX_SEED:
        raise InvalidSeedError(f"a seed must be an int in 0..2**64-1, got {seed}")
    return seed


def _check_int(
    name: str,
    value: object,
    minimum: int,
    maximum: int,
    *,
    error: type[Exception] = InvalidOptionError,
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if not minimum <= value <= maximum:
        bound = f">= {minimum}" if maximum >= 2**62 else f"between {minimum} and {maximum}"
        raise error(f"{name} must be an int {bound}, got {value}")
    return value


def _check_duration(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(f"{name} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value <= 0:
        raise InvalidOptionError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_tape(tape: object) -> list[int]:
    if isinstance(tape, (str, bytes)) or not hasattr(tape, "__iter__"):
        raise InvalidOptionError(f"a tape is a list of non-negative ints, got {tape!r}")
    items = list(tape)  # type: ignore[call-overload]
    for choice in items:
        if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < 2**32:
            raise InvalidOptionError(
                f"a tape is a list of ints in 0..2**32-1 (Failure.tape / Failure.shrunk_tape), "
                f"found {choice!r}"
            )
    return items
