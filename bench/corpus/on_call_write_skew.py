"""Write skew: three on-call engineers all sign off, among busy background tasks.

Bug class: check-then-act across three tasks (write skew). The rota must
keep at least one engineer on call; each engineer checks that at least two
are on call, awaits the paging service to reassign their alerts, then signs
off. Two engineers signing off is fine; all three doing so needs every
check to happen before any sign-off. Eight background tasks (metrics,
heartbeats, log shippers) add noise steps; arrivals are staggered, so stock
order serves the engineers one after another.
Depth 3: the second and third engineers must both check inside the first
one's window, and the third inside the second's.
"""

from __future__ import annotations

import asyncio

from ._util import io, start_noise

KIND = "write skew (check-then-act, three tasks)"
DEPTH = 3
TASKS = 12


class Rota:
    def __init__(self, engineers: list[str]) -> None:
        self.on_call = set(engineers)

    async def sign_off(self, who: str) -> bool:
        if len(self.on_call) < 2:
            return False
        await io(2)  # BUG: reassigning alerts; the head count above is stale after this
        self.on_call.discard(who)
        return True


async def engineer(rota: Rota, who: str, arrive: int) -> None:
    await io(arrive)
    await rota.sign_off(who)


async def scenario() -> None:
    names = ["ana", "bo", "cy"]
    rota = Rota(names)
    noise = start_noise(8, 25)
    await asyncio.gather(*(engineer(rota, n, 4 * i) for i, n in enumerate(names)))
    await asyncio.gather(*noise)
    assert rota.on_call, "nobody is on call"
