"""The aiohttp applications: ``POST /mutate``, the probes, and ``/metrics`` on its own port.

The ``/mutate`` handler only reads the body, hands it to the pure functions of ``_review`` and
writes the answer; the rest is bookkeeping (deadline, metrics, one log line). It never answers
500: a malformed call gets a 400 with a JSON ``{"error", "field"}`` body, and any unexpected
failure while hardening admits the object unchanged with a warning.

Most reviews are hardened on the event loop: a pod takes well under a millisecond, and a hop
to a thread would cost more than it saves. Whether a review is small is decided by the work it
brings, not only by its bytes: a body above ``OFFLOAD_BYTES``, or an object with more than
``OFFLOAD_CONTAINERS`` containers or ``OFFLOAD_VOLUMES`` volumes, is hardened in a worker
thread (a 250 KB pod of 8,600 tiny containers takes seconds), so that the event loop, with
the probes and the other reviews, stays free. The work itself is bounded before it starts
(``webhook.max-containers``, ``max-volumes``, ``max-values``: over them the object is admitted
unchanged with a warning), so a worker never runs for long after the handler stopped waiting
for it at the deadline, and the next review does not queue behind it: work still queued for
a thread when its deadline passes is dropped unstarted.

Memory is bounded the same way: a body above ``OFFLOAD_BYTES`` holds a lease on the body
budget (``webhook.max-bytes-in-flight``, see ``_budget``) from before it is read until nothing
holds it any more, abandoned work past the deadline included; a body that finds no room by
the deadline is answered 429 unread.

Image facts: the app owns one ``ImageResolver`` (made at startup, closed at cleanup). Before
the engine runs, each image the object names is answered from memory when it can be (lookups
off, a fresh cache entry) and otherwise looked up on the event loop, all within
``LOOKUP_SHARE`` of the deadline. A lookup that fails or is still running then gets the
fallback (a cached lookup of any age, the offline table, else ``images.unknown``) and a warning
that names the image and the reason; the review is never refused and never waits longer. A
lookup cut short carries on in the background and fills the cache for the next review;
concurrent reviews of one image share one lookup.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hardener.config import Config, ImageSettings, WebhookSettings, default_config
from hardener.image_facts import ImageFacts
from hardener.images import ImageResolver, LookupAnswer, LookupMetrics, offline_reason
from hardener.locate import image_references
from hardener.model import HardenerError, preview
from hardener.userns import Support
from hardener.webhook._budget import BodyBudget, Lease
from hardener.webhook._envelope import (
    BadReviewError,
    decode_review,
    encode_review,
)
from hardener.webhook._logs import LOGGER_NAME, log_review
from hardener.webhook._metrics import BAD_REQUEST, BUSY, Metrics
from hardener.webhook._outside import Outside, discard, many_values
from hardener.webhook._review import (
    ReviewResult,
    ReviewWork,
    error_result,
    finish_review,
    past_deadline_result,
    prepare_review,
)
from hardener.webhook._tls import CertReloader

__all__ = [
    "CONFIG_KEY",
    "LOOKUP_SHARE",
    "METRICS_KEY",
    "OFFLOAD_BYTES",
    "OFFLOAD_CONTAINERS",
    "OFFLOAD_VOLUMES",
    "REVIEW_THREADS",
    "STATE_KEY",
    "SUPPORT_KEY",
    "ImageResolverFactory",
    "ServerState",
    "create_app",
    "create_metrics_app",
]

OFFLOAD_BYTES = 8 * 1024
"""Bodies larger than this are decoded and hardened in a worker thread, off the event loop."""

OFFLOAD_CONTAINERS = 16
"""Objects with more containers than this are hardened in a worker thread."""

OFFLOAD_VOLUMES = 64
"""Objects with more volumes than this are hardened in a worker thread."""

LOOKUP_SHARE = 0.75
"""The share of ``webhook.deadline-seconds`` that image lookups may take; the rest is left for
the engine and the answer."""

REVIEW_THREADS = 4
"""Worker threads for the reviews hardened off the event loop."""

SWITCH_INTERVAL = 0.0005
"""Seconds between GIL hand-overs once reviews run in worker threads (see ``_in_thread``)."""

_log = logging.getLogger(LOGGER_NAME)
_T = TypeVar("_T")

_LEASE: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("lease", default=None)
"""The body lease of the review this task handles: ``_in_thread`` hands it to the work it
leaves running past the deadline (each handler runs in a task, with a context of its own)."""


@dataclass
class ServerState:
    """What the probes report: started, the certificate loaded, not shutting down."""

    tls: CertReloader | None = None
    started: bool = False
    draining: bool = False
    in_flight: int = 0
    budget: BodyBudget = field(
        default_factory=lambda: BodyBudget(WebhookSettings().max_bytes_in_flight)
    )
    executor: ThreadPoolExecutor | None = field(default=None, repr=False)
    outside: Outside = field(default_factory=Outside, repr=False)
    """The worker process that decodes bodies of very many values (``_outside``)."""
    images: ImageResolver | None = field(default=None, repr=False)
    """The process's image resolver, from startup to cleanup."""
    lookups: LookupMetrics = field(default_factory=LookupMetrics, repr=False)
    _idle: asyncio.Event | None = field(default=None, repr=False)

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no review is being handled; False if ``timeout`` passed first."""
        self._idle = asyncio.Event()
        if self.in_flight == 0:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def not_ready_reason(self) -> str | None:
        if self.draining:
            return "shutting down"
        if not self.started:
            return "not started"
        if self.tls is not None and not self.tls.loaded:
            return "the serving certificate is not loaded"
        return None


ImageResolverFactory = Callable[[ImageSettings, LookupMetrics], ImageResolver | None]
"""Makes the app's ``ImageResolver`` at startup from ``images:`` and the counters to fill; one
that returns ``None`` learns no facts at all (every image is left to ``images.unknown``, as
the engine does without facts)."""


def _resolver(settings: ImageSettings, lookups: LookupMetrics) -> ImageResolver:
    # HARDENER_IMAGES_OFFLINE=1 means what it means for fix: the table and the cache only.
    return ImageResolver(settings, metrics=lookups, offline=offline_reason(settings) is not None)


CONFIG_KEY = web.AppKey("config", Config)
RESOLVER_KEY: web.AppKey[ImageResolverFactory] = web.AppKey("image_resolver")
METRICS_KEY = web.AppKey("metrics", Metrics)
STATE_KEY = web.AppKey("state", ServerState)
SUPPORT_KEY: web.AppKey[Callable[[], Support | None]] = web.AppKey("user_namespaces")
"""What the cluster supports for user namespaces now, read from memory in each review (the
node watch of ``user-namespaces: auto``); ``None`` when no watch runs: ``auto`` is then off,
as in ``fix``."""


def _json(status: int, payload: dict[str, object]) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


def _bad_request(metrics: Metrics, started: float, error: BadReviewError) -> web.Response:
    metrics.by_outcome[BAD_REQUEST].inc()
    metrics.latency.observe(time.monotonic() - started)
    _log.warning(
        "bad request",
        extra={"fields": {"error": error.message, "field": error.field or None}},
    )
    return _json(400, {"error": str(error), "field": error.field or None})


def _prepare(body: bytes, config: Config) -> tuple[ReviewResult | ReviewWork, list[str]]:
    """Decode the body and size the work (``BadReviewError`` for a malformed envelope), and
    list the images the object names (found in the same place, so that a large object is
    walked in the worker thread, not on the event loop)."""
    prepared = prepare_review(decode_review(body), config, body_bytes=len(body))
    if isinstance(prepared, ReviewResult):
        return prepared, []
    try:
        return prepared, image_references(prepared.obj, prepared.sites)
    except HardenerError:
        return prepared, []


def _finish(
    work: ReviewWork,
    config: Config,
    deadline: float,
    support: Support | None,
    images: dict[str, ImageFacts] | None = None,
    lookup_warnings: tuple[str, ...] = (),
) -> ReviewResult:
    try:
        return finish_review(
            work,
            config,
            deadline=deadline,
            user_namespaces=support,
            images=images,
            lookup_warnings=lookup_warnings,
        )
    except Exception:
        _log.exception("review failed", extra={"fields": {"uid": work.request["uid"]}})
        return error_result(work.request)


def _small(work: ReviewWork) -> bool:
    return work.containers <= OFFLOAD_CONTAINERS and work.volumes <= OFFLOAD_VOLUMES


def _payload_error(error: Exception, limit: int) -> BadReviewError:
    """What went wrong while reading the body, for the 400: a body over the limit, a corrupt
    compressed body, a connection cut short. The reason is aiohttp's, clipped."""
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return BadReviewError("", f"the body is over the limit of {limit} bytes")
    cause = error.__cause__ or error
    reason = cause.message if isinstance(cause, HttpProcessingError) else str(cause)
    reason = " ".join(reason.split()) or type(cause).__name__
    return BadReviewError(
        "", f"the body could not be read: {preview(reason)} ({type(error).__name__})"
    )


