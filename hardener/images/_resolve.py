"""From image strings to ``ImageFacts``: the one entry point the faces call.

Order of trust for one image: the cache (a digest's facts never change; a tag's digest is
trusted for ``tag_ttl`` seconds), then the registry, then, when the registry fails or lookups
are off, a stale cache entry, then the offline table, then ``ImageFacts.unknown`` with a detail
that says why. Concurrent lookups of the same image share one flight; lookups run at most
``concurrency`` at a time, each within ``images.timeout-seconds``, all within an optional overall
deadline. Nothing here raises for a bad image or a bad registry: every outcome is facts.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from hardener.config import ImageSettings, ImageTableEntry
from hardener.image_facts import ImageFacts, parse_image_user
from hardener.images._auth import auth_file_path, load_credentials
from hardener.images._cache import CachedFacts, ImageCache
from hardener.images._client import LookupFailed, RegistryClient
from hardener.images._reference import Reference, ReferenceError, parse_reference
from hardener.images._table import match_table

__all__ = [
    "LATENCY_BUCKETS",
    "ImageResolver",
    "LookupAnswer",
    "LookupMetrics",
    "cache_directory",
    "resolve_images",
    "resolve_images_sync",
]

DEFAULT_CACHE_DIR = ImageSettings().cache_dir
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class LookupMetrics:
    """Plain counters (a Prometheus exporter reads them; nothing here depends on one).

    ``outcomes`` counts answered lookups by the source of their facts (``registry``,
    ``cache``, ``table``, ``unknown``); ``cache_hits`` by kind (``tag``, ``facts``, and
    ``answer``: an image string answered moments ago, from memory);
    ``failures`` by kind (``host-down``, ``registry``, ``timeout``, ``deadline``, ``reference``);
    latency is a cumulative histogram over ``LATENCY_BUCKETS`` in seconds."""

    outcomes: Counter[str] = field(default_factory=Counter)
    cache_hits: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1


def cache_directory(settings: ImageSettings) -> Path:
    """Where the on-disk cache lives: ``images.cache-dir``; when the config leaves it at its
    default (``~/.cache/hardener/images``) and ``$XDG_CACHE_HOME`` is set to an absolute path,
    ``$XDG_CACHE_HOME/hardener/images``, as the XDG base directory specification asks."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if settings.cache_dir == DEFAULT_CACHE_DIR and os.path.isabs(xdg):
        return Path(xdg) / "hardener" / "images"
    return Path(settings.cache_dir).expanduser()


@dataclass(frozen=True)
class LookupAnswer:
    """One image's facts and, when they are a fallback, why: ``failure`` is the kind of
    failure (as in ``LookupMetrics.failures``) that made the resolver fall back to a stale
    cache entry, the table or unknown; ``None`` when the facts are what was asked for (looked
    up, a fresh cache entry, or, with lookups off, the cache and the table by design)."""

    facts: ImageFacts
    failure: str | None = None


def _table_ids(entry: ImageTableEntry) -> tuple[int | None, int | None]:
    parsed = parse_image_user(entry.user)
    gid = entry.gid
    if gid is None and ":" in entry.user and entry.user.split(":", 1)[1].isdigit():
        gid = int(entry.user.split(":", 1)[1])
    return (entry.uid if entry.uid is not None else parsed.uid), gid


