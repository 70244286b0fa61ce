"""The body budget: how many bytes of review bodies the server holds in memory at once.

A body parsed into Python objects takes up to 35 times its bytes (a body of empty arrays is
almost all objects), so a few large bodies at once, or work that outlives its deadline in a
worker thread, would take the process past its memory limit long before the CPU is busy.
Every body above the size hardened on the event loop takes a ``Lease`` on its bytes before it
is read (its ``Content-Length``, or ``webhook.max-body-bytes`` for a body of unknown length)
and gives it back only when nothing holds the body any more: the handler has answered *and*
the worker thread, if one was left running past the deadline, has finished.

A body that does not fit waits for room, first come first served, until the deadline; then
the handler answers 429 without reading it. A body larger than the whole budget gets in when
nothing else holds any, so one review of the largest allowed body is always served.

Everything here runs on the event loop (the leases are given back by done-callbacks, which
the loop runs), so no lock is needed.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["BodyBudget", "Lease"]


class Lease:
    """Bytes of the budget held for one body until every holder has let go of it."""

    __slots__ = ("_budget", "_holders", "size")

    def __init__(self, budget: BodyBudget, size: int) -> None:
        self._budget = budget
        self._holders = 1
        self.size = size

    def keep(self) -> None:
        """One more holder: a worker thread that goes on with the body after the handler."""
        self._holders += 1

    def release(self) -> None:
        """One holder lets go; the bytes go back to the budget with the last."""
        self._holders -= 1
        if self._holders == 0:
            self._budget._give_back(self.size)


class BodyBudget:
    """At most ``limit`` body bytes held at once (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.limit

    async def take(self, size: int, deadline: float) -> Lease | None:
        """A lease on ``size`` bytes, waiting for room until ``deadline`` (a loop time,
        ``time.monotonic()``); ``None`` when there was none by then."""
        if not self._waiting and self._fits(size):
            self.held += size
            return Lease(self, size)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout_at(deadline):
                # Shielded: a timeout leaves the waiter pending, so done() means granted.
                await asyncio.shield(waiter)
        except TimeoutError:
            self._abandon(entry)
            return None
        except BaseException:
            self._abandon(entry)
            raise
        return Lease(self, size)

    def _abandon(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        size, waiter = entry
        if waiter.done():
            # Granted as the time ran out (or as the handler was cancelled): give it back.
            self._give_back(size)
        else:
            self._waiting.remove(entry)
            # It may have been the head that held the others back.
            self._wake()

    def _give_back(self, size: int) -> None:
        self.held -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            size, waiter = self._waiting.popleft()
            self.held += size
            waiter.set_result(None)