def _busy(metrics: Metrics, started: float, config: Config) -> web.Response:
    metrics.by_outcome[BUSY].inc()
    metrics.latency.observe(time.monotonic() - started)
    message = (
        "too many large reviews at once: no room for this body within the "
        f"{config.webhook.deadline_seconds:g}s deadline (webhook.max-bytes-in-flight is "
        f"{config.webhook.max_bytes_in_flight} bytes)"
    )
    _log.warning("busy", extra={"fields": {"error": message}})
    refused = _json(429, {"error": message, "field": None})
    refused.headers["Retry-After"] = "1"
    # The body stays unread: close the connection after the answer rather than read it.
    refused.force_close()
    return refused


def _leased_bytes(request: web.Request, limit: int) -> int:
    """The bytes of the body budget a body holds: its length (the limit when it is not known
    in advance), or 0 for a body small enough to be hardened on the event loop and for one
    over the limit (refused unread)."""
    length = request.content_length
    size = limit if length is None else length
    return size if OFFLOAD_BYTES < size <= limit else 0


async def _read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise BadReviewError("", f"the body is {length} bytes, over the limit of {limit} bytes")
    try:
        return await request.read()
    except (
        web.HTTPRequestEntityTooLarge,
        web.RequestPayloadError,
        HttpProcessingError,
        ConnectionResetError,
    ) as exc:
        # RequestPayloadError: a corrupt gzip or deflate body, a chunked body cut short;
        # its cause says which. ConnectionResetError: the client closed the connection in the
        # middle of the body; left to aiohttp, that was an ERROR with a traceback and a 500.
        raise _payload_error(exc, limit) from None


