"""The failure database: failing seeds and their minimal schedules kept as plain JSON, replayed first next time.

Like Hypothesis' example database: when a test (pytest node id) or a
scenario (``MODULE:FN`` on the command line) fails, its seed, minimal tape and
what it raised are written to ``.seedloop/`` (``SEEDLOOP_DB``, pytest's
``--seedloop-db``/``seedloop_db``, the command's ``--db`` choose another
directory; ``off`` turns it off). The next search of the same test, with the
same strategy and options, runs the saved seeds before its seed range, so a
failure found once is found again at once, even when it lies outside the
range. A saved seed that passes, and whose saved schedule passes too, is
dropped: the bug was fixed.

Each entry is one JSON file of plain data (seed, strategy, options, tape,
timing, outcome, exception type and message, versions); nothing in it is
ever executed or unpickled, so a checked-out or shared ``.seedloop/`` cannot
run anything. A file that is corrupt, belongs to another key, or was written
by a newer format is skipped with a :class:`~seedloop.SeedloopWarning`.

Only the process that searches reads and writes it, outside any run (a run's
world replaces file and randomness functions); worker processes never touch
it. Writes go to a temporary file in the same directory and are renamed
over the entry (atomic), and an entry's file name is a hash of its key and
its seed: concurrent writers (``-j``, pytest-xdist) of different entries never
collide, and writing the same entry twice is idempotent.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import _world
from ._options import DB_ENV_VAR, DB_OFF, RunOptions
from ._parallel import resolve_factory
from ._result import Exploration, Failure
from ._run import Factory, run_seed
from ._search import explore
from .errors import SeedloopError, SeedloopWarning

#: The entry format this version writes (and the newest it reads).
FORMAT = 1
#: Tapes and timing longer than this are not stored (the seed still is).
MAX_TAPE = 100_000
#: Files larger than this are not read (no entry is anywhere near it).
_MAX_FILE = 16 * 2**20
#: Options that do not change a run's schedule: not part of the key.
_NOT_IN_KEY = ("max_wall",)


def _version() -> str:
    try:
        return metadata.version("seedloop")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def _plain(value: Any) -> Any:
    """An option's value as JSON data (repr for what JSON has no form for)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@dataclass(frozen=True)
class Key:
    """What makes two searches the same: test identity, strategy and the options that matter."""

    test: str
    strategy: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, test: str, strategy: str, options: Mapping[str, Any]) -> Key:
        kept = sorted((k, _plain(v)) for k, v in options.items() if k not in _NOT_IN_KEY)
        return cls(test, strategy, tuple(kept))

    def as_json(self) -> dict[str, Any]:
        return {"test": self.test, "strategy": self.strategy, "options": dict(self.options)}

    @property
    def digest(self) -> str:
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass
class Entry:
    """One saved failure (plain data)."""

    seed: int
    tape: list[int] | None = None
    timing: list[int] = field(default_factory=list)
    outcome: str = ""
    exception_type: str = ""
    exception_message: str = ""
    path: Path | None = None


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in value
    )


