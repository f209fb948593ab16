"""Checking what a system promises: record a history, test it for linearizability, wait for liveness.

``linearizable(history, model)`` checks a history in Jepsen's format (a list of
``{process, type, f, value}`` dicts, ``type`` one of invoke/ok/fail/info)
with the engine's Wing-Gong/Lowe search; ``History`` records one from clients
running inside a seedloop run; ``eventually`` waits, in virtual time, for a
condition to hold.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn, Protocol

from . import _engine
from .errors import (
    EventuallyError,
    HistoryError,
    InvalidDelayError,
    InvalidOptionError,
    ModelError,
)

__all__ = [
    "MODELS",
    "CheckResult",
    "Counterexample",
    "History",
    "Model",
    "OpRecorder",
    "Operation",
    "eventually",
    "linearizable",
    "parse",
]

#: The built-in models, by name: the operations (``f``) each accepts.
MODELS: dict[str, tuple[str, ...]] = {
    "register": ("write", "read"),
    "cas-register": ("write", "read", "cas"),
    "kv": ("write", "read", "cas"),
    "set": ("add", "read"),
    "queue": ("enqueue", "dequeue"),
}

_TYPES = ("invoke", "ok", "fail", "info")


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a history: an invoke paired with its completion.

    ``value`` is the completion's value for an ``ok`` operation (a read's
    result), else the invoke's. ``type`` is ``"ok"`` or ``"info"`` (outcome
    unknown: an ``info`` completion, or none at all). ``invoked`` and
    ``completed`` are indices into the history (``completed`` is None when
    the invoke never completed).
    """

    process: Any
    f: Any
    value: Any
    type: str
    invoked: int
    completed: int | None
    invoke_value: Any = None
    time: float | None = None
    end_time: float | None = None

    @property
    def unknown(self) -> bool:
        """The outcome is unknown: it may have taken effect at any point after its invoke, or never."""
        return self.type != "ok"

    def describe(self) -> str:
        """``write 3``, ``read -> 3``, ``cas [1, 2]``: the operation without its timing."""
        text = str(self.f)
        if self.invoke_value is not None:
            text += f" {self.invoke_value!r}"
        if self.type == "ok" and (self.value != self.invoke_value or self.invoke_value is None):
            text += f" -> {self.value!r}"
        return text

    def __str__(self) -> str:
        if self.completed is None:
            where = f"invoked at entry {self.invoked}, never completed"
        elif self.type == "info":
            where = f"entries {self.invoked}-{self.completed}, outcome unknown"
        else:
            where = f"entries {self.invoked}-{self.completed}"
        return f"process {self.process!r}: {self.describe()} ({where})"


class Model(Protocol):
    """A user-defined sequential model (the built-in ones are named by string).

    ``init()`` returns the initial state; ``step(state, op)`` returns
    ``(ok, new_state)`` for an :class:`Operation` ``op``: ``ok`` False if
    ``op`` cannot happen in ``state``. States are compared with ``==`` (and
    hashed if they can be, which makes the search faster); never mutate a
    state, return a new one. When ``op.unknown`` is true its output is not
    known (``op.value`` is the invoke's value): apply its effect without
    checking an output. An optional ``partition(operations)`` returns lists
    of operations checked independently (only sound if no operation spans
    two parts, e.g. one part per key).
    """

    def init(self) -> Any: ...

    def step(self, state: Any, op: Operation) -> tuple[bool, Any]: ...


