"""The decision tape of a run, kept compactly: one byte per step while every choice fits."""

from __future__ import annotations

import array
import sys
from typing import Any


class Tape(array.array):  # type: ignore[type-arg]
    """A decision tape (the index chosen among ready callbacks at each step).

    A sequence of ints stored one byte per step while every choice fits (a
    long run's tape has millions of steps); it compares equal to the list of
    the same ints and prints like one.
    """

    @classmethod
    def from_engine(cls, width: int, data: bytes) -> Tape:
        typecode = "B" if width == 1 else next(c for c in "IL" if array.array(c).itemsize == 4)
        tape = cls(typecode, data)
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
