"""seedloop's exceptions: every one says what went wrong and what to do."""

from __future__ import annotations

import os


class SeedloopError(Exception):
    """Base class of every error seedloop raises itself."""


class InvalidFactoryError(SeedloopError, TypeError):
    """The scenario is not a zero-argument callable returning a coroutine."""


class InvalidSeedError(SeedloopError, ValueError):
    """A seed or a seed range cannot be used."""


class InvalidStrategyError(SeedloopError, ValueError):
    """Unknown exploration strategy or bad strategy parameters."""


class InvalidOptionError(SeedloopError, ValueError):
    """An option of a run or a loop (max_steps, depth, tape...) has an unusable value or name."""


class InvalidWorldOptionError(SeedloopError, ValueError):
    """A world option (``world``, ``sleep``, ``wall_epoch``) has an unusable value."""


class InvalidDelayError(SeedloopError, ValueError):
    """A timer delay or deadline that is NaN, negative or not a number."""


class StuckError(SeedloopError):
    """The run cannot make progress; ``waiting`` lists each waiting task and where it waits."""

    def __init__(self, message: str, waiting: list[str] | None = None) -> None:
        self.waiting = list(waiting or [])
        if self.waiting:
            message = message + "\n" + "\n".join("  " + line for line in self.waiting)
        super().__init__(message)


class DeadlockError(StuckError):
    """Nothing is ready, no timer is pending, and tasks still wait."""


class HangError(StuckError):
    """The run exceeded its step or virtual-time budget."""


class NondeterminismError(SeedloopError):
    """The same seed produced two different traces."""


class BlockingCallError(SeedloopError):
    """A blocking call (e.g. time.sleep) ran inside a simulation."""


class SimulationEscapeError(SeedloopError, NotImplementedError):
    """Real I/O (socket, thread, subprocess) was attempted inside a simulation.

    It subclasses NotImplementedError so libraries that fall back on it
    (aiohttp's sendfile, for instance) do so instead of failing.
    """


class WorkerCrashError(SeedloopError):
    """A seed's run ended the worker process (a segfault, ``os._exit``, a signal).

    ``seed`` is the seed that was running (None if the worker died before
    running any), ``exitcode`` the process status: negative for a signal.
    """

    def __init__(
        self, message: str, seed: int | None = None, exitcode: int | None = None
    ) -> None:
        self.seed = seed
        self.exitcode = exitcode
        super().__init__(message)


class ClusterError(SeedloopError):
    """Exploring on a cluster is not possible: Dask distributed is not installed, or the
    scheduler cannot be reached; the message says how to install or start it."""


class UnsupportedTestError(SeedloopError):
    """A test marked for seedloop that it cannot run (it picks its own loop, or needs an
    async fixture wider than one seed); the message names the reason and the fix."""


class SeedloopWarning(UserWarning):
    """Something seedloop skipped or could not do, that does not stop the run (for example
    an unreadable entry of the failure database); the message says what to do."""


class NoRecordingError(SeedloopError, ValueError):
    """A failure has no recorded timeline (it was not explained) to export or draw."""


class HistoryError(SeedloopError, ValueError):
    """A history given to ``seedloop.check`` is malformed; the message names the entry and the fix."""


class ModelError(SeedloopError, TypeError):
    """A consistency model is unknown, or a user model's ``init``/``step``/``partition`` misbehaved."""


class EventuallyError(SeedloopError, AssertionError):
    """``seedloop.eventually``: the condition was still false when its virtual time ran out."""


class PropertyViolation(AssertionError):
    """A property declared with seedloop.always / seedloop.unreachable did not hold.

    ``kind`` is "always" or "unreachable", ``name`` the message or site name,
    ``file`` and ``line`` the call that failed. It is an AssertionError: the
    run fails as an ``assert`` would, and searches shrink and report it.
    """

    def __init__(self, kind: str, name: str, file: str, line: int) -> None:
        self.kind, self.name, self.file, self.line = kind, name, file, line
        where = f"{os.path.basename(file)}:{line}"
        if kind == "unreachable":
            text = f"unreachable {name!r} was reached at {where}"
        else:
            text = f"always {name!r} was violated at {where}"
        super().__init__(text)

    def __reduce__(self) -> tuple[type, tuple[str, str, str, int]]:
        return (type(self), (self.kind, self.name, self.file, self.line))


class AlwaysViolated(PropertyViolation):
    """``seedloop.always(condition, message)`` saw a false condition."""


class UnreachableReached(PropertyViolation):
    """``seedloop.unreachable(name)`` ran."""


class NeverSatisfiedWarning(UserWarning):
    """A search found no failure, but some seedloop.sometimes / reachable site was never
    satisfied in any of its runs: that path was never tested."""