_JSON = "application/json"


async def _mutate(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG_KEY]
    metrics = app[METRICS_KEY]
    state = app[STATE_KEY]
    started = time.monotonic()
    deadline = started + config.webhook.deadline_seconds
    state.enter()
    lease: Lease | None = None
    try:
        # The API server sends exactly "application/json"; parse the header only otherwise.
        if request.headers.get("Content-Type") != _JSON and request.content_type != _JSON:
            return _bad_request(
                metrics,
                started,
                BadReviewError(
                    "Content-Type",
                    "must be application/json, got "
                    + preview(request.headers.get("Content-Type", "none")),
                ),
            )
        size = _leased_bytes(request, config.webhook.max_body_bytes)
        if size:
            lease = await state.budget.take(size, deadline)
            if lease is None:
                return _busy(metrics, started, config)
            _LEASE.set(lease)  # reset below: a keep-alive connection may share the context
        try:
            if request.content.is_eof():
                # The whole body is in already (the usual case: it came with the headers),
                # so reading it cannot wait on the network: no timer needed.
                body = await _read_body(request, config.webhook.max_body_bytes)
            else:
                async with asyncio.timeout_at(deadline):
                    body = await _read_body(request, config.webhook.max_body_bytes)
        except TimeoutError:
            return _bad_request(
                metrics,
                started,
                BadReviewError(
                    "",
                    "the body did not arrive within the "
                    f"{config.webhook.deadline_seconds:g}s deadline",
                ),
            )
        except BadReviewError as exc:
            # The rest of the body cannot be read (too large, corrupt): close the connection
            # after the answer rather than read on (aiohttp would, and fail again).
            refused = _bad_request(metrics, started, exc)
            refused.force_close()
            return refused
        try:
            # A read from memory: the node watch publishes, a review never waits on it.
            support = app[SUPPORT_KEY]()
            result, fell_back = await _review_body(state, metrics, body, config, started, support)
        except BadReviewError as exc:
            return _bad_request(metrics, started, exc)
        except Exception:
            # A bug outside the engine (the engine's own failures are caught in _finish):
            # still answer.
            _log.exception("review failed")
            return _bad_request(metrics, started, BadReviewError("", "internal error"))
        answer = encode_review(result.response)
        latency = time.monotonic() - started
        outcome = result.outcome
        metrics.by_outcome[outcome].inc()
        if outcome == "patched":
            metrics.count_patch(result.rules)
        if result.user_namespace:
            metrics.count_user_namespace(result.user_namespace)
        metrics.latency.observe(latency)
        log_review(
            {
                "uid": result.response["uid"],
                "kind": result.kind,
                "namespace": result.namespace,
                "name": result.name,
                "operation": result.operation,
                "subresource": result.subresource or None,
                "outcome": outcome,
                "rules": result.rules,
                "ops": result.ops,
                "violations": result.violations,
                "image_fallbacks": fell_back or None,
                "latency_ms": round(latency * 1000, 3),
            }
        )
        return web.Response(body=answer, content_type=_JSON)
    finally:
        if lease is not None:
            lease.release()
            _LEASE.set(None)
        state.leave()