class FailureDatabase:
    """A directory of saved failures, one JSON file per (key, seed)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FailureDatabase({str(self.path)!r})"

    def _file(self, key: Key, seed: int) -> Path:
        return self.path / f"{key.digest}-{seed}.json"

    @staticmethod
    def _outside_runs(what: str) -> None:
        # Inside a run, files, randomness and clocks belong to the simulation.
        if _world.current() is not None:
            raise SeedloopError(
                f"the failure database cannot be {what} inside a seedloop run; "
                "read and write it before or after the search"
            )

    def load(self, key: Key) -> list[Entry]:
        """The entries saved under ``key``, by seed; unusable files skipped with a warning."""
        self._outside_runs("read")
        try:
            names = sorted(os.listdir(self.path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            _warn(f"cannot list the failure database {str(self.path)!r} ({exc}); not using it")
            return []
        prefix = key.digest + "-"
        entries = []
        for name in names:
            if name.startswith(prefix) and name.endswith(".json"):
                entry = self._read(self.path / name, key)
                if entry is not None:
                    entries.append(entry)
        entries.sort(key=lambda e: e.seed)
        return entries

    def _read(self, path: Path, key: Key) -> Entry | None:
        def skip(why: str) -> None:
            _warn(f"skipping {str(path)!r} in the failure database: {why}; delete the file")

        try:
            if path.stat().st_size > _MAX_FILE:
                skip("it is too large to be an entry")
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None  # deleted meanwhile by another process
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            skip(f"it is not a JSON entry ({type(exc).__name__}: {exc})")
            return None
        if not isinstance(data, dict) or not isinstance(data.get("format"), int):
            skip("it is not a seedloop failure entry")
            return None
        if data["format"] > FORMAT:
            skip(
                f"it was written in entry format {data['format']} by seedloop "
                f"{data.get('seedloop_version', '?')}; this version reads format {FORMAT} "
                "(upgrade seedloop to replay it)"
            )
            return None
        if data.get("key") != key.as_json():
            skip("it belongs to another test, strategy or options than its file name says")
            return None
        seed, tape, timing = data.get("seed"), data.get("tape"), data.get("timing", [])
        exception = data.get("exception") or {}
        if (
            isinstance(seed, bool)
            or not isinstance(seed, int)
            or not 0 <= seed < 2**64
            or path.name != f"{key.digest}-{seed}.json"
            or not (tape is None or _ints(tape))
            or not _ints(timing)
            or not isinstance(exception, dict)
        ):
            skip("its seed, tape or timing is not what seedloop writes")
            return None
        return Entry(
            seed=seed,
            tape=tape,
            timing=timing,
            outcome=str(data.get("outcome", "")),
            exception_type=str(exception.get("type", "")),
            exception_message=str(exception.get("message", "")),
            path=path,
        )

    def save(self, key: Key, failure: Failure) -> Path:
        """Write ``failure`` under ``key`` (atomically; the same entry twice is one file)."""
        self._outside_runs("written")
        tape = failure.shrunk_tape if failure.shrunk_tape is not None else failure.tape
        tape_list = list(tape) if tape is not None and len(tape) <= MAX_TAPE else None
        timing = list(failure.timing) if len(failure.timing) <= MAX_TAPE else []
        exc = failure.exception
        data = {
            "format": FORMAT,
            "seedloop_version": _version(),
            "key": key.as_json(),
            "seed": failure.seed,
            "tape": tape_list,
            "tape_is_minimal": failure.shrunk_tape is not None,
            "timing": timing,
            "outcome": f"raised {type(exc).__qualname__}: {exc}",
            "exception": {"type": type(exc).__qualname__, "message": str(exc)},
        }
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        self.path.mkdir(parents=True, exist_ok=True)
        target = self._file(key, failure.seed)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temp, target)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        return target

    def delete(self, entry: Entry) -> None:
        """Drop ``entry`` (already gone is fine: another process dropped it)."""
        self._outside_runs("written")
        if entry.path is not None:
            try:
                entry.path.unlink()
            except FileNotFoundError:
                pass


def _warn(message: str) -> None:
    warnings.warn(message, SeedloopWarning, stacklevel=3)


def database_at(setting: str | os.PathLike[str] | None, default: str | os.PathLike[str]) -> (
    FailureDatabase | None
):
    """The database a setting names: an explicit path, else ``SEEDLOOP_DB``, else ``default``.

    ``off`` (in the setting or the variable) means no database.
    """
    chosen = setting if setting is not None else os.environ.get(DB_ENV_VAR) or default
    if str(chosen).strip().lower() == DB_OFF:
        return None
    return FailureDatabase(chosen)


class _SavedFirst:
    """The saved seeds, then the seed range without them (lazily; sized when the range is)."""

    def __init__(self, saved: list[int], seeds: Iterable[int]) -> None:
        self.saved = saved
        self.seeds = seeds
        self._set = set(saved)

    def __iter__(self) -> Iterator[int]:
        yield from self.saved
        for seed in self.seeds:
            if seed not in self._set:
                yield seed

    def __len__(self) -> int:
        if not hasattr(self.seeds, "__len__"):
            raise TypeError("the seed range has no length")
        overlap = sum(1 for s in self._set if s in self.seeds)  # type: ignore[operator]
        return len(self.saved) + len(self.seeds) - overlap  # type: ignore[arg-type]


@dataclass
class DatabaseRun:
    """What the database did around one search."""

    database: FailureDatabase | None
    #: The saved seeds that ran before the seed range, in that order.
    replayed: list[int] = field(default_factory=list)
    #: Saved seeds dropped because they (and their schedules) pass now.
    dropped: list[int] = field(default_factory=list)
    #: Where the search's failure was saved (None: no failure, or no database).
    saved: Path | None = None

    def describe(self) -> str:
        if self.database is None:
            return "failure database: off"
        parts = [f"failure database {str(self.database.path)!r}:"]
        if self.replayed:
            parts.append(f"saved seed(s) {', '.join(map(str, self.replayed))} ran first;")
        else:
            parts.append("no saved seed for this search;")
        if self.dropped:
            parts.append(f"dropped {', '.join(map(str, self.dropped))} (they pass now);")
        parts.append(f"failure saved to {self.saved.name}" if self.saved else "nothing saved")
        return " ".join(parts)


def explore_saved_first(
    database: FailureDatabase | None,
    key: Key,
    factory: Factory | str,
    seeds: Iterable[int],
    *,
    strategy: str,
    options: Mapping[str, Any],
    **search: Any,
) -> tuple[Exploration, DatabaseRun]:
    """:func:`seedloop.explore` that runs ``key``'s saved seeds first and updates the database.

    A failure found is saved; a saved seed that passed, and whose saved
    schedule passes too, is dropped. ``search`` goes to ``explore`` as is.
    """
    run = DatabaseRun(database)
    if database is None:
        return explore(factory, seeds, strategy=strategy, **search, **options), run
    entries = database.load(key)
    run.replayed = [e.seed for e in entries]
    ordered: Iterable[int] = seeds
    if entries:
        ordered = _SavedFirst([e.seed for e in entries], seeds)
        if not hasattr(seeds, "__len__"):
            ordered = iter(ordered)
    summary = explore(factory, ordered, strategy=strategy, **search, **options)
    failing = {position for position, _ in summary.failing_seeds}
    for position, entry in enumerate(entries):
        if summary.failure_index is not None and position > summary.failure_index:
            break  # stopped at the failure: the later saved seeds did not run
        if position >= summary.seeds_run or position in failing:
            continue
        scenario = resolve_factory(factory) if isinstance(factory, str) else factory
        if _schedule_passes(scenario, entry, strategy, options):
            database.delete(entry)
            run.dropped.append(entry.seed)
        else:
            _warn(
                f"seed {entry.seed} of {key.test} now passes, but its saved schedule still "
                f"fails ({entry.outcome}): the code changed the schedule, not the bug? "
                f"Kept in the failure database ({entry.path}); replay it with "
                f"seedloop.replay(..., {entry.tape!r}, seed={entry.seed})"
            )
    if summary.failure is not None:
        try:
            run.saved = database.save(key, summary.failure)
        except OSError as exc:  # a read-only checkout, a full disk: the search still reports
            _warn(
                f"cannot save seed {summary.failure.seed} in the failure database "
                f"{str(database.path)!r} ({exc}); set --seedloop-db / --db / SEEDLOOP_DB to a "
                "writable directory, or 'off'"
            )
    return summary, run


def _schedule_passes(
    factory: Factory, entry: Entry, strategy: str, options: Mapping[str, Any]
) -> bool:
    """Does the entry's saved tape (or timing) pass now? (No tape saved: yes.)"""
    api = "seedloop failure database"
    opts = RunOptions.build(api, strategy, {k: v for k, v in options.items() if k != "steps"})
    if entry.timing:
        result = run_seed(factory, entry.seed, opts.with_strategy("fifo"), timing=entry.timing)
    elif entry.tape is not None:
        result = run_seed(factory, entry.seed, opts, tape=entry.tape, clamp_tape=True)
    else:
        return True
    return result.exception is None
