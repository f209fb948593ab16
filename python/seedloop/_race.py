"""Names the race behind a failure: the shared state one task read before a switch and another wrote after it.

Only used while explaining a failure (replaying its shrunk schedule once),
never during a search: every bytecode instruction of the user's code is
watched. ``AccessTracer`` records, per scheduler step and task, the reads and
writes of object attributes (``obj.x``), items (``d[k]``) and module globals
made by code outside seedloop, asyncio and the standard library; ``find_race``
picks the conflicting read/write pair that the decisive reordering created.

Python 3.12+ uses ``sys.monitoring`` INSTRUCTION events; 3.10-3.11 use
``sys.settrace`` with ``f_trace_opcodes`` (slower; fine for one replay).
Accesses are recognised from the bytecode: the object (or container and key)
must be a local, a global, a constant, or an attribute / dict / list item of
those on the same line (``self.balance``, ``state["n"]``, ``self.cache[key]``,
``COUNTER``); attributes are read from the instance ``__dict__`` only, so no
property or ``__getattr__`` runs while explaining. Mutations through method
calls (``list.append``) are not seen.
"""

from __future__ import annotations

import builtins
import dis
import linecache
import os
import sys
import sysconfig
import types
from dataclasses import dataclass
from typing import Any

from ._describe import LIBRARY_DIRS

_STDLIB = tuple(
    os.path.join(p, "") for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
)
_SKIP = tuple(os.path.join(p, "") for p in LIBRARY_DIRS) + _STDLIB

_GENERATED_BY = ("seedloop", "asyncio", "dataclasses", "collections", "typing", "enum")

# A symbolic stack entry: ("local"|"deref"|"global", name), ("const", value),
# ("attr", base, name), ("item", base, key) or None (unknown), with its line.
_Expr = Any
_MISSING = object()


def _user_file(filename: str) -> bool:
    if filename.startswith("<"):
        return not filename.startswith("<frozen")
    if filename.startswith(_SKIP):
        return False  # seedloop itself (wherever it is installed), asyncio, the stdlib
    # A library under test in site-packages is user code too.
    return True


@dataclass(frozen=True)
class _Recipe:
    write: bool
    kind: str  # "attr", "item" or "global"
    base: _Expr  # the object / container expression (None for a global)
    key: _Expr  # the attribute name, the key expression, or the global's name
    line: int


