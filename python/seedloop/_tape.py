"""A run's tapes, kept compactly: its decisions and, under ``feasible``, its timing."""

from __future__ import annotations

import array
import sys
from typing import Any

#: The unsigned array typecode of each item size (which code has it varies by
#: platform), worked out once: a run's result is built from it every time.
_TYPECODE = {
    width: next(c for c in codes if array.array(c).itemsize == width)
    for width, codes in ((1, "B"), (4, "IL"), (8, "LQ"))
}


class Tape(array.array):  # type: ignore[type-arg]
    """A sequence of ints from the engine, stored as machine words.

    The decision tape (the index chosen among ready callbacks at each step)
    is stored one byte per step while every choice fits (a long run's tape
    has millions of steps); a ``feasible`` run's timing (nanoseconds) eight
    bytes per entry. It compares equal to the list of the same ints and
    prints like one.
    """

    @classmethod
    def from_engine(cls, width: int, data: bytes) -> Tape:
        """``data``: little-endian words of ``width`` bytes (1, 4 or 8)."""
        tape = cls(_TYPECODE[width], data)
        if width > 1 and sys.byteorder == "big":
            tape.byteswap()  # the engine sends little-endian words
        return tape

    def __getitem__(self, index: Any) -> Any:
        item = array.array.__getitem__(self, index)
        if isinstance(index, slice):
            return type(self)(self.typecode, item)  # a slice is a Tape too
        return item

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            return len(self) == len(other) and self.tolist() == list(other)
        return array.array.__eq__(self, other)  # type: ignore[operator,no-any-return]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.tolist())