@dataclass(frozen=True)
class Counterexample:
    """Why a history is not linearizable, read from its shortest failing prefix.

    ``op`` could not be placed: the history up to its completion (entry
    ``end``) has no linearization, while everything before that completion
    linearizes as ``linearization`` (leaving the model in ``state``).
    ``operations`` are all the operations invoked by then (in the part of
    the history that failed: ``key`` names it for a kv, else None).
    """

    op: Operation
    end: int
    linearization: list[Operation]
    state: Any
    operations: list[Operation]
    model: str
    key: Any = None
    #: A model's own remark (a set read: which elements it missed or invented).
    note: str = ""

    def __str__(self) -> str:
        where = f" (key {self.key!r})" if self.key is not None else ""
        lines = [
            f"not linearizable under model {self.model!r}{where}: {self.op}",
            f"  cannot be placed: no order of the {len(self.operations)} operations invoked by "
            f"entry {self.end} respects real time and the model.",
        ]
        if self.linearization:
            lines.append("  Everything before its completion linearizes as:")
            for i, op in enumerate(self.linearization, 1):
                pending = (
                    "  [pending at that point]"
                    if op.completed is None or op.completed > self.end
                    else ""
                )
                lines.append(f"    {i}. {op}{pending}")
            lines.append(f"  leaving the state at {self.state!r}, from which {self.op.describe()!r} "
                         f"cannot follow (nor can it go any earlier).")
        else:
            lines.append(f"  Not even first: from the initial state {self.state!r}, "
                         f"{self.op.describe()!r} is impossible.")
        if self.note:
            lines.append(f"  ({self.note})")
        placed = {id(op) for op in self.linearization} | {id(self.op)}
        others = [op for op in self.operations if id(op) not in placed]
        if others:
            lines.append("  Other operations invoked by then (concurrent, or left out):")
            lines += [f"    {op}" for op in others]
        return "\n".join(lines)


@dataclass(frozen=True)
class CheckResult:
    """The verdict of :func:`linearizable`; true in a boolean context when linearizable."""

    ok: bool
    model: Any
    counterexample: Counterexample | None = None
    #: Operations checked (``fail`` ones and reads of unknown outcome left out).
    operations: int = 0
    #: Independent parts checked (one per key for a kv).
    partitions: int = 1
    #: The search gave up (``budget`` ran out) before an answer: ``ok`` is False,
    #: but the history was not shown to be non-linearizable either.
    unknown: bool = False
    budget: int | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.unknown:
            return (
                f"undecided under model {_model_name(self.model)!r}: the search explored "
                f"{self.budget:,} configurations of one part without an answer; pass a larger "
                "budget= (or check a shorter history)"
            )
        if self.ok:
            return (f"linearizable under model {_model_name(self.model)!r} "
                    f"({self.operations} operations, {self.partitions} part(s))")
        if self.counterexample is None:
            return f"not linearizable under model {_model_name(self.model)!r}"
        return str(self.counterexample)


def _model_name(model: Any) -> str:
    return model if isinstance(model, str) else type(model).__name__


# -- parsing -----------------------------------------------------------------


def _entries(history: Any) -> list[Mapping[str, Any]]:
    if isinstance(history, History):
        return history.to_jepsen()
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Iterable):
        raise HistoryError(
            "a history is a list of operation dicts {process, type, f, value} (Jepsen's "
            f"format) or a seedloop.check.History; got {type(history).__name__}"
        )
    return list(history)


def parse(history: Any) -> list[Operation]:
    """The operations of a history (invokes paired with completions), in invoke order.

    ``fail`` operations did not happen and are left out. Raises
    :class:`~seedloop.HistoryError` naming the first malformed entry.
    """
    entries = _entries(history)
    open_ops: dict[Any, tuple[int, Mapping[str, Any]]] = {}
    done: dict[int, tuple[int, Mapping[str, Any]]] = {}
    order: list[tuple[int, Mapping[str, Any]]] = []
    for i, entry in enumerate(entries):
        # Written for speed (10,000 operations should parse in milliseconds):
        # the checks that fail raise from _bad_entry, which says why.
        if type(entry) is not dict and not isinstance(entry, Mapping):
            _bad_entry(i, entry)
        try:
            kind, process, f = entry["type"], entry["process"], entry["f"]
            busy = process in open_ops
        except (KeyError, TypeError):
            _bad_entry(i, entry)
        if kind == "invoke":
            if busy:
                j, first = open_ops[process]
                raise HistoryError(
                    f"entry {i}: process {process!r} invokes {f!r} while its "
                    f"{first['f']!r} from entry {j} has not completed: a process runs one "
                    "operation at a time (give concurrent clients their own process ids, "
                    "and end an abandoned operation with an 'info' entry)"
                )
            open_ops[process] = (i, entry)
            order.append((i, entry))
            continue
        if kind not in _TYPES:
            _bad_entry(i, entry)
        if not busy:
            raise HistoryError(
                f"entry {i}: process {process!r} completes ({kind}) with no operation in "
                "flight: every ok/fail/info follows an invoke by the same process"
            )
        j, invoke = open_ops.pop(process)
        if f != invoke["f"]:
            raise HistoryError(
                f"entry {i}: process {process!r} completes {f!r} but invoked "
                f"{invoke['f']!r} at entry {j}; a completion repeats its invoke's f"
            )
        done[j] = (i, entry)
    ops: list[Operation] = []
    for j, invoke in order:
        end, completion = done.get(j, (None, None))
        value = invoke.get("value")
        if completion is None:
            ops.append(Operation(invoke["process"], invoke["f"], value, "info", j, None, value,
                                 invoke.get("time"), None))
            continue
        kind = completion["type"]
        if kind == "fail":
            continue
        ops.append(
            Operation(
                invoke["process"],
                invoke["f"],
                completion.get("value") if kind == "ok" else value,
                "ok" if kind == "ok" else "info",
                j,
                end,
                value,
                invoke.get("time"),
                completion.get("time"),
            )
        )
    return ops


