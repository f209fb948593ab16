"""Swapping every module binding and class attribute of a real object for its stand-in, and back."""

from __future__ import annotations

import copyreg
import sys
import uuid
from typing import Any

from .. import _engine
from . import disk, fake_fds, guards, standins
from .standins import _REDUCERS

# -- the patch table ----------------------------------------------------------

# (real object, stand-in): every module-level binding of a real object is
# swapped for its stand-in during runs. standins.py, guards.py, fake_fds.py
# and disk.py each list what they replace; joined stand-ins first.
_SWAPS: list[tuple[object, object]] = [
    *standins._SWAPS,
    *guards._SWAPS,
    *fake_fds._SWAPS,
    *disk._SWAPS,
]
# Keyed by id(): _SWAPS keeps every object alive, so an id never names another.
_STAND_IN: dict[int, object] = {id(real): fake for real, fake in _SWAPS}
_REAL_OF_FAKE: dict[int, object] = {id(fake): real for real, fake in _SWAPS}

# Class attributes replaced during runs: (class, name, stand-in).
_CLASS_PATCHES: list[tuple[type, str, object]] = [
    *standins._CLASS_PATCHES,
    *guards._CLASS_PATCHES,
    *disk._CLASS_PATCHES,
]

# Modules whose clock pairs with real OS waits (Condition.wait(timeout),
# Queue.get(timeout), Popen.wait(timeout), select): they keep the real clock.
_REAL_CLOCK_MODULES = frozenset(
    {
        "threading",
        "queue",
        "subprocess",
        "selectors",
        "socketserver",
        "ssl",
        "sched",
        "telnetlib",
        "trace",
        "_android_support",
        __name__,
    }
)
_REAL_CLOCK_PREFIXES = ("multiprocessing.", "concurrent.", "seedloop.")


class _Bindings:
    """The bindings of real objects in one module's globals, patched as a batch."""

    __slots__ = ("namespace", "keys", "reals", "stand_ins", "real_map")

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.keys: list[str] = []
        self.reals: list[object] = []
        self.stand_ins: dict[str, object] = {}
        self.real_map: dict[str, object] = {}

    def add(self, key: str, real: object, stand_in: object) -> None:
        self.keys.append(key)
        self.reals.append(real)
        self.stand_ins[key] = stand_in
        self.real_map[key] = real

    def batch(self) -> tuple[Any, ...]:
        """``(namespace, keys, reals, stand-ins)``: this module's entry of the patch table."""
        return (self.namespace, self.keys, self.reals, [self.stand_ins[k] for k in self.keys])


_modules: list[_Bindings] = []  # every module that binds a real object
# _modules as the engine's patch table (rebuilt when _modules changes).
_table = _engine.PatchTable([])
# module name -> (the module object scanned, its bindings or None). Entries of
# modules that left sys.modules (or were replaced) are dropped at the next scan.
_scanned: dict[str, tuple[object, _Bindings | None]] = {}
_scanned_len = -1


def _scanned_module(name: str) -> object:
    entry = _scanned.get(name)
    return None if entry is None else entry[0]


def _skip_module(name: str) -> bool:
    return name in _REAL_CLOCK_MODULES or name.startswith(_REAL_CLOCK_PREFIXES)


def _bindings(module: object, table: dict[int, object]) -> list[tuple[str, object, object]]:
    """``(name, value, replacement)`` for each global of ``module`` found in ``table``."""
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return []
    found = []
    for key, value in tuple(namespace.items()):
        replacement = table.get(id(value))
        if replacement is not None and isinstance(key, str):
            found.append((key, value, replacement))
    return found


def _scan_new_modules() -> None:
    """Find the bindings of real objects in modules not scanned before."""
    global _scanned_len
    modules = sys.modules
    if len(modules) == _scanned_len:
        return
    gone = [name for name, (module, _) in _scanned.items() if modules.get(name) is not module]
    for name in gone:
        _, old = _scanned.pop(name)
        if old is not None:
            _modules.remove(old)
    for name, module in tuple(modules.items()):
        if name in _scanned:
            continue
        entry = None
        if not _skip_module(name):
            found = _bindings(module, _STAND_IN)
            if found:
                entry = _Bindings(module.__dict__)
                for key, real, fake in found:
                    entry.add(key, real, fake)
                _modules.append(entry)
        _scanned[name] = (module, entry)
    _scanned_len = len(modules)
    global _table
    _table = _engine.PatchTable([entry.batch() for entry in _modules])


def _unleak_new_modules() -> None:
    """Modules imported during a run bound stand-ins: give them the real objects."""
    for name, module in tuple(sys.modules.items()):
        if _scanned_module(name) is module or _skip_module(name):
            continue
        namespace = module.__dict__
        for key, fake, real in _bindings(module, _REAL_OF_FAKE):
            if namespace.get(key) is fake:
                namespace[key] = real


# -- patching the process and restoring it ------------------------------------

_patched_table = _table  # the table the process was patched from (it knows which batches)
_undo: list[tuple[Any, Any, Any, bool]] = []  # (target, name, old value, own entry)
_modules_at_install = 0

# (target, name, stand-in) set for runs besides the module bindings: a dict
# target gets an item, anything else an attribute (classes through setattr,
# which keeps CPython's type caches right); the target's own entry is put
# back afterwards, or removed if it had none.
_SETS: list[tuple[Any, Any, object]] = [
    *_CLASS_PATCHES,
    # uuid1() must not read the host's MAC address and clock through libuuid.
    (uuid, "_generate_time_safe", None),
    # pickle (and copy) find a class by its name: while datetime.datetime is
    # the stand-in, real datetimes are reduced through the stand-in, which
    # loads back as the real class anywhere.
    *((copyreg.dispatch_table, cls, reducer) for cls, reducer in _REDUCERS),
]


def _patch_process() -> None:
    global _modules_at_install, _patched_table
    _scan_new_modules()
    # Every module whose bindings are all still the real objects, then every
    # attribute and mapping entry of _SETS, in one engine call (it records
    # what it did in the table and in _undo as it goes).
    _patched_table = _table
    skipped = _engine.patch_world(_table, _SETS, _undo)
    for i in skipped:
        # The module rebound some names since the scan: patch the rest one by one.
        entry = _modules[i]
        namespace = entry.namespace
        for key, real in zip(entry.keys, entry.reals, strict=True):
            if namespace.get(key) is real:
                namespace[key] = entry.stand_ins[key]
                _undo.append((namespace, key, real, True))
    _modules_at_install = len(sys.modules)


def _restore_process() -> None:
    _engine.restore_world(_undo, _patched_table)
    if len(sys.modules) != _modules_at_install:
        _unleak_new_modules()

