"""The image lookups of one command-line run (``fix``, ``check``, ``audit``).

A run first gathers every image string its objects name, then looks them all up at once,
at most ``concurrency`` at a time, with one resolver: a registry host that cannot be reached
is probed once and remembered as down for the rest of the run (``failure_ttl`` is the run's
length), so an offline machine pays at most one timeout per host. The answers are handed to
the engine as ``{image string: ImageFacts}``.

Lookups are off (the cache and the offline table only) with ``--offline``, with
``HARDENER_IMAGES_OFFLINE=1`` in the environment, or with ``images.lookup: false`` in the
config; ``RunLookup.offline`` names which. On a terminal, a progress line appears on stderr
once the lookups have taken longer than a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from hardener.config import ImageSettings
from hardener.image_facts import ImageFacts
from hardener.images._resolve import ImageResolver
from hardener.locate import image_references

__all__ = [
    "OFFLINE_ENV",
    "RunLookup",
    "images_of",
    "lookup_run",
    "offline_reason",
]

OFFLINE_ENV = "HARDENER_IMAGES_OFFLINE"
"""``HARDENER_IMAGES_OFFLINE=1`` turns lookups off, as ``--offline`` does."""

_PROGRESS_AFTER = 1.0
_TICK = 0.2


@dataclass
class RunLookup:
    """What one run learnt about its images."""

    facts: dict[str, ImageFacts] = field(default_factory=dict)
    """Image string as written -> its facts."""
    offline: str | None = None
    """Why lookups were off (``--offline``, ``HARDENER_IMAGES_OFFLINE=1``,
    ``images.lookup: false``), or ``None`` when the registries were asked."""
    requests: int = 0
    """HTTP requests sent to registries."""
    seconds: float = 0.0


def offline_reason(settings: ImageSettings, flag: bool = False) -> str | None:
    """Why lookups are off for this run, or ``None`` when they are on."""
    if flag:
        return "--offline"
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value not in ("", "0", "false", "no", "off"):
        return f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]}"
    if not settings.lookup:
        return "images.lookup: false"
    return None


def images_of(objects: Iterable[Any]) -> list[str]:
    """Every image string the objects' containers name, each once, in order. An object of
    a shape no pod site can be read from names none (the engine reports it later)."""
    seen: dict[str, None] = {}
    for obj in objects:
        try:
            found = image_references(obj)
        except Exception:  # a malformed object: planning it reports the error with its place
            continue
        for image in found:
            seen.setdefault(image, None)
    return list(seen)


class _Progress:
    """``looking up images: 3/40`` on a terminal, once lookups take longer than a second."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.shown = False
        try:
            self.enabled = total > 0 and stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False

    def update(self, done: int | None = None) -> None:
        if done is not None:
            self.done = done
        if not self.enabled or time.monotonic() - self.started < _PROGRESS_AFTER:
            return
        self.shown = True
        self.stream.write(f"\rlooking up images: {self.done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * (30 + 2 * len(str(self.total))) + "\r")
            self.stream.flush()


async def _lookup(
    images: list[str],
    settings: ImageSettings,
    offline: bool,
    concurrency: int,
    progress: _Progress,
) -> tuple[dict[str, ImageFacts], int]:
    # One resolver for the run; a host found down stays down for the whole run.
    resolver = ImageResolver(
        settings, offline=offline, concurrency=concurrency, failure_ttl=math.inf
    )
    async with resolver:
        work = asyncio.ensure_future(
            resolver.lookup_many(images, on_done=lambda done, _: progress.update(done))
        )
        while not work.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(work), _TICK)
            progress.update()
        return work.result(), resolver.requests


def lookup_run(
    images: Iterable[str],
    settings: ImageSettings,
    *,
    offline: bool = False,
    concurrency: int = 16,
    stream: TextIO | None = None,
) -> RunLookup:
    """Facts for every image string of a run (``offline``: the ``--offline`` flag).

    Never raises for an image or a registry: what cannot be learnt is ``unknown`` with its
    reason. ``stream`` (default stderr) gets the progress line when it is a terminal."""
    unique = list(dict.fromkeys(images))
    reason = offline_reason(settings, offline)
    started = time.monotonic()
    if not unique:
        return RunLookup(offline=reason)
    progress = _Progress(sys.stderr if stream is None else stream, len(unique))
    try:
        facts, requests = asyncio.run(
            _lookup(unique, settings, reason is not None, concurrency, progress)
        )
    finally:
        progress.close()
    return RunLookup(facts, reason, requests, time.monotonic() - started)