def _bad_entry(i: int, entry: Any) -> NoReturn:
    """Raise the HistoryError saying what is wrong with entry ``i``."""
    if not isinstance(entry, Mapping):
        raise HistoryError(
            f"entry {i} is a {type(entry).__name__}, not a dict: each entry is "
            "{'process': ..., 'type': 'invoke'|'ok'|'fail'|'info', 'f': ..., 'value': ...}"
        )
    for key in ("process", "type", "f"):
        if key not in entry:
            raise HistoryError(
                f"entry {i} has no {key!r}: each entry needs 'process', 'type', 'f' "
                f"(and 'value'); got {dict(entry)!r}"
            )
    if entry["type"] not in _TYPES:
        raise HistoryError(f"entry {i}: type {entry['type']!r} is not one of invoke, ok, fail, info")
    raise HistoryError(
        f"entry {i}: process {entry['process']!r} is unhashable; use an int or a string"
    )


_PLAIN = (int, str, float, bool, type(None))


def _freeze(value: Any, where: int) -> Any:
    """A hashable stand-in for a value, equal when the values are equal."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v, where) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v, where) for v in value)
    if isinstance(value, Mapping):
        return frozenset((_freeze(k, where), _freeze(v, where)) for k, v in value.items())
    try:
        hash(value)
    except TypeError:
        raise HistoryError(
            f"entry {where}: value {value!r} cannot be compared by the built-in models "
            "(it is unhashable); use numbers, strings, lists or dicts of them"
        ) from None
    return value


class _Interner:
    """Values to small ints for the engine: equal values, equal ids; None is 0."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {None: 0}

    def __call__(self, value: Any, where: int) -> int:
        key = _freeze(value, where)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.ids)
        return found