class ImageResolver:
    """Looks images up for one face; keep one per process (webhook) or per run (CLI).

    ``offline`` (or ``images.lookup: false``) uses the cache and the table only.
    ``auth_file`` defaults to the first of ``$REGISTRY_AUTH_FILE``,
    ``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``; ``cache_dir`` to
    ``images.cache-dir`` (see ``cache_directory``; ``None`` keeps the cache in memory only)."""

    def __init__(
        self,
        settings: ImageSettings,
        *,
        offline: bool = False,
        concurrency: int = 8,
        auth_file: Path | None = None,
        cache_dir: Path | str | None = "config",
        metrics: LookupMetrics | None = None,
        tag_ttl: float = 60.0,
        failure_ttl: float = 30.0,
    ) -> None:
        self.settings = settings
        self.offline = offline or not settings.lookup
        self.metrics = metrics if metrics is not None else LookupMetrics()
        directory = cache_directory(settings) if cache_dir == "config" else cache_dir
        self.cache = ImageCache(None if directory is None else Path(directory), tag_ttl)
        self._credentials = load_credentials(auth_file or auth_file_path())
        self._concurrency = concurrency
        self._failure_ttl = failure_ttl
        self._semaphore: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None
        self._client: RegistryClient | None = None
        self._flights: dict[str, asyncio.Future[LookupAnswer]] = {}
        self._tag_ttl = tag_ttl
        # Answers by image string as written, with the monotonic time they stay good until: a
        # repeated image (every review of a rollout) is one dict lookup, not a parse, a cache
        # probe and a table match; a failed lookup is not asked again for ``failure_ttl``.
        self._answers: dict[str, tuple[float, LookupAnswer]] = {}
        self._closed_requests = 0

    async def __aenter__(self) -> ImageResolver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for flight in self._flights.values():
            flight.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._client is not None:
            self._closed_requests += self._client.requests
            self._client = None

    @property
    def credentials_source(self) -> str | None:
        """The auth file the credentials were read from (``None``: none found)."""
        return self._credentials.source

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (probes, tokens, manifests, blobs)."""
        return self._closed_requests + (0 if self._client is None else self._client.requests)

    def _registry(self) -> RegistryClient:
        if self._client is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self.settings.timeout_seconds,
                    sock_read=self.settings.timeout_seconds,
                ),
                headers={"User-Agent": "hardener (image facts)"},
            )
            self._client = RegistryClient(
                self._session,
                self.settings,
                self._credentials,
                self.cache,
                failure_ttl=self._failure_ttl,
            )
        return self._client

    # -- the public calls -----------------------------------------------------------------
    async def lookup(self, image: str) -> ImageFacts:
        """The facts of one image string, exactly as a manifest writes it."""
        return (await self.lookup_answer(image)).facts

    async def lookup_answer(self, image: str) -> LookupAnswer:
        """``lookup``, and whether the facts are a fallback after a failure, and why."""
        started = time.monotonic()
        try:
            ref = parse_reference(image)
        except ReferenceError as exc:
            self.metrics.failures["reference"] += 1
            answer = LookupAnswer(ImageFacts.unknown(image, f"{exc}; nothing to look up"))
        else:
            key = str(ref)
            flight = self._flights.get(key)
            if flight is None:
                flight = asyncio.ensure_future(self._lookup(ref))
                self._flights[key] = flight
                flight.add_done_callback(lambda _: self._flights.pop(key, None))
            answer = await asyncio.shield(flight)
        if answer.failure != "deadline":
            self._remember(image, answer)
        self.metrics.outcomes[answer.facts.source] += 1
        self.metrics.observe(time.monotonic() - started)
        return answer

    _MAX_ANSWERS = 4096

    def _remember(self, image: str, answer: LookupAnswer) -> None:
        """Keep ``answer`` for ``image``: a failure for ``failure_ttl``, anything else for
        the tag TTL (the facts behind a digest never change; a tag is asked again after it).
        Facts just looked up are not kept as such: asked again, they are the cache's."""
        if answer.facts.source == "registry" and answer.failure is None:
            return
        if len(self._answers) >= self._MAX_ANSWERS:
            self._answers.clear()
        ttl = self._failure_ttl if answer.failure is not None else self._tag_ttl
        self._answers[image] = (time.monotonic() + ttl, answer)

    def answer_now(self, image: str) -> LookupAnswer | None:
        """The answer when it needs no network, without waiting: lookups off (the cache and
        the table), a fresh cache entry, or a string no runtime could pull; ``None`` when the
        registry must be asked (then call ``lookup_answer``). Counted as ``lookup_answer``
        counts; an answer given before (within its TTL) counts as a cache hit of kind
        ``answer``."""
        started = time.monotonic()
        known = self._answers.get(image)
        if known is not None and known[0] > started:
            answer = known[1]
            self.metrics.cache_hits["answer"] += 1
        else:
            try:
                ref = parse_reference(image)
            except ReferenceError as exc:
                self.metrics.failures["reference"] += 1
                answer = LookupAnswer(ImageFacts.unknown(image, f"{exc}; nothing to look up"))
            else:
                if self.offline:
                    answer = LookupAnswer(self._fallback(ref, "lookups are off (offline)"))
                else:
                    cached = self._cached(ref)
                    if cached is None:
                        return None
                    answer = LookupAnswer(cached)
            self._remember(image, answer)
        self.metrics.outcomes[answer.facts.source] += 1
        self.metrics.observe(time.monotonic() - started)
        return answer

    def fallback(self, image: str, reason: str, failure: str = "deadline") -> LookupAnswer:
        """What is known without the registry (a cached lookup of any age, the table, else
        unknown), for a lookup its caller stopped waiting for; counted as a ``failure``."""
        self.metrics.failures[failure] += 1
        try:
            facts = self._fallback(parse_reference(image), reason)
        except ReferenceError as exc:
            facts = ImageFacts.unknown(image, str(exc))
        self.metrics.outcomes[facts.source] += 1
        return LookupAnswer(facts, failure)

    async def lookup_many(
        self,
        images: Iterable[str],
        *,
        deadline: float | None = None,
        on_done: Callable[[int, int], None] | None = None,
    ) -> dict[str, ImageFacts]:
        """Facts for every distinct image string; past ``deadline`` seconds the unanswered
        ones get what the cache or the table knows (else unknown). ``on_done(done, total)``
        is called as answers come in (a progress line)."""
        answers = await self.lookup_answers(images, deadline=deadline, on_done=on_done)
        return {image: answer.facts for image, answer in answers.items()}

    async def lookup_answers(
        self,
        images: Iterable[str],
        *,
        deadline: float | None = None,
        on_done: Callable[[int, int], None] | None = None,
    ) -> dict[str, LookupAnswer]:
        """``lookup_many`` with each image's ``LookupAnswer``."""
        unique = list(dict.fromkeys(images))
        tasks = {image: asyncio.ensure_future(self.lookup_answer(image)) for image in unique}
        results: dict[str, LookupAnswer] = {}
        if tasks:
            if on_done is not None:
                total = len(tasks)
                for task in tasks.values():
                    task.add_done_callback(
                        lambda _: on_done(sum(t.done() for t in tasks.values()), total)
                    )
            await asyncio.wait(tasks.values(), timeout=deadline)
        for image, task in tasks.items():
            if task.done() and not task.cancelled():
                results[image] = task.result()
                continue
            task.cancel()
            results[image] = self.fallback(
                image, f"the overall lookup deadline ({deadline:g}s) passed"
            )
        return results

    # -- one image ------------------------------------------------------------------------
    async def _lookup(self, ref: Reference) -> LookupAnswer:
        if self.offline:
            return LookupAnswer(self._fallback(ref, "lookups are off (offline)"))
        cached = self._cached(ref)
        if cached is not None:  # no slot, no timeout: nothing to wait for
            return LookupAnswer(cached)
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        async with self._semaphore:
            try:
                async with asyncio.timeout(self.settings.timeout_seconds):
                    return LookupAnswer(await self._online(ref))
            except LookupFailed as exc:
                kind = "host-down" if exc.host_down else "registry"
                self.metrics.failures[kind] += 1
                return LookupAnswer(self._fallback(ref, exc.detail), kind)
            except TimeoutError:
                self.metrics.failures["timeout"] += 1
                return LookupAnswer(
                    self._fallback(
                        ref,
                        f"the lookup took longer than images.timeout-seconds "
                        f"({self.settings.timeout_seconds:g}s)",
                    ),
                    "timeout",
                )

    def _cached(self, ref: Reference) -> ImageFacts | None:
        """The facts when a fresh tag (or the reference's own digest) and its facts are
        cached."""
        digest = ref.digest
        if digest is None:
            cached_tag = self.cache.tag(f"{ref.name}:{ref.tag}")
            if cached_tag is None:
                return None
            digest = cached_tag[0]
        cached = self.cache.facts(digest, self.settings.platform)
        if cached is None:
            return None
        if ref.digest is None:
            self.metrics.cache_hits["tag"] += 1
        self.metrics.cache_hits["facts"] += 1
        return self._facts(ref, digest, cached, "cache", "from the cache")

    async def _online(self, ref: Reference) -> ImageFacts:
        client = self._registry()
        digest = ref.digest
        tag_key = f"{ref.name}:{ref.tag}"
        if digest is None:
            cached_tag = self.cache.tag(tag_key)
            if cached_tag is not None:
                self.metrics.cache_hits["tag"] += 1
                digest = cached_tag[0]
            else:
                digest = await client.resolve_digest(ref)
                self.cache.put_tag(tag_key, digest)
        platform = self.settings.platform
        cached = self.cache.facts(digest, platform)
        if cached is not None:
            self.metrics.cache_hits["facts"] += 1
            return self._facts(ref, digest, cached, "cache", "from the cache")
        found, final = await client.image_facts(ref, digest)
        if final:
            self.cache.put_facts(digest, platform, found)
        return self._facts(ref, digest, found, "registry", f"looked up in {ref.registry}")

    def _facts(
        self, ref: Reference, digest: str, found: CachedFacts, source: Any, where: str
    ) -> ImageFacts:
        table = match_table(ref, self.settings.table)
        writable = table[1].writable_paths if table is not None else ()
        notes = [f"{where} ({self.settings.platform}, {digest})"]
        if found.detail:
            notes.append(found.detail)
        if writable:
            notes.append(f"writable paths from the offline table ({table[0] if table else ''})")
        return ImageFacts(
            reference=str(ref),
            source=source,
            user=found.user,
            uid=found.uid,
            gid=found.gid,
            volumes=found.volumes,
            writable_paths=writable,
            digest=digest,
            detail="; ".join(notes),
        )

    def _fallback(self, ref: Reference, reason: str) -> ImageFacts:
        """What is known without the registry: a cached lookup of any age, else the table."""
        digest = ref.digest
        if digest is None:
            stale = self.cache.tag(f"{ref.name}:{ref.tag}", any_age=True)
            digest = stale[0] if stale is not None else None
        if digest is not None:
            cached = self.cache.facts(digest, self.settings.platform)
            if cached is not None:
                self.metrics.cache_hits["facts"] += 1
                return self._facts(ref, digest, cached, "cache", f"{reason}; from the cache")
        table = match_table(ref, self.settings.table)
        if table is not None:
            key, entry = table
            uid, gid = _table_ids(entry)
            return ImageFacts(
                reference=str(ref),
                source="table",
                user=entry.user,
                uid=uid,
                gid=gid,
                volumes=entry.volumes,
                writable_paths=entry.writable_paths,
                digest=ref.digest,
                detail=f"{reason}; from the offline table ({key}: {entry.source})",
            )
        return ImageFacts.unknown(
            str(ref),
            f"{reason}; not cached and not in the offline table (add it under images.table)",
        )


async def resolve_images(
    images: Iterable[str],
    settings: ImageSettings,
    *,
    offline: bool = False,
    deadline: float | None = None,
    concurrency: int = 8,
    on_done: Callable[[int, int], None] | None = None,
) -> dict[str, ImageFacts]:
    """Facts for each image string, with a resolver made and closed for this call."""
    async with ImageResolver(settings, offline=offline, concurrency=concurrency) as resolver:
        return await resolver.lookup_many(images, deadline=deadline, on_done=on_done)


def resolve_images_sync(
    images: Iterable[str],
    settings: ImageSettings,
    *,
    offline: bool = False,
    deadline: float | None = None,
    concurrency: int = 8,
    on_done: Callable[[int, int], None] | None = None,
) -> dict[str, ImageFacts]:
    """``resolve_images`` for synchronous callers (the CLI); runs its own event loop."""
    return asyncio.run(
        resolve_images(
            images,
            settings,
            offline=offline,
            deadline=deadline,
            concurrency=concurrency,
            on_done=on_done,
        )
    )
