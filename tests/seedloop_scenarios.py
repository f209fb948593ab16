"""Scenarios importable by name, for tests that run them in worker processes."""

from __future__ import annotations

import asyncio
import multiprocessing

import seedloop


async def race() -> int:
    state = {"ready": False, "data": None}

    async def producer() -> None:
        state["data"] = 42
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer() -> object:
        await asyncio.sleep(0)
        return state["data"] if state["ready"] else "MISSED"

    _, seen = await asyncio.gather(producer(), consumer())
    assert seen == 42, "consumer missed the data"
    return seen


SLOW_SEED = 40
FAILING_SEEDS = (SLOW_SEED, 300)


async def slow_early_failure() -> int:
    """Fails at seeds 40 and 300; seed 40 takes long, so seed 300 fails first in time."""
    seed = asyncio.get_running_loop().seed
    if seed == SLOW_SEED:
        for _ in range(20_000):
            await asyncio.sleep(0)
    await asyncio.sleep(seed % 7)
    if seed in FAILING_SEEDS:
        raise ValueError(f"bad seed {seed}")
    return seed % 3


async def fails_only_in_workers() -> None:
    """Depends on something outside the simulation: which process runs it."""
    await asyncio.sleep(0)
    assert multiprocessing.parent_process() is None, "running in a worker process"


async def kills_its_process() -> None:
    """Ends the interpreter it runs in (in a worker process only)."""
    import os

    if multiprocessing.parent_process() is not None:
        os._exit(3)


_runs = [0]


async def leaks_state_between_runs() -> None:
    """Every other run takes an extra step: state carried over from the last run."""
    _runs[0] += 1
    if _runs[0] % 2:
        await asyncio.sleep(0)
    await asyncio.sleep(1)


async def lost_update() -> int:
    """Staggered workers increment a shared counter with a read-await-write
    window, among tasks that only make noise. In asyncio's order the windows
    never overlap; a lost update needs one worker to run ahead of another."""
    state = {"count": 0}

    async def worker(stagger: int) -> None:
        for _ in range(stagger):
            await asyncio.sleep(0)
        seen = state["count"]
        await asyncio.sleep(0)
        state["count"] = seen + 1

    async def noise() -> None:
        for _ in range(4):
            await asyncio.sleep(0)

    await asyncio.gather(worker(0), noise(), worker(2), noise(), worker(4))
    assert state["count"] == 3, f"lost update: count is {state['count']}, not 3"
    return state["count"]


async def missed() -> str:
    """Returns 'MISSED' (instead of raising) when the consumer runs first."""
    state = {"ready": False}

    async def producer() -> None:
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer() -> str:
        await asyncio.sleep(0)
        return "ok" if state["ready"] else "MISSED"

    _, seen = await asyncio.gather(producer(), consumer())
    return seen


CRASHING_SEED = 5


async def segfaults_at_seed_5() -> int:
    """Crashes the interpreter (SIGSEGV) at seed 5, in a worker process only."""
    seed = asyncio.get_running_loop().seed
    await asyncio.sleep(0)
    if seed == CRASHING_SEED and multiprocessing.parent_process() is not None:
        import ctypes

        ctypes.string_at(0)
    return seed


async def exits_at_seed_5() -> int:
    """Ends its process with os._exit(3) at seed 5, in a worker process only."""
    seed = asyncio.get_running_loop().seed
    await asyncio.sleep(0)
    if seed == CRASHING_SEED and multiprocessing.parent_process() is not None:
        import os

        os._exit(3)
    return seed


#: A seed past 2**63: a signed 64-bit cell would hold it as a negative number.
HUGE_CRASHING_SEED = 2**64 - 3


async def exits_at_a_huge_seed() -> int:
    """Ends its process with os._exit(3) at seed 2**64-3, in a worker process only."""
    seed = asyncio.get_running_loop().seed
    await asyncio.sleep(0)
    if seed == HUGE_CRASHING_SEED and multiprocessing.parent_process() is not None:
        import os

        os._exit(3)
    return seed


async def slow() -> int:
    """About a millisecond per seed: explorations of it last long enough to interrupt."""
    for _ in range(300):
        await asyncio.sleep(0)
    return 1


async def tight_deadline() -> str:
    """A reply due 0.5 ms before its deadline: asyncio's order always meets it,
    but on a real machine CPU time and a late timer can push it past."""

    async def reply() -> str:
        await asyncio.sleep(0.010)
        return "ok"

    return await asyncio.wait_for(reply(), timeout=0.0105)


async def with_goals() -> int:
    """Two workers that share a counter: the 'overlap' goal needs a reordering,
    the 'retry' path never runs; every run passes."""
    state = {"n": 0, "active": 0}

    async def work() -> None:
        state["active"] += 1
        seedloop.sometimes(state["active"] == 2, "overlap")
        await asyncio.sleep(0)
        state["active"] -= 1
        state["n"] += 1
        if state["n"] > 2:
            seedloop.reachable("retry")  # never: only two workers
        seedloop.always(state["n"] <= 2, "at most two increments")

    await asyncio.gather(work(), work())
    seedloop.reachable("done")
    seedloop.sometimes(state["n"] > 2, "third increment")
    return state["n"]