def _pair(value: Any, where: int, what: str) -> tuple[Any, Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise HistoryError(f"entry {where}: {what}, got {value!r}")
    return value[0], value[1]


def _encode(
    model: str, op: Operation, intern: _Interner
) -> tuple[Any, tuple[int, int, int, list[int]]] | None:
    """(partition key, engine op) of a built-in model's operation; None: leave it out."""
    allowed = MODELS[model]
    if op.f not in allowed:
        hint = " (use 'cas-register' for cas)" if op.f == "cas" else ""
        raise HistoryError(
            f"entry {op.invoked}: model {model!r} has no operation {op.f!r}; it knows "
            f"{', '.join(allowed)}{hint}"
        )
    at = op.invoked
    if op.unknown and op.f == "read":
        return None  # a read changes nothing: not knowing what it saw, it says nothing
    key = None
    value = op.value
    if model == "kv":
        key, arg = _pair(op.invoke_value, at, "a kv operation's value is [key, value]")
        key = _freeze(key, at)
        if op.f == "read" and not op.unknown:
            done_key, value = _pair(op.value, op.completed or at, "a kv read's ok value is [key, value]")
            if _freeze(done_key, at) != key:
                raise HistoryError(
                    f"entry {op.completed}: a read of key {key!r} completed with key {done_key!r}"
                )
        else:
            value = arg
    if op.f == "write":
        return key, (0, intern(value, at), 0, [])
    if op.f == "read":
        if model == "set":
            if not isinstance(value, (list, tuple, set, frozenset)):
                raise HistoryError(
                    f"entry {op.completed}: a set read's ok value is the whole set (a list or "
                    f"a set), got {value!r}"
                )
            ids = sorted({intern(v, at) for v in value})
            return key, (4, 0, 0, ids)
        return key, (1, intern(value, at), 0, [])
    if op.f == "cas":
        old, new = _pair(value, at, "a cas value is [old, new]")
        return key, (2, intern(old, at), intern(new, at), [])
    if op.f == "add":
        return key, (3, intern(value, at), 0, [])
    if op.f == "enqueue":
        return key, (5, intern(value, at), 0, [])
    return key, (6, 0 if op.unknown else intern(value, at), 0, [])  # dequeue


def _spans(ops: list[Operation]) -> tuple[list[int], list[int | None]]:
    calls = [op.invoked for op in ops]
    rets = [None if op.unknown else op.completed for op in ops]
    return calls, rets


# -- models ------------------------------------------------------------------


class _Adapter:
    """A user model as the engine calls it, checking what it returns."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = type(model).__name__

    def init(self) -> Any:
        return self.model.init()

    def step(self, state: Any, op: Operation) -> tuple[bool, Any]:
        out = self.model.step(state, op)
        if not isinstance(out, tuple) or len(out) != 2:
            raise ModelError(
                f"{self.name}.step(state, op) must return (ok, new_state), got {out!r} "
                f"for {op}"
            )
        return out


def _display_state(model: str, ops: list[Operation]) -> Any:
    """The state a built-in model is in after ``ops`` (for a counterexample)."""
    if model == "set":
        state: list[Any] = []
        for op in ops:
            if op.f == "add" and op.value not in state:
                state.append(op.value)
        return _sorted(state)
    if model == "queue":
        queue: list[Any] = []
        for op in ops:
            if op.f == "enqueue":
                queue.append(op.value)
            elif op.f == "dequeue" and queue:
                queue.pop(0)
        return queue
    value = None
    for op in ops:
        arg = op.invoke_value[1] if model == "kv" else op.invoke_value
        if op.f == "write":
            value = arg
        elif op.f == "cas":
            value = arg[1]
    return value


def _sorted(values: list[Any]) -> list[Any]:
    """Sorted when the values allow it, else by repr: a stable display either way."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=repr)


def _set_note(op: Operation, state: list[Any]) -> str:
    """What a set read got wrong against the state the linearization reached."""
    seen = list(op.value) if isinstance(op.value, (list, tuple, set, frozenset)) else []
    missing = [v for v in state if v not in seen]
    extra = _sorted([v for v in seen if v not in state])
    parts = [f"missing {missing!r}" if missing else "", f"unexpected {extra!r}" if extra else ""]
    return "the read, against that state: " + ", ".join(p for p in parts if p) if any(parts) else ""


def _as_unknown(op: Operation) -> Operation:
    return replace(op, type="info", value=op.invoke_value, completed=None, end_time=None)


def _run_python(
    model: Any, part: list[Operation], counterexample: bool, budget: int | None
) -> tuple[bool | None, Any]:
    adapter = _Adapter(model)
    pairs = [(op, op if op.unknown else _as_unknown(op)) for op in part]
    calls, rets = _spans(part)
    ok, _order, found = _engine.check_python(adapter, pairs, calls, rets, counterexample, budget)
    return ok, found


def _python_state(model: Any, ops: list[Operation], end: int) -> Any:
    adapter = _Adapter(model)
    state = adapter.init()
    for op in ops:
        pending = op.completed is None or op.completed > end
        _, state = adapter.step(state, _as_unknown(op) if pending else op)
    return state


def _user_parts(model: Any, ops: list[Operation]) -> list[tuple[Any, list[Operation]]]:
    split = getattr(model, "partition", None)
    if split is None:
        return [(None, ops)]
    parts = []
    known = {id(op) for op in ops}
    for i, part in enumerate(split(ops)):
        part = list(part)
        if any(id(op) not in known for op in part):
            raise ModelError(
                f"{type(model).__name__}.partition() part {i} holds something that is not one "
                "of the operations it was given; return lists of those Operation objects"
            )
        parts.append((i, sorted(part, key=lambda op: op.invoked)))
    return parts


# -- checking ----------------------------------------------------------------


def linearizable(
    history: Any,
    model: str | Model,
    *,
    counterexample: bool = True,
    budget: int | None = None,
) -> CheckResult:
    """Is ``history`` linearizable with respect to ``model``?

    ``history``: a list of Jepsen-style entries ``{"process", "type", "f",
    "value"}`` (``type`` invoke/ok/fail/info) in the order they happened, or
    a :class:`History`. A ``fail`` operation did not happen; an ``info`` one
    (or an invoke never completed) may have taken effect at any point after
    its invoke, or never. ``model``: ``"register"``, ``"cas-register"``,
    ``"kv"`` (checked key by key), ``"set"``, ``"queue"``, or an object
    following :class:`Model`. With ``counterexample=False`` a failing
    result skips computing its :class:`Counterexample`. ``budget`` bounds
    the configurations explored per part (None: no bound); past it the
    result is ``unknown`` (and not ``ok``), the same on every machine.

    Raises :class:`~seedloop.HistoryError` for a malformed history and
    :class:`~seedloop.ModelError` for an unusable model.
    """
    if isinstance(model, str):
        if model not in MODELS:
            raise ModelError(
                f"unknown model {model!r}: use one of {', '.join(map(repr, MODELS))}, or an "
                "object with init() and step(state, op) -> (ok, new_state)"
            )
    elif not (callable(getattr(model, "init", None)) and callable(getattr(model, "step", None))):
        raise ModelError(
            f"a model is a name ({', '.join(map(repr, MODELS))}) or an object with init() and "
            f"step(state, op) -> (ok, new_state); got {model!r}"
        )
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise InvalidOptionError(
            f"linearizable(): budget must be a positive int of configurations or None, got {budget!r}"
        )
    ops = parse(history)
    failed = gave_up = False
    found: list[Counterexample] = []  # one per failing part, when asked for
    if isinstance(model, str):
        parts = _builtin_parts(model, ops)
        kind = {"set": "set", "queue": "queue"}.get(model, "register")
        for key, part, encoded in parts:
            calls, rets = _spans(part)
            ok, _order, raw = _engine.check_builtin(
                kind, encoded, calls, rets, counterexample, budget
            )
            failed |= ok is False
            gave_up |= ok is None
            if raw is not None:
                found.append(_counterexample(model, key, part, raw, None))
        checked = sum(len(p[1]) for p in parts)
        count = len(parts)
    else:
        user_parts = _user_parts(model, ops)
        for key, part in user_parts:
            ok, raw = _run_python(model, part, counterexample, budget)
            failed |= ok is False
            gave_up |= ok is None
            if raw is not None:
                found.append(_counterexample(_model_name(model), key, part, raw, model))
        checked = sum(len(p[1]) for p in user_parts)
        count = len(user_parts)
    if gave_up and not failed:
        return CheckResult(False, model, None, checked, count, unknown=True, budget=budget)
    if not failed:
        return CheckResult(True, model, None, checked, count)
    # Of several failing keys, the one that fails first in the history.
    first = min(found, key=lambda c: c.end) if found else None
    return CheckResult(False, model, first, checked, count)


def _builtin_parts(
    model: str, ops: list[Operation]
) -> list[tuple[Any, list[Operation], list[tuple[int, int, int, list[int]]]]]:
    intern = _Interner()
    by_key: dict[Any, tuple[list[Operation], list[tuple[int, int, int, list[int]]]]] = {}
    for op in ops:
        coded = _encode(model, op, intern)
        if coded is None:
            continue
        key, engine_op = coded
        part = by_key.setdefault(key, ([], []))
        part[0].append(op)
        part[1].append(engine_op)
    if not by_key:
        return [(None, [], [])]
    return [(key, part, encoded) for key, (part, encoded) in by_key.items()]


def _counterexample(
    name: str, key: Any, part: list[Operation], raw: Any, user_model: Any
) -> Counterexample:
    blocked, end, witness, involved = raw
    order = [part[i] for i in witness]
    note = ""
    if user_model is None:
        state = _display_state(name, [op for op in order if op.f != "read"])
        if name == "set" and part[blocked].f == "read":
            note = _set_note(part[blocked], state)
    else:
        state = _python_state(user_model, order, end)
    return Counterexample(
        op=part[blocked],
        end=end,
        linearization=order,
        state=state,
        operations=[part[i] for i in involved],
        model=name,
        key=key,
        note=note,
    )


# -- recording ---------------------------------------------------------------


class _Same:
    def __repr__(self) -> str:
        return "<the invoke's value>"


_SAME: Any = _Same()


def _now() -> float | None:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


class History:
    """Records a history from clients, in Jepsen's format, with the loop's (virtual) time.

    Either explicitly: ``h.invoke(p, "write", 3)`` then ``h.ok(p)`` (or
    ``h.fail(p)``, ``h.info(p)``); or around the client's call::

        async with h.op(p, "read") as op:
            op.ok(await client.get())

    Leaving the block normally records ``ok`` (with the invoke's value unless
    ``op.ok(value)`` gave one); an exception records ``info`` (the operation
    may or may not have taken effect: a timeout, a lost connection,
    cancellation) unless it is an instance of ``definite`` (the operation
    surely did not happen), which records ``fail``. The exception still
    propagates.
    """

    def __init__(self, *, definite: tuple[type[BaseException], ...] = ()) -> None:
        self._entries: list[dict[str, Any]] = []
        self._open: dict[Any, dict[str, Any]] = {}
        self.definite = definite

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.to_jepsen())

    def __repr__(self) -> str:
        return f"<History of {len(self._entries)} entries, {len(self._open)} in flight>"

    def _add(self, process: Any, kind: str, f: Any, value: Any) -> None:
        entry = {"process": process, "type": kind, "f": f, "value": value}
        now = _now()
        if now is not None:
            entry["time"] = now
        self._entries.append(entry)

    def invoke(self, process: Any, f: Any, value: Any = None) -> None:
        """Record that ``process`` starts operation ``f`` with ``value``."""
        if process in self._open:
            raise HistoryError(
                f"History.invoke: process {process!r} still has {self._open[process]['f']!r} "
                "in flight; complete it (ok/fail/info) first, or give each concurrent client "
                "its own process id"
            )
        self._add(process, "invoke", f, value)
        self._open[process] = self._entries[-1]

    def _complete(self, kind: str, process: Any, value: Any) -> None:
        invoke = self._open.pop(process, None)
        if invoke is None:
            raise HistoryError(
                f"History.{kind}: process {process!r} has no operation in flight; call "
                "invoke() first"
            )
        self._add(process, kind, invoke["f"], invoke["value"] if value is _SAME else value)

    def ok(self, process: Any, value: Any = _SAME) -> None:
        """``process``'s operation completed; ``value`` is what it returned (default: the invoke's value)."""
        self._complete("ok", process, value)

    def fail(self, process: Any, value: Any = _SAME) -> None:
        """``process``'s operation surely did not take effect."""
        self._complete("fail", process, value)

    def info(self, process: Any, value: Any = _SAME) -> None:
        """``process``'s operation ended without knowing whether it took effect."""
        self._complete("info", process, value)

    def op(
        self,
        process: Any,
        f: Any,
        value: Any = None,
        *,
        definite: tuple[type[BaseException], ...] = (),
    ) -> OpRecorder:
        """A context manager (``async with`` or ``with``) recording one operation."""
        return OpRecorder(self, process, f, value, self.definite + tuple(definite))

    def to_jepsen(self) -> list[dict[str, Any]]:
        """The entries, as a list of fresh dicts ``{process, type, f, value[, time]}``."""
        return [dict(e) for e in self._entries]

    def to_json(self, indent: int | None = None) -> str:
        """The entries as JSON (values JSON cannot hold are written as their repr)."""
        return json.dumps(self.to_jepsen(), indent=indent, default=repr)

    def to_edn(self) -> str:
        """The entries as EDN maps, one a line, as Jepsen/Knossos read them (time in seconds)."""
        lines = []
        for e in self._entries:
            fields = ", ".join(f":{k} {_edn(v, keyword=k in ('type', 'f'))}" for k, v in e.items())
            lines.append("{" + fields + "}")
        return "\n".join(lines)