def _recipes(code: types.CodeType) -> dict[int, _Recipe]:
    """Offset -> how to find the state an instruction reads or writes (from the bytecode alone)."""
    found: dict[int, _Recipe] = {}
    stack: list[tuple[_Expr, int]] = []
    line = code.co_firstlineno
    new_attr_method = sys.version_info >= (3, 12)

    def pop() -> tuple[_Expr, int]:
        return stack.pop() if stack else (None, -1)

    for ins in dis.get_instructions(code):
        positions = getattr(ins, "positions", None)  # 3.11+
        if positions is not None and positions.lineno is not None:
            line = positions.lineno
        elif positions is None and isinstance(ins.starts_line, int) and ins.starts_line > 0:
            line = ins.starts_line  # 3.10
        op, arg = ins.opname, ins.argval

        def operand(entry: tuple[_Expr, int], line: int = line) -> _Expr:
            # Operands computed on another line are too far to trust.
            expr, at = entry
            return expr if at == line else None

        if op in ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR"):
            stack.append((("local", arg), line))
        elif op == "LOAD_FAST_LOAD_FAST":
            stack += [(("local", arg[0]), line), (("local", arg[1]), line)]
        elif op in ("LOAD_DEREF", "LOAD_CLASSDEREF"):
            stack.append((("deref", arg), line))
        elif op == "LOAD_CONST":
            stack.append((("const", arg), line))
        elif op == "LOAD_GLOBAL":
            if (ins.arg or 0) & 1:
                stack.append((None, line))  # the NULL pushed for a call
            found[ins.offset] = _Recipe(False, "global", None, arg, line)
            stack.append((("global", arg), line))
        elif op == "STORE_GLOBAL":
            pop()
            found[ins.offset] = _Recipe(True, "global", None, arg, line)
        elif op == "LOAD_ATTR":
            base = operand(pop())
            if new_attr_method and (ins.arg or 0) & 1:
                stack += [(None, line), (None, line)]  # a method and its self
                continue
            if base is not None:
                found[ins.offset] = _Recipe(False, "attr", base, arg, line)
            stack.append((("attr", base, arg) if base is not None else None, line))
        elif op in ("STORE_ATTR", "DELETE_ATTR"):
            base = operand(pop())
            if op == "STORE_ATTR":
                pop()
            if base is not None:
                found[ins.offset] = _Recipe(True, "attr", base, arg, line)
        elif op == "BINARY_SUBSCR":
            key, base = operand(pop()), operand(pop())
            if base is not None and key is not None:
                found[ins.offset] = _Recipe(False, "item", base, key, line)
                stack.append((("item", base, key), line))
            else:
                stack.append((None, line))
        elif op in ("STORE_SUBSCR", "DELETE_SUBSCR"):
            key, base = operand(pop()), operand(pop())
            if op == "STORE_SUBSCR":
                pop()
            if base is not None and key is not None:
                found[ins.offset] = _Recipe(True, "item", base, key, line)
        elif op == "COPY":
            stack.append(stack[-arg] if len(stack) >= arg else (None, line))
        elif op == "SWAP":
            if len(stack) >= arg:
                stack[-1], stack[-arg] = stack[-arg], stack[-1]
        elif op == "DUP_TOP":  # 3.10's spelling of COPY 1 / COPY 2 twice / SWAP
            stack.append(stack[-1] if stack else (None, line))
        elif op == "DUP_TOP_TWO":
            stack += stack[-2:] if len(stack) >= 2 else [(None, line)] * 2
        elif op == "ROT_TWO" and len(stack) >= 2:
            stack[-1], stack[-2] = stack[-2], stack[-1]
        elif op in ("ROT_THREE", "ROT_FOUR") and len(stack) >= (3 if op == "ROT_THREE" else 4):
            depth = 3 if op == "ROT_THREE" else 4
            stack.insert(len(stack) - depth + 1, stack.pop())
        elif op == "POP_TOP":
            pop()
        else:
            try:
                effect = dis.stack_effect(ins.opcode, ins.arg, jump=False)
            except ValueError:
                effect = 0
            if effect < 0:
                del stack[len(stack) + effect :]
            elif effect > 0:
                stack += [(None, line)] * effect
            elif stack and op not in ("NOP", "RESUME", "CACHE", "EXTENDED_ARG", "PRECALL"):
                stack[-1] = (None, line)
    return found


def _evaluate(expr: _Expr, frame: types.FrameType, keep: list[Any]) -> Any:
    """The value of a recipe expression in ``frame``, without running user code (or _MISSING)."""
    tag = expr[0]
    if tag in ("local", "deref"):
        return frame.f_locals.get(expr[1], _MISSING)
    if tag == "global":
        value = frame.f_globals.get(expr[1], _MISSING)
        return getattr(builtins, expr[1], _MISSING) if value is _MISSING else value
    if tag == "const":
        return expr[1]
    base = _evaluate(expr[1], frame, keep)
    if base is _MISSING:
        return _MISSING
    if tag == "attr":
        try:
            return vars(base).get(expr[2], _MISSING)
        except TypeError:
            return _MISSING
    key = _evaluate(expr[2], frame, keep)
    if type(base) is dict:
        return base.get(key, _MISSING) if _hashable(key) else _MISSING
    if type(base) is list and type(key) is int and -len(base) <= key < len(base):
        return base[key]
    return _MISSING


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _text(expr: _Expr) -> str:
    """Source-like text of a recipe expression (``self.cache['k']``)."""
    tag = expr[0]
    if tag in ("local", "deref", "global"):
        return str(expr[1])
    if tag == "const":
        return repr(expr[1])
    if tag == "attr":
        return f"{_text(expr[1])}.{expr[2]}"
    return f"{_text(expr[1])}[{_text(expr[2])}]"


@dataclass(frozen=True)
class Access:
    """One read or write of shared state by a task, at a scheduler step."""

    step: int
    task: str
    write: bool
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    @property
    def source(self) -> str:
        return linecache.getline(self.file, self.line).strip()