async def _review_body(
    state: ServerState,
    metrics: Metrics,
    body: bytes,
    config: Config,
    started: float,
    support: Support | None,
) -> tuple[ReviewResult, tuple[str, ...]]:
    """Decode, size, learn the images' facts and harden: on the event loop when the work is
    small, else in a thread. Also the images whose lookup fell back, for the log line."""
    deadline = started + config.webhook.deadline_seconds
    if len(body) <= OFFLOAD_BYTES:
        prepared, names = _prepare(body, config)
    else:
        try:
            if many_values(body):
                answered = await state.outside.prepare(body, config, deadline)
                if answered is not None:
                    return answered, ()
            prepared, names = await _in_thread(state, deadline, _prepare, body, config)
        except TimeoutError:
            raise BadReviewError(
                "", "the review could not be decoded within the deadline"
            ) from None
    if isinstance(prepared, ReviewResult):
        return prepared, ()
    try:
        images, lookup_warnings, fell_back = await _image_facts(
            state, metrics, names, config, started
        )
    except Exception:
        # A bug in the lookups must not cost the review: harden without facts.
        _log.exception("image lookups failed", extra={"fields": {"uid": prepared.request["uid"]}})
        images, lookup_warnings, fell_back = None, (), ()
    if len(body) <= OFFLOAD_BYTES and _small(prepared):
        return _finish(prepared, config, deadline, support, images, lookup_warnings), fell_back
    try:
        result = await _in_thread(
            state, deadline, _finish, prepared, config, deadline, support, images, lookup_warnings
        )
    except TimeoutError:
        result = past_deadline_result(prepared.request, config.webhook.deadline_seconds)
    return result, fell_back


async def _image_facts(
    state: ServerState, metrics: Metrics, names: list[str], config: Config, started: float
) -> tuple[dict[str, ImageFacts] | None, tuple[str, ...], tuple[str, ...]]:
    """The facts of the images ``names`` (each once), a warning for each lookup that fell
    back, and those images.

    Answers from memory first (no task, no wait: the common case once the cache is warm, and
    every case with lookups off); the rest are looked up together until ``LOOKUP_SHARE`` of
    the deadline, then given the fallback.
    """
    resolver = state.images
    if resolver is None:  # not started (or already cleaned up): the engine's policy decides
        return None, (), ()
    facts: dict[str, ImageFacts] = {}
    warnings: list[str] = []
    failed: list[str] = []
    pending: list[str] = []
    for image in names:
        answer = resolver.answer_now(image)
        if answer is None:
            pending.append(image)
        else:
            _note(metrics, facts, warnings, failed, image, answer)
    if pending:
        budget = config.webhook.deadline_seconds * LOOKUP_SHARE
        tasks = {image: asyncio.ensure_future(resolver.lookup_answer(image)) for image in pending}
        await asyncio.wait(tasks.values(), timeout=max(0.0, started + budget - time.monotonic()))
        for image, task in tasks.items():
            if not task.done():
                task.cancel()  # only this review's wait: the shared lookup carries on
                answer = resolver.fallback(
                    image,
                    f"no answer within the webhook's lookup budget ({budget:g}s of the "
                    f"{config.webhook.deadline_seconds:g}s deadline)",
                )
            elif task.cancelled():  # the resolver closed under it: shutting down
                answer = resolver.fallback(image, "the lookup was cancelled (shutting down)")
            elif task.exception() is not None:
                _log.error(
                    "image lookup failed",
                    exc_info=task.exception(),
                    extra={"fields": {"image": image}},
                )
                answer = resolver.fallback(image, "the lookup failed (see the log)", "error")
            else:
                answer = task.result()
            _note(metrics, facts, warnings, failed, image, answer)
    return facts, tuple(warnings), tuple(failed)


def _note(
    metrics: Metrics,
    facts: dict[str, ImageFacts],
    warnings: list[str],
    failed: list[str],
    image: str,
    answer: LookupAnswer,
) -> None:
    found = answer.facts
    facts[image] = found
    if answer.failure is None:
        metrics.count_image(found.source)
        return
    metrics.count_image("fallback")
    failed.append(image)
    used = {"cache": "a cached lookup", "table": "the offline table"}.get(found.source)
    using = f"using {used}" if used else "facts unknown, images.unknown applies"
    warnings.append(f"hardener: image {image}: lookup failed, {using}: {found.detail}")