def _edn(value: Any, keyword: bool = False) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if keyword and isinstance(value, str) and value.replace("-", "").isalnum():
        return ":" + value
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_edn(v) for v in value) + "]"
    if isinstance(value, (set, frozenset)):
        return "#{" + " ".join(sorted(_edn(v) for v in value)) + "}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_edn(k)} {_edn(v)}" for k, v in value.items()) + "}"
    return json.dumps(repr(value))


class OpRecorder:
    """One operation being recorded by :meth:`History.op`; call ``ok``/``fail``/``info`` to end it."""

    def __init__(
        self,
        history: History,
        process: Any,
        f: Any,
        value: Any,
        definite: tuple[type[BaseException], ...],
    ) -> None:
        self.history, self.process, self.f, self.value = history, process, f, value
        self.definite = definite
        self.done = False

    def _end(self, kind: str, value: Any) -> None:
        if self.done:
            raise HistoryError(
                f"process {self.process!r}'s {self.f!r} is already recorded as complete"
            )
        self.done = True
        getattr(self.history, kind)(self.process, value)

    def ok(self, value: Any = _SAME) -> None:
        """It completed, returning ``value`` (default: the invoke's value)."""
        self._end("ok", value)

    def fail(self, value: Any = _SAME) -> None:
        """It surely did not take effect."""
        self._end("fail", value)

    def info(self, value: Any = _SAME) -> None:
        """Whether it took effect is unknown."""
        self._end("info", value)

    def __enter__(self) -> OpRecorder:
        self.history.invoke(self.process, self.f, self.value)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self.done:
            return
        if kind is None:
            self.ok()
        elif self.definite and issubclass(kind, self.definite):
            self.fail()
        else:
            self.info()

    async def __aenter__(self) -> OpRecorder:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        self.__exit__(kind, exc, tb)