@dataclass(frozen=True)
class Race:
    """The shared state a failing reordering raced on (``Failure.race``)."""

    #: "attribute", "item" or "global"
    kind: str
    #: What was raced on, as the source names it (``Account.balance``, ``state['n']``).
    location: str
    #: The read that happened before the decisive switch...
    read: Access
    #: ... and the other task's write after it.
    write: Access
    #: The reader's own later write of the same state (a lost update), if any.
    overwrite: Access | None = None
    #: The departure from FIFO between (or at) the two accesses that ordered them.
    switch_step: int | None = None

    def __str__(self) -> str:
        lines = [
            f"race on {self.kind} {self.location}:",
            f"  read  by {self.read.task} at {self.read.where} (step {self.read.step}): "
            f"{self.read.source}",
        ]
        lines.append(
            f"  write by {self.write.task} at {self.write.where} (step {self.write.step}): "
            f"{self.write.source}"
        )
        if self.overwrite is not None:
            lines.append(
                f"  then {self.overwrite.task} writes back its stale value at "
                f"{self.overwrite.where} (step {self.overwrite.step}): {self.overwrite.source}"
            )
        if self.switch_step is not None:
            lines.append(f"  (the decisive switch: step {self.switch_step}, a departure from FIFO)")
        return "\n".join(lines)


class AccessTracer:
    """Records the attribute / item / global accesses of user code, per step and task."""

    def __init__(self) -> None:
        self.step = -1
        self.task = "?"
        #: (location key, kind, label, Access), in execution order.
        self.accesses: list[tuple[tuple[Any, ...], str, str, Access]] = []
        self._keep: list[Any] = []  # objects whose id() is a location: keep them alive
        self._recipes: dict[types.CodeType, dict[int, _Recipe] | None] = {}
        self._tool: int | None = None
        self._previous: Any = None
        #: Recording failed (and stopped): the accesses seen are incomplete.
        self.broken = False

    def at_step(self, step: int, task: str) -> None:
        self.step, self.task = step, task

    def _for(self, code: types.CodeType, frame: types.FrameType) -> dict[int, _Recipe] | None:
        try:
            return self._recipes[code]
        except KeyError:
            pass
        try:
            user = _user_file(code.co_filename)
            if user and code.co_filename.startswith("<"):
                # Generated code (a dataclass's __init__) belongs to the module it was made for.
                module = str(frame.f_globals.get("__name__", ""))
                user = not module.startswith(_GENERATED_BY)
            found = _recipes(code) if user else None
        except Exception:
            found = None  # bytecode this reader does not know: that code goes unwatched
        self._recipes[code] = found or None
        return found or None

    def _record(self, recipe: _Recipe, frame: types.FrameType) -> None:
        if self.broken:
            return
        try:
            self._record_access(recipe, frame)
        except Exception:
            # Explaining must never change the run it explains: stop recording.
            self.broken = True

    def _record_access(self, recipe: _Recipe, frame: types.FrameType) -> None:
        keep = self._keep
        if recipe.kind == "global":
            g = frame.f_globals
            key: tuple[Any, ...] = ("global", id(g), recipe.key)
            label = f"{recipe.key} (module {g.get('__name__', '?')})"
            keep.append(g)
        else:
            base = _evaluate(recipe.base, frame, keep)
            if base is _MISSING or isinstance(base, (types.ModuleType, type)):
                return
            if recipe.kind == "attr":
                key = ("attr", id(base), recipe.key)
                label = f"{type(base).__name__}.{recipe.key}"
            else:
                item = _evaluate(recipe.key, frame, keep)
                if item is _MISSING or not _hashable(item):
                    return
                key = ("item", id(base), item)
                label = f"{_text(recipe.base)}[{item!r}]"
            keep.append(base)
        kind = {"attr": "attribute", "item": "item", "global": "global"}[recipe.kind]
        access = Access(self.step, self.task, recipe.write, frame.f_code.co_filename, recipe.line)
        self.accesses.append((key, kind, label, access))

    # -- Python 3.12+: sys.monitoring ------------------------------------------

    def _on_instruction(self, code: types.CodeType, offset: int) -> Any:
        frame = sys._getframe(1)
        recipes = self._for(code, frame)
        if recipes is None:
            return sys.monitoring.DISABLE  # type: ignore[attr-defined]
        recipe = recipes.get(offset)
        if recipe is None:
            return sys.monitoring.DISABLE  # type: ignore[attr-defined]
        self._record(recipe, frame)
        return None

    # -- Python 3.10-3.11: sys.settrace with opcode events ----------------------

    def _global_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if self._for(frame.f_code, frame) is None:
            return None
        frame.f_trace_opcodes = True
        return self._local_trace

    def _local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            recipes = self._recipes.get(frame.f_code)
            recipe = recipes.get(frame.f_lasti) if recipes else None
            if recipe is not None:
                self._record(recipe, frame)
        return self._local_trace

    def start(self) -> None:
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            for tool in range(6):
                if monitoring.get_tool(tool) is None:
                    monitoring.use_tool_id(tool, "seedloop race explainer")
                    self._tool = tool
                    break
        if self._tool is not None:
            events = sys.monitoring.events  # type: ignore[attr-defined]
            sys.monitoring.register_callback(  # type: ignore[attr-defined]
                self._tool, events.INSTRUCTION, self._on_instruction
            )
            sys.monitoring.set_events(self._tool, events.INSTRUCTION)  # type: ignore[attr-defined]
        else:
            self._previous = sys.gettrace()
            sys.settrace(self._global_trace)

    def stop(self) -> None:
        if self._tool is not None:
            monitoring = sys.monitoring  # type: ignore[attr-defined]
            monitoring.set_events(self._tool, 0)
            monitoring.register_callback(self._tool, monitoring.events.INSTRUCTION, None)
            monitoring.free_tool_id(self._tool)
            monitoring.restart_events()
            self._tool = None
        else:
            sys.settrace(self._previous)


