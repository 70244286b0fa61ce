"""The aiohttp applications: ``POST /mutate``, the probes, and ``/metrics`` on its own port.

The ``/mutate`` handler only reads the body, hands it to the pure functions of ``_review`` and
writes the answer; the rest is bookkeeping (deadline, metrics, one log line). It never answers
500: a malformed call gets a 400 with a JSON ``{"error", "field"}`` body, and any unexpected
failure while hardening admits the object unchanged with a warning.

Most reviews are hardened on the event loop: a pod takes well under a millisecond, and a hop
to a thread would cost more than it saves. Bodies above ``OFFLOAD_BYTES`` are hardened in a
worker thread instead, so that a huge object neither stalls the other requests nor outlives
the deadline (the handler stops waiting for it when the deadline passes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hardener.config import Config, default_config
from hardener.webhook._logs import LOGGER_NAME, log_review
from hardener.webhook._metrics import BAD_REQUEST, Metrics
from hardener.webhook._review import (
    AdmissionRequest,
    BadReviewError,
    ReviewResult,
    decode_review,
    encode_review,
    error_result,
    past_deadline_result,
    review,
)
from hardener.webhook._tls import CertReloader

__all__ = [
    "CONFIG_KEY",
    "METRICS_KEY",
    "OFFLOAD_BYTES",
    "STATE_KEY",
    "ServerState",
    "create_app",
    "create_metrics_app",
]

OFFLOAD_BYTES = 256 * 1024
"""Bodies larger than this are hardened in a worker thread, off the event loop."""

_log = logging.getLogger(LOGGER_NAME)


@dataclass
class ServerState:
    """What the probes report: started, the certificate loaded, not shutting down."""

    tls: CertReloader | None = None
    started: bool = False
    draining: bool = False
    in_flight: int = 0
    executor: ThreadPoolExecutor | None = field(default=None, repr=False)
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


CONFIG_KEY = web.AppKey("config", Config)
METRICS_KEY = web.AppKey("metrics", Metrics)
STATE_KEY = web.AppKey("state", ServerState)


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


def _process(body: bytes, config: Config, deadline: float) -> ReviewResult:
    request = decode_review(body)
    if time.monotonic() > deadline:
        return past_deadline_result(request, config.webhook.deadline_seconds)
    try:
        return review(request, config, deadline=deadline)
    except BadReviewError:
        raise
    except Exception:
        _log.exception("review failed", extra={"fields": {"uid": request["uid"]}})
        return error_result(request)


def _peek_request(body: bytes) -> AdmissionRequest | None:
    try:
        return decode_review(body)
    except BadReviewError:
        return None


async def _read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise BadReviewError("", f"the body is {length} bytes, over the limit of {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadReviewError("", f"the body is over the limit of {limit} bytes") from None


_JSON = "application/json"


async def _mutate(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG_KEY]
    metrics = app[METRICS_KEY]
    state = app[STATE_KEY]
    started = time.monotonic()
    deadline = started + config.webhook.deadline_seconds
    state.enter()
    try:
        # The API server sends exactly "application/json"; parse the header only otherwise.
        if request.headers.get("Content-Type") != _JSON and request.content_type != _JSON:
            return _bad_request(
                metrics,
                started,
                BadReviewError(
                    "Content-Type",
                    "must be application/json, got "
                    f"{request.headers.get('Content-Type', 'none')!r}",
                ),
            )
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
            return _bad_request(metrics, started, exc)
        try:
            if len(body) <= OFFLOAD_BYTES:
                result = _process(body, config, deadline)
            else:
                result = await _process_in_thread(state, body, config, deadline)
        except BadReviewError as exc:
            return _bad_request(metrics, started, exc)
        except Exception:
            # A bug outside the engine (the engine's own failures are caught in _process):
            # still answer, and still admit.
            _log.exception("review failed")
            peeked = _peek_request(body)
            if peeked is None:
                return _bad_request(metrics, started, BadReviewError("", "internal error"))
            result = error_result(peeked)
        answer = encode_review(result.response)
        latency = time.monotonic() - started
        outcome = result.outcome
        metrics.by_outcome[outcome].inc()
        if outcome == "patched":
            metrics.count_patch(result.rules)
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
                "latency_ms": round(latency * 1000, 3),
            }
        )
        return web.Response(body=answer, content_type=_JSON)
    finally:
        state.leave()


async def _process_in_thread(
    state: ServerState, body: bytes, config: Config, deadline: float
) -> ReviewResult:
    loop = asyncio.get_running_loop()
    if state.executor is None:
        state.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hardener-review")
    future = loop.run_in_executor(state.executor, _process, body, config, deadline)
    try:
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(future)
    except TimeoutError:
        # The thread carries on and its answer is dropped; the caller gets one now.
        future.add_done_callback(_discard)
        peeked = _peek_request(body)
        if peeked is None:
            raise BadReviewError(
                "", "the review could not be decoded within the deadline"
            ) from None
        return past_deadline_result(peeked, config.webhook.deadline_seconds)


def _discard(future: asyncio.Future[ReviewResult]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it as never retrieved


async def _healthz(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    reason = request.app[STATE_KEY].not_ready_reason()
    if reason is None:
        return _json(200, {"status": "ready"})
    return _json(503, {"status": "not ready", "reason": reason})


async def _on_startup(app: web.Application) -> None:
    app[STATE_KEY].started = True


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.started = False
    if state.executor is not None:
        state.executor.shutdown(wait=False, cancel_futures=True)
        state.executor = None


def create_app(
    config: Config | None = None,
    *,
    tls: CertReloader | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The webhook app: ``POST /mutate``, ``GET /healthz``, ``GET /readyz``.

    ``tls`` is the certificate the server listens with, when it does: ``/readyz`` answers 503
    until it is loaded. ``metrics`` defaults to a fresh registry of the app's own.
    """
    config = config if config is not None else default_config()
    # aiohttp stops reading past client_max_size; the handler turns that into a 400 that
    # says so (aiohttp's own answer would be a 413).
    app = web.Application(client_max_size=config.webhook.max_body_bytes)
    app[CONFIG_KEY] = config
    metrics = metrics if metrics is not None else Metrics()
    state = ServerState(tls=tls)
    metrics.track_in_flight(lambda: state.in_flight)
    app[METRICS_KEY] = metrics
    app[STATE_KEY] = state
    app.router.add_post("/mutate", _mutate)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


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