# -- liveness ----------------------------------------------------------------


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InvalidDelayError(f"eventually(): {name} must be a number of seconds, got {value!r}")
    if value <= 0 or math.isinf(value):
        raise InvalidDelayError(
            f"eventually(): {name} must be positive and finite, got {value!r}"
        )
    return float(value)


async def eventually(
    cond: Callable[[], Any],
    within: float,
    interval: float = 0.1,
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """Wait until ``cond()`` is true, checking every ``interval`` seconds of loop time.

    ``cond`` is a plain or async callable; its first true result is
    returned. In a seedloop run the waiting is virtual time, so a liveness
    check ("after the partition heals, every replica catches up within 5 s")
    costs nothing. An exception of a type in ``ignore`` counts as "not yet".
    Raises :class:`~seedloop.EventuallyError` (an ``AssertionError``) saying
    how long it waited if ``cond`` is still false after ``within`` seconds.
    """
    within = _seconds("within", within)
    interval = _seconds("interval", interval)
    loop = asyncio.get_running_loop()
    start = loop.time()
    checks = 0
    last: Any = None
    error: BaseException | None = None
    while True:
        checks += 1
        try:
            last = cond()
            if inspect.isawaitable(last):
                last = await last
            error = None
        except ignore as exc:
            last, error = None, exc
        if last and error is None:
            return last
        waited = loop.time() - start
        if waited >= within:
            name = getattr(cond, "__qualname__", None) or repr(cond)
            seen = f"last raised {error!r}" if error is not None else f"last returned {last!r}"
            raise EventuallyError(
                f"eventually({name}): still not true after {waited:g} s of loop time "
                f"({checks} checks, every {interval:g} s; {seen}); the system did not "
                f"recover within {within:g} s: raise `within` if that is too short"
            ) from error
        await asyncio.sleep(min(interval, within - waited))