async def _in_thread(
    state: ServerState, deadline: float, work: Callable[..., _T], *args: Any
) -> _T:
    """``work(*args)`` in a worker thread; ``TimeoutError`` at ``deadline``.

    Past the deadline the thread carries on and its answer is dropped. The limits keep that
    short, and with ``REVIEW_THREADS`` workers the next review does not wait for it; work that
    has not started by then never starts. The body's lease is kept until the thread is done.
    """
    loop = asyncio.get_running_loop()
    if state.executor is None:
        # A worker holding the GIL hands it back every switch interval (5 ms by default); the
        # loop needs it several times per probe or review, so a shorter interval keeps
        # /healthz and small reviews answering within milliseconds while a large one runs.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        state.executor = ThreadPoolExecutor(
            max_workers=REVIEW_THREADS, thread_name_prefix="hardener-review"
        )
    future = loop.run_in_executor(state.executor, _unless_late, deadline, work, *args)
    try:
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(future)
    except TimeoutError:
        future.add_done_callback(discard)
        lease = _LEASE.get()
        if lease is not None:
            lease.keep()
            future.add_done_callback(lambda _: lease.release())
        raise


def _unless_late(deadline: float, work: Callable[..., _T], *args: Any) -> _T:
    """``work(*args)``, unless the handler stopped waiting for it while it was queued."""
    if time.monotonic() > deadline:
        raise TimeoutError
    return work(*args)


async def _healthz(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    reason = request.app[STATE_KEY].not_ready_reason()
    if reason is None:
        return _json(200, {"status": "ready"})
    return _json(503, {"status": "not ready", "reason": reason})


async def _on_startup(app: web.Application) -> None:
    state = app[STATE_KEY]
    settings = app[CONFIG_KEY].images
    state.images = app[RESOLVER_KEY](settings, state.lookups)
    state.started = True


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.started = False
    if state.images is not None:
        resolver, state.images = state.images, None
        await resolver.close()
    if state.executor is not None:
        state.executor.shutdown(wait=False, cancel_futures=True)
        state.executor = None
    state.outside.close()


def create_app(
    config: Config | None = None,
    *,
    tls: CertReloader | None = None,
    metrics: Metrics | None = None,
    user_namespaces: Callable[[], Support | None] | None = None,
    image_resolver: ImageResolverFactory = _resolver,
) -> web.Application:
    """The webhook app: ``POST /mutate``, ``GET /healthz``, ``GET /readyz``.

    ``tls`` is the certificate the server listens with, when it does: ``/readyz`` answers 503
    until it is loaded. ``metrics`` defaults to a fresh registry of the app's own.
    ``user_namespaces`` answers, without blocking, what the cluster supports now (the node
    watch's ``support``); without it, ``user-namespaces: auto`` is off, as in ``fix``.
    ``image_resolver`` makes the process's ``ImageResolver`` at startup (closed at cleanup):
    by default from ``config.images``, with the pull credentials of the webhook's own auth
    file (``$REGISTRY_AUTH_FILE``, ``$DOCKER_CONFIG/config.json``).
    """
    config = config if config is not None else default_config()
    # aiohttp stops reading past client_max_size; the handler turns that into a 400 that
    # says so (aiohttp's own answer would be a 413).
    app = web.Application(client_max_size=config.webhook.max_body_bytes)
    app[CONFIG_KEY] = config
    metrics = metrics if metrics is not None else Metrics()
    state = ServerState(tls=tls, budget=BodyBudget(config.webhook.max_bytes_in_flight))
    metrics.track_in_flight(lambda: state.in_flight)
    metrics.track_image_lookups(state.lookups)
    app[METRICS_KEY] = metrics
    app[STATE_KEY] = state
    app[SUPPORT_KEY] = user_namespaces if user_namespaces is not None else _no_watch
    app[RESOLVER_KEY] = image_resolver
    metrics.track_user_namespaces(
        lambda: Support.for_mode(config.user_namespaces, app[SUPPORT_KEY]())
    )
    app.router.add_post("/mutate", _mutate)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


def _no_watch() -> Support | None:
    return None


async def _metrics_handler(request: web.Request) -> web.Response:
    registry = request.app[METRICS_KEY].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def create_metrics_app(webhook_app: web.Application) -> web.Application:
    """``GET /metrics`` (Prometheus text format) for ``webhook_app``, plus the same probes."""
    app = web.Application()
    app[CONFIG_KEY] = webhook_app[CONFIG_KEY]
    app[METRICS_KEY] = webhook_app[METRICS_KEY]
    app[STATE_KEY] = webhook_app[STATE_KEY]
    app.router.add_get("/metrics", _metrics_handler)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app
