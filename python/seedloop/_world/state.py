"""The per-run state: the World of one run (clocks, seeded streams) and the worlds by thread."""

from __future__ import annotations

import random
import threading

from .. import _engine
from ..errors import SimulationEscapeError


class World:
    """The deterministic world of one run (one thread)."""

    __slots__ = (
        "loop",
        "seed",
        "sleep",
        "wall_epoch",
        "wall_epoch_ns",
        "allow_threads",
        "escapes",
        "_random",
        "_urandom",
        "_seeds",
        "_node",
        "clock_read_cost",
        "_last_read",
    )

    def __init__(
        self,
        loop: _engine.LoopCore,
        seed: int,
        sleep: str,
        wall_epoch_ns: int,
        clock_read_cost: float = 0.0,
    ) -> None:
        self.loop = loop
        self.seed = seed
        self.sleep = sleep
        self.wall_epoch_ns = wall_epoch_ns
        self.wall_epoch = wall_epoch_ns / 1e9
        self.allow_threads = getattr(loop, "_executor_mode", "inline") == "thread"
        #: Every escape refused in this run, including ones the code caught.
        self.escapes: list[SimulationEscapeError] = []
        self._random: random.Random | None = None
        self._urandom: _engine.Rng | None = None
        self._seeds: _engine.Rng | None = None
        self._node: int | None = None
        self.clock_read_cost = clock_read_cost
        self._last_read = -1.0

    # Clocks: the loop's virtual time, read through `now`.
    def now(self) -> float:
        """The loop's time, as a clock read sees it.

        With ``clock_read_cost`` (suite mode), a read after another with no
        virtual time passed in between first charges that much to the loop's
        clock: on a real machine the code between two reads takes time, so
        consecutive reads differ (a rate limiter counting hits by ``start <= t
        < now``, a spin on ``monotonic()`` that would never end). The loop's
        clock moves with it, so a sleep begun after a read still ends after
        it. Without it (the default) every clock reads the same instant until
        the loop's time moves, and virtual times stay exact.
        """
        now = self.loop.time()
        if not self.clock_read_cost:
            return now
        if now <= self._last_read:
            self.loop._engine_advance(self.clock_read_cost)
            now = self.loop.time()
        self._last_read = now
        return now

    def monotonic(self) -> float:
        return self.now()

    def monotonic_ns(self) -> int:
        return round(self.now() * 1e9)

    def wall(self) -> float:
        return self.wall_epoch + self.now()

    def wall_ns(self) -> int:
        return self.wall_epoch_ns + round(self.now() * 1e9)

    # Randomness: one lazily created stream per source.
    def random(self) -> random.Random:
        """The run's stand-in for the global ``random`` instance."""
        inst = self._random
        if inst is None:
            inst = self._random = random.Random(_engine.derive_seed(self.seed, "random"))
        return inst

    def urandom(self, size: int) -> bytes:
        rng = self._urandom
        if rng is None:
            rng = self._urandom = _engine.Rng(self.seed, "world/urandom")
        return rng.bytes(size)

    def fresh_seed(self) -> int:
        rng = self._seeds
        if rng is None:
            rng = self._seeds = _engine.Rng(self.seed, "world/random-seed")
        return rng.next_u64()

    def node(self) -> int:
        if self._node is None:
            # A random 48-bit node with the multicast bit set (RFC 4122 4.5).
            raw = int.from_bytes(_engine.random_bytes(self.seed, "world/uuid-node", 6), "big")
            self._node = raw | (1 << 40)
        return self._node


_worlds: dict[int, World] = {}  # thread id -> its world (looked up, never iterated)
_get_ident = threading.get_ident
