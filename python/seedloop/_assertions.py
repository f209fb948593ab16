"""Antithesis-style properties: always / sometimes / reachable / unreachable, and their per-run record.

``always(cond, message)`` and ``unreachable(name)`` fail the run when they do
not hold; ``sometimes(cond, name)`` and ``reachable(name)`` only record that a
site was evaluated and satisfied. A site is its kind, its name and the source
line of the call. Searches aggregate the records over every run and report the
``sometimes``/``reachable`` sites that were never satisfied: a fault path that
never ran is a finding.

A site is known once it has been evaluated (a call that never executes in any
run cannot be reported as "never reached" unless it is declared up front with
:func:`expect`).
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from .errors import AlwaysViolated, InvalidOptionError, NeverSatisfiedWarning, UnreachableReached

#: kinds whose sites must be satisfied at least once in an exploration
GOALS = ("sometimes", "reachable")

#: ``(kind, name, file, line)`` -> [evaluations, satisfied] of the run in
#: progress; None outside a run (the calls then cost one global lookup).
_active: dict[tuple[str, str, str, int], list[int]] | None = None
#: The first always/unreachable violation of the run in progress: it fails the
#: run even when the code under test swallowed the exception.
_violation: BaseException | None = None
#: Sites declared with expect(): reported as never satisfied if no run reached them.
_expected: dict[tuple[str, str, str, int], None] = {}


def _site(kind: str, name: str, depth: int = 2) -> tuple[str, str, str, int]:
    frame = sys._getframe(depth)
    return (kind, name, frame.f_code.co_filename, frame.f_lineno)


def _record(key: tuple[str, str, str, int], satisfied: bool) -> None:
    active = _active
    if active is None:
        return
    stats = active.get(key)
    if stats is None:
        stats = active[key] = [0, 0]
    stats[0] += 1
    if satisfied:
        stats[1] += 1


def _check_name(api: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidOptionError(
            f"seedloop.{api}(..., name): the site needs a non-empty str name (it is how the "
            f"exploration reports it), got {name!r}"
        )
    return name


def always(condition: Any, message: str) -> None:
    """Assert ``condition`` in every run: a false one fails the run with AlwaysViolated."""
    if _active is None:
        if not condition:
            raise AlwaysViolated("always", _check_name("always", message), *_site("", "")[2:])
        return
    key = _site("always", _check_name("always", message))
    _record(key, bool(condition))
    if not condition:
        _fail(AlwaysViolated("always", message, key[2], key[3]))


def unreachable(name: str) -> None:
    """Mark code that must never run: reaching it fails the run with UnreachableReached."""
    key = _site("unreachable", _check_name("unreachable", name))
    _record(key, False)
    _fail(UnreachableReached("unreachable", name, key[2], key[3]))


def sometimes(condition: Any, name: str) -> None:
    """Record that ``condition`` held at this site; an exploration reports the sites where it never did."""
    if _active is None:
        return
    _record(_site("sometimes", _check_name("sometimes", name)), bool(condition))


def reachable(name: str) -> None:
    """Record that this line ran; an exploration reports the reachable sites that never ran."""
    if _active is None:
        return
    _record(_site("reachable", _check_name("reachable", name)), True)


def expect(kind: str, name: str, file: str, line: int) -> None:
    """Declare a sometimes/reachable site up front (by kind, name, file and line), so an
    exploration in which no run evaluated it reports it as never satisfied."""
    if kind not in GOALS:
        raise InvalidOptionError(f"seedloop.expect(): kind must be one of {GOALS}, got {kind!r}")
    _expected[(kind, _check_name("expect", name), os.path.abspath(file), int(line))] = None


def _fail(error: BaseException) -> None:
    global _violation
    if _active is not None and _violation is None:
        _violation = error
    raise error


class Recording:
    """Collects the sites evaluated by one run (``with Recording() as r: ...; r.sites``)."""

    def __enter__(self) -> Recording:
        global _active, _violation
        self._outer = (_active, _violation)
        self.sites: dict[tuple[str, str, str, int], list[int]] = {}
        _active, _violation = self.sites, None
        self._inside = True
        self._violation: BaseException | None = None
        return self

    @property
    def violation(self) -> BaseException | None:
        """The run's first always/unreachable violation (None if every one held)."""
        return _violation if self._inside else self._violation

    def __exit__(self, *exc: object) -> None:
        global _active, _violation
        self._violation, self._inside = _violation, False
        _active, _violation = self._outer


@dataclass
class Site:
    """One assertion site, aggregated over the runs of an exploration."""

    kind: str
    name: str
    file: str
    line: int
    #: How often the call ran, over all runs.
    evaluations: int = 0
    #: How often its condition held (reachable: how often it ran).
    satisfied: int = 0

    @property
    def where(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    def __str__(self) -> str:
        if self.evaluations == 0:
            detail = "never evaluated"
        elif self.kind == "reachable":
            detail = f"reached {self.evaluations} time(s)"
        else:
            detail = f"held {self.satisfied} of {self.evaluations} time(s)"
        return f"{self.kind} {self.name!r} at {self.where}: {detail}"


def merge(
    into: dict[tuple[str, str, str, int], Site],
    sites: dict[tuple[str, str, str, int], list[int]],
) -> None:
    """Add one run's (or one chunk's) records: sums, so the order of merging never matters."""
    for key, (evaluations, satisfied) in sites.items():
        site = into.get(key)
        if site is None:
            site = into[key] = Site(*key)
        site.evaluations += evaluations
        site.satisfied += satisfied


def unsatisfied(sites: dict[tuple[str, str, str, int], Site]) -> list[Site]:
    """The sometimes/reachable sites never satisfied (declared ones included), in source order."""
    found = {k: s for k, s in sites.items() if k[0] in GOALS and s.satisfied == 0}
    files = {k[2] for k in sites}
    for key in _expected:
        # Declarations are process-wide: they concern the explorations whose
        # runs evaluate some site of the same file.
        if key not in sites and key[2] in files:
            found[key] = Site(*key)
    return [found[k] for k in sorted(found, key=lambda k: (k[2], k[3], k[0], k[1]))]


def warn_unsatisfied(sites: dict[tuple[str, str, str, int], Site], api: str) -> None:
    """A search that returns no failure still reports the goals it never met, as a warning."""
    never = unsatisfied(sites)
    if never:
        warnings.warn(
            NeverSatisfiedWarning(f"{api}(): " + describe_unsatisfied(never)), stacklevel=3
        )


def describe_unsatisfied(sites: list[Site]) -> str:
    """The lines an exploration prints for its never-satisfied sites ('' if none)."""
    if not sites:
        return ""
    lines = [f"{len(sites)} sometimes/reachable site(s) never satisfied (a path that never ran):"]
    lines += [f"  {site}" for site in sites]
    return "\n".join(lines)


# Shown where users import it from: tracebacks, reprs and pickles say seedloop.Site.
Site.__module__ = "seedloop"
