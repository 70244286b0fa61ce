"""``hardener serve``: the admission webhook.

The API server POSTs an ``admission.k8s.io/v1`` AdmissionReview to ``/mutate``; hardener
answers with the engine's operations as a base64 JSONPatch, the same operations that
``hardener fix`` applies to files. Layout:

- ``_envelope``: the AdmissionReview on the wire, its types, ``decode_review`` and
  ``encode_review``;
- ``_review``: the pure part, a request in and a response out (decided with the engine);
- ``_outside``: the worker process that decodes bodies of very many JSON values;
- ``_app``: the aiohttp apps (``create_app``, ``create_metrics_app``) with typed ``AppKey``
  state, and the image lookups of each review (one ``ImageResolver`` per app, within
  ``LOOKUP_SHARE`` of the deadline);
- ``_tls``: the serving certificate, reloaded when its files change;
- ``_budget``: the body budget, the large request bodies held in memory at once;
- ``_metrics``, ``_logs``: Prometheus metrics in a registry per app, JSON log lines (the
  review line written in batches by ``JsonLineHandler``);
- ``_server``: ``serve()``, ``run_server()`` (the process entry point, on uvloop when it is
  installed, with the collector and ``malloc`` tuned for large bodies), the self-signed
  start and the printed webhook configuration.

Errors (both derive from ``hardener.model.HardenerError``)::

    BadReviewError   a malformed envelope: not a usable AdmissionReview (answered with HTTP
                     400); an object that cannot be hardened is answered "allowed, not
                     hardened" with a warning instead
    CertLoadError    certificate or key files that cannot be read or do not match
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from hardener.webhook._app import (
        CONFIG_KEY,
        LOOKUP_SHARE,
        METRICS_KEY,
        OFFLOAD_BYTES,
        OFFLOAD_CONTAINERS,
        OFFLOAD_VOLUMES,
        STATE_KEY,
        SUPPORT_KEY,
        ImageResolverFactory,
        ServerState,
        create_app,
        create_metrics_app,
    )
    from hardener.webhook._envelope import (
        AdmissionRequest,
        AdmissionResponse,
        AdmissionReview,
        BadReviewError,
        decode_review,
        encode_review,
    )
    from hardener.webhook._logs import JsonFormatter, JsonLineHandler, configure_logging
    from hardener.webhook._metrics import Metrics
    from hardener.webhook._review import (
        OUTCOMES,
        WORKLOAD_KINDS,
        ReviewResult,
        ReviewWork,
        finish_review,
        prepare_review,
        review,
    )
    from hardener.webhook._server import (
        SelfSigned,
        ServeOptions,
        event_loop_factory,
        make_self_signed,
        run_server,
        serve,
        serve_webhook_configuration,
    )
    from hardener.webhook._tls import CertLoadError, CertReloader

# What each public name is imported from, on first use: the package itself imports nothing, so
# that a process that needs only ``_review`` (the worker of ``_outside``) does not load
# aiohttp, the Kubernetes client and the rest of the server.
_HOMES: dict[str, str] = {
    "CONFIG_KEY": "hardener.webhook._app",
    "ImageResolverFactory": "hardener.webhook._app",
    "LOOKUP_SHARE": "hardener.webhook._app",
    "METRICS_KEY": "hardener.webhook._app",
    "OFFLOAD_BYTES": "hardener.webhook._app",
    "OFFLOAD_CONTAINERS": "hardener.webhook._app",
    "OFFLOAD_VOLUMES": "hardener.webhook._app",
    "STATE_KEY": "hardener.webhook._app",
    "SUPPORT_KEY": "hardener.webhook._app",
    "ServerState": "hardener.webhook._app",
    "create_app": "hardener.webhook._app",
    "create_metrics_app": "hardener.webhook._app",
    "JsonFormatter": "hardener.webhook._logs",
    "JsonLineHandler": "hardener.webhook._logs",
    "configure_logging": "hardener.webhook._logs",
    "Metrics": "hardener.webhook._metrics",
    "AdmissionRequest": "hardener.webhook._envelope",
    "AdmissionResponse": "hardener.webhook._envelope",
    "AdmissionReview": "hardener.webhook._envelope",
    "BadReviewError": "hardener.webhook._envelope",
    "OUTCOMES": "hardener.webhook._review",
    "ReviewResult": "hardener.webhook._review",
    "ReviewWork": "hardener.webhook._review",
    "WORKLOAD_KINDS": "hardener.webhook._review",
    "decode_review": "hardener.webhook._envelope",
    "encode_review": "hardener.webhook._envelope",
    "finish_review": "hardener.webhook._review",
    "prepare_review": "hardener.webhook._review",
    "review": "hardener.webhook._review",
    "SelfSigned": "hardener.webhook._server",
    "ServeOptions": "hardener.webhook._server",
    "event_loop_factory": "hardener.webhook._server",
    "make_self_signed": "hardener.webhook._server",
    "run_server": "hardener.webhook._server",
    "serve": "hardener.webhook._server",
    "serve_webhook_configuration": "hardener.webhook._server",
    "CertLoadError": "hardener.webhook._tls",
    "CertReloader": "hardener.webhook._tls",
}


def __getattr__(name: str) -> _typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "CONFIG_KEY",
    "LOOKUP_SHARE",
    "METRICS_KEY",
    "OFFLOAD_BYTES",
    "OFFLOAD_CONTAINERS",
    "OFFLOAD_VOLUMES",
    "OUTCOMES",
    "STATE_KEY",
    "SUPPORT_KEY",
    "WORKLOAD_KINDS",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "BadReviewError",
    "CertLoadError",
    "CertReloader",
    "ImageResolverFactory",
    "JsonFormatter",
    "JsonLineHandler",
    "Metrics",
    "ReviewResult",
    "ReviewWork",
    "SelfSigned",
    "ServeOptions",
    "ServerState",
    "configure_logging",
    "create_app",
    "create_metrics_app",
    "decode_review",
    "encode_review",
    "event_loop_factory",
    "finish_review",
    "make_self_signed",
    "prepare_review",
    "review",
    "run_server",
    "serve",
    "serve_webhook_configuration",
]
