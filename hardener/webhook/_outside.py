"""Decoding a body of very many JSON values in another process.

A JSON parser holds the GIL from the first byte to the last, and its cost grows with the
number of values it makes, not with the bytes: 3 MiB of ``[0],[0],...`` (786,000 lists) took
0.4 to 0.6 s to parse on a loaded machine, with the worker thread that parsed it holding the
event loop, the probes and every other review that long. Such a body is refused anyway
(``webhook.max-values``), but only once parsed.

So a body whose commas say it may hold more than ``OUTSIDE_COMMAS`` values (one comma stands
between any two values of an array or members of an object; commas inside strings only make
the estimate high, never low) is decoded and sized in a worker process, which has a GIL of its
own. It answers the review itself when the object is not one to harden (over a limit, a kind
hardener does not touch, a malformed envelope); otherwise the object is within the limits after
all, and the server decodes it again, at a cost those limits bound.

The worker comes from a fork server (never a fork of the server itself, whose threads may hold
locks) on the first such body, and each worker serves one body: the memory a hostile body
costs goes back to the system with the process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from hardener.config import Config
from hardener.webhook._envelope import (
    BadReviewError,
    decode_review,
)
from hardener.webhook._review import (
    ReviewResult,
    prepare_review,
)

__all__ = ["OUTSIDE_COMMAS", "Outside", "discard", "many_values"]

OUTSIDE_COMMAS = 100_000
"""Bodies with more commas than this are decoded in a worker process. A body of this many
values parses in under 10 ms on an idle core."""


def many_values(body: bytes) -> bool:
    """Whether ``body`` may hold more than about ``OUTSIDE_COMMAS`` JSON values (a count of
    its commas, at the speed of a memory scan)."""
    return body.count(b",") > OUTSIDE_COMMAS


def prepare_outside(body: bytes, config: Config) -> ReviewResult | None:
    """In the worker: the answer when the review needs no engine, or ``None`` when its object
    is one to harden (the server then decodes it itself). Raises ``BadReviewError`` for a
    malformed envelope, as ``decode_review`` does."""
    prepared = prepare_review(decode_review(body), config, body_bytes=len(body))
    return prepared if isinstance(prepared, ReviewResult) else None


class Outside:
    """The server's worker process for such bodies, made on first use."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _submit(self, body: bytes, config: Config) -> Future[ReviewResult | None]:
        # Starting a process waits for the fork server, which first imports this module
        # (half a second on a loaded machine): done in a thread, never on the event loop.
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
                self._pool = ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1)
            return self._pool.submit(prepare_outside, body, config)

    async def prepare(self, body: bytes, config: Config, deadline: float) -> ReviewResult | None:
        """``prepare_outside`` in the worker: its answer or ``None``. ``TimeoutError`` when
        none came by ``deadline``; ``BadReviewError`` for a malformed envelope, and when the
        worker died."""
        future: asyncio.Future[ReviewResult | None] | None = None
        try:
            async with asyncio.timeout_at(deadline):
                future = asyncio.wrap_future(await asyncio.to_thread(self._submit, body, config))
                return await asyncio.shield(future)
        except TimeoutError:
            if future is not None:
                future.add_done_callback(discard)
            raise
        except BrokenProcessPool:
            # The worker died (the memory limit, a signal): the next body gets a new one.
            self.close()
            raise BadReviewError(
                "", "the review could not be decoded: the decoding process stopped"
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def discard(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it as never retrieved