def find_race(
    accesses: list[tuple[tuple[Any, ...], str, str, Access]], decisive: list[int]
) -> Race | None:
    """The read/write pair on one location, by two tasks, that the decisive switch ordered.

    A candidate is a read by task T at step a, then a write by another task at
    step b > a, with no write by T in between (T's value went stale).
    Preferred: T writes the location again later (a lost update), then a pair
    with a decisive step (a departure from FIFO in the shrunk tape) in
    a <= s <= b, then the pair closest together, then the latest. (A departure
    often moves a task earlier, before both accesses: then no step lies
    between them, and the race is the conflicting pair it brought about.)
    """
    by_location: dict[tuple[Any, ...], list[tuple[str, str, Access]]] = {}
    for key, kind, label, access in accesses:
        by_location.setdefault(key, []).append((kind, label, access))
    # Without a departure from FIFO (the failure happens in stock order) only a
    # lost update (the reader writes its stale value back) is named: a mere
    # read/write pair there is ordinary sequencing, not evidence of a race.
    require_overwrite = not decisive
    best: tuple[tuple[int, int, int, int], Race] | None = None
    for entries in by_location.values():
        if not any(a.write for _, _, a in entries):
            continue
        for i, (kind, label, write) in enumerate(entries):
            if not write.write:
                continue
            # The latest read of each other task before this write, unless that task wrote since.
            last_read: dict[str, Access] = {}
            for _, _, earlier in entries[:i]:
                if earlier.task == write.task:
                    continue
                if earlier.write:
                    last_read.pop(earlier.task, None)
                else:
                    last_read[earlier.task] = earlier
            for task, read in last_read.items():
                if read.step >= write.step:
                    continue
                # The departure may be the step that ran the read early itself.
                switch = next((s for s in decisive if read.step <= s <= write.step), None)
                overwrite = next(
                    (a for _, _, a in entries[i + 1 :] if a.task == task and a.write), None
                )
                if require_overwrite and overwrite is None:
                    continue
                rank = (
                    0 if overwrite else 1,
                    0 if switch is not None else 1,
                    write.step - read.step,
                    -write.step,
                )
                race = Race(kind, label, read, write, overwrite, switch)
                if best is None or rank < best[0]:
                    best = (rank, race)
    return best[1] if best else None


# Shown where users import it from: tracebacks, reprs and pickles say seedloop.Race.
Race.__module__ = "seedloop"
