"""The world's options: their names, defaults and value checks (world, sleep, wall_epoch)."""

from __future__ import annotations

import datetime as _datetime_mod
import math
from typing import Any

from ..errors import SeedloopError

#: The wall clock at virtual time 0: 2025-01-01T00:00:00Z (POSIX seconds).
DEFAULT_WALL_EPOCH = 1_735_689_600
_DEFAULT_WALL_EPOCH_NS = DEFAULT_WALL_EPOCH * 10**9
SLEEP_MODES = ("advance", "error")
#: Keyword arguments of ``seedloop.run`` (and friends) that configure the world.
WORLD_OPTIONS = ("world", "sleep", "wall_epoch")


class InvalidWorldOptionError(SeedloopError, ValueError):
    """A world option (``world``, ``sleep``, ``wall_epoch``) has an unusable value."""


# The real classes, captured at import: inside a run ``datetime.datetime`` is
# the stand-in (see standins.py).
_real_datetime = _datetime_mod.datetime
_utc = _datetime_mod.timezone.utc


def _check_sleep(sleep: object) -> str:
    if sleep not in SLEEP_MODES:
        raise InvalidWorldOptionError(
            f"sleep must be one of {', '.join(map(repr, SLEEP_MODES))}, got {sleep!r}: "
            "'advance' lets time.sleep() move virtual time, "
            "'error' makes it raise BlockingCallError"
        )
    return sleep


def _epoch_ns(wall_epoch: object) -> int:
    if wall_epoch is DEFAULT_WALL_EPOCH:
        return _DEFAULT_WALL_EPOCH_NS
    if isinstance(wall_epoch, _real_datetime):
        if wall_epoch.tzinfo is None or wall_epoch.utcoffset() is None:
            raise InvalidWorldOptionError(
                f"wall_epoch={wall_epoch!r} is a naive datetime; give it a time zone, "
                "e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)"
            )
        delta = wall_epoch - _real_datetime(1970, 1, 1, tzinfo=_utc)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if isinstance(wall_epoch, bool) or not isinstance(wall_epoch, (int, float)):
        raise InvalidWorldOptionError(
            "wall_epoch must be POSIX seconds (int or float) or an aware datetime, "
            f"got {wall_epoch!r}"
        )
    if not math.isfinite(wall_epoch):
        raise InvalidWorldOptionError(f"wall_epoch must be finite, got {wall_epoch!r}")
    if isinstance(wall_epoch, int):
        return wall_epoch * 10**9
    return round(wall_epoch * 1e9)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split run keyword arguments into (loop options, validated world options)."""
    loop_options = {k: v for k, v in options.items() if k not in WORLD_OPTIONS}
    world_options = {k: options[k] for k in WORLD_OPTIONS if k in options}
    if "world" in world_options and not isinstance(world_options["world"], bool):
        raise InvalidWorldOptionError(
            "world must be True (install the deterministic world) or False, "
            f"got {world_options['world']!r}"
        )
    if "sleep" in world_options:
        _check_sleep(world_options["sleep"])
    if "wall_epoch" in world_options:
        _epoch_ns(world_options["wall_epoch"])
    return loop_options, world_options
