"""Running the webhook: TLS, the self-signed start, the metrics port and a graceful stop.

``serve(options)`` listens on the webhook port (TLS unless ``insecure``) and on the metrics
port, and runs until SIGTERM or SIGINT (or until ``stop`` is set). Then it stops accepting
connections, lets the requests in flight finish (at most the deadline plus a margin), closes
the metrics port and returns.

Started without a certificate, it makes a private CA and a serving certificate for
``localhost``, ``127.0.0.1`` and every ``--san`` in a private temporary directory (removed on
exit), and prints the CA bundle and a ``MutatingWebhookConfiguration`` with a ``url:`` client
config that trusts it, so that ``hardener serve`` works out of the box against a local cluster.

``run_server(options)`` is the process entry point: it runs ``serve`` on uvloop, the libuv
event loop, when it is installed (it is a dependency everywhere but Windows), else on
asyncio's own loop. uvloop does the same socket, TLS and HTTP work in markedly less CPU time
per request; the ``serving`` log line names the loop in use.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import gc
import ipaddress
import logging
import math
import platform
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows, or an install without it
    uvloop = None  # type: ignore[assignment]
from aiohttp import web

from hardener import webhook_config
from hardener.certs import (
    make_bundle,
    write_bundle,
)
from hardener.config import Config
from hardener.model import HardenerError
from hardener.nodewatch import SupportWatch
from hardener.webhook._app import STATE_KEY, create_app, create_metrics_app
from hardener.webhook._logs import LOGGER_NAME, log_event
from hardener.webhook._metrics import Metrics
from hardener.webhook._tls import CertLoadError, CertReloader

__all__ = [
    "DEFAULT_SANS",
    "SelfSigned",
    "ServeOptions",
    "event_loop_factory",
    "make_self_signed",
    "run_server",
    "serve",
    "serve_webhook_configuration",
    "tune_gc",
    "tune_malloc",
]

DEFAULT_SANS: tuple[str, ...] = ("localhost", "127.0.0.1")
_SHUTDOWN_MARGIN = 2.0

_log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class ServeOptions:
    config: Config
    host: str = "0.0.0.0"
    port: int = 8443
    metrics_port: int = 9090
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure: bool = False
    sans: tuple[str, ...] = ()
    cert_check_interval: float = 1.0
    cluster: Callable[[], Any] | None = None
    """Makes a ``kubernetes.client.ApiClient`` for the cluster the webhook serves, whose Nodes
    and RuntimeClasses ``user-namespaces: auto`` follows; raises ``HardenerError`` when there
    is none to reach (``auto`` is then off)."""


@dataclass(frozen=True)
class SelfSigned:
    directory: Path
    cert_file: Path
    key_file: Path
    ca_cert: bytes


def _split_sans(names: Sequence[str]) -> tuple[list[str], list[str]]:
    dns: list[str] = []
    ips: list[str] = []
    for name in dict.fromkeys(names):
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name)
    return dns, ips


def make_self_signed(sans: Sequence[str] = ()) -> SelfSigned:
    """A fresh CA and serving certificate in a new private (0700) temporary directory."""
    dns, ips = _split_sans([*DEFAULT_SANS, *sans])
    bundle = make_bundle(dns, ips, common_name=dns[0] if dns else None)
    directory = Path(tempfile.mkdtemp(prefix="hardener-serve-"))
    write_bundle(bundle, directory)
    return SelfSigned(
        directory=directory,
        cert_file=directory / "tls.crt",
        key_file=directory / "tls.key",
        ca_cert=bundle.ca_cert,
    )


def _url_host(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def serve_webhook_configuration(
    url: str, ca_bundle: str, *, deadline_seconds: float = 3.0
) -> dict[str, Any]:
    """A ``MutatingWebhookConfiguration`` that sends hardener's kinds to ``url``.

    The same webhooks as ``deploy/base``, with a ``url:`` client config. ``timeoutSeconds``
    sits above the in-handler deadline, so the API server gets hardener's own answer.
    """
    timeout = min(30, max(1, math.ceil(deadline_seconds) + 2))
    return webhook_config.webhook_configuration(
        {"url": url, "caBundle": ca_bundle}, timeout_seconds=timeout
    )


def _banner(options: ServeOptions, generated: SelfSigned, port: int) -> str:
    ca_bundle = base64.b64encode(generated.ca_cert).decode("ascii")
    host = options.sans[0] if options.sans else DEFAULT_SANS[0]
    url = f"https://{_url_host(host)}:{port}/mutate"
    document = serve_webhook_configuration(
        url, ca_bundle, deadline_seconds=options.config.webhook.deadline_seconds
    )
    names = ", ".join(dict.fromkeys([*DEFAULT_SANS, *options.sans]))
    return (
        f"# hardener serve: no --tls-cert given, so a private CA and a certificate for {names}\n"
        f"# were made in {generated.directory} (removed on exit).\n"
        "# Pass --san NAME for the name the API server uses to reach this machine; the URL below\n"
        "# uses the first --san (or localhost).\n"
        f"# CA bundle (base64): {ca_bundle}\n"
        "# Apply the configuration below with: kubectl apply -f -\n"
        "---\n" + yaml.safe_dump(document, sort_keys=False)
    )


async def _start_site(runner: web.AppRunner, host: str, port: int, **kwargs: Any) -> None:
    await runner.setup()
    site = web.TCPSite(runner, host, port, **kwargs)
    await site.start()


def _port_of(runner: web.AppRunner, default: int) -> int:
    # With --port 0 the system picks the port; the printed URL must name the real one.
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


def _addresses(runner: web.AppRunner) -> list[str]:
    found = []
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            found.append(f"{_url_host(str(address[0]))}:{address[1]}")
        else:
            found.append(str(address))
    return found


def _watch_nodes(options: ServeOptions) -> SupportWatch | None:
    """Start following the cluster's Nodes for ``user-namespaces: auto``, when it applies."""
    if options.config.user_namespaces != "auto":
        return None
    if options.cluster is None:
        log_event(
            _log,
            logging.WARNING,
            "user namespaces: no cluster to watch; the user-namespace rule is off",
            hint="set user-namespaces: always or never in the config",
        )
        return None
    try:
        api = options.cluster()
    except HardenerError as exc:
        log_event(
            _log,
            logging.WARNING,
            "user namespaces: no cluster to watch; the user-namespace rule is off",
            error=str(exc),
            hint="give --kubeconfig (or run in the cluster), or set user-namespaces: always "
            "or never in the config",
        )
        return None
    watch = SupportWatch(api)
    watch.start()
    return watch


def _image_fields(app: web.Application) -> dict[str, Any]:
    """What the ``serving`` line says about image lookups: on or off, the platform, the cache
    directory and the auth file the pull credentials came from."""
    resolver = app[STATE_KEY].images
    if resolver is None:
        return {}
    directory = resolver.cache.directory
    return {
        "image_lookups": not resolver.offline,
        "image_platform": resolver.settings.platform,
        "image_cache": str(directory) if directory is not None else None,
        "registry_credentials": resolver.credentials_source,
    }


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the server's event loop: uvloop's when it can be imported, else asyncio's."""
    if uvloop is not None:
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: the event loop implementation, as the log line names it."""
    return type(loop).__module__.split(".", 1)[0]


def tune_gc() -> None:
    """Keep what was loaded at start-up out of the cyclic garbage collector's walks.

    Now and then the collector walks every object it tracks: the modules' own (tens of
    thousands: aiohttp, the Kubernetes client) as well as the tree being parsed. Parsing a
    3 MiB body of a million small arrays took 2.5 times longer with those walks, long enough
    on a busy machine to miss the deadline. What was loaded at start-up lives as long as the
    process, so it is frozen: never walked again. The thresholds stay as they are: collecting
    less often (tried: every 50,000 allocations) let the read buffers of closed connections,
    which sit in reference cycles, pile up by megabytes a second under connection churn.
    """
    gc.collect()
    gc.freeze()


MMAP_THRESHOLD = 256 * 1024
"""Blocks of this size or more are mapped and unmapped on their own by glibc's ``malloc``."""

_M_MMAP_THRESHOLD = -3  # <malloc.h>


def tune_malloc() -> bool:
    """Give the memory of large blocks (a request body, the array of a long JSON list) back to
    the system as soon as they are freed; whether it could (glibc only).

    glibc maps a block of 128 KiB or more on its own and unmaps it when freed, but the first
    such free raises that threshold to the block's size: from then on a 3 MiB body is carved
    from the heap, and what it leaves there between smaller blocks stays in the process. A
    server taking a 3 MiB hostile body every two seconds among valid reviews stayed 21 MiB
    above its idle RSS for good; with the threshold fixed, it returns to idle. Mapping a block
    costs a system call and its page faults, a few microseconds for the few reviews this large.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def run_server(options: ServeOptions) -> int:
    """Run ``serve(options)`` in this thread, on ``event_loop_factory()``'s loop, until a
    signal; return the process exit code."""
    tune_gc()
    tune_malloc()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(serve(options))


async def serve(
    options: ServeOptions,
    *,
    stop: asyncio.Event | None = None,
    out: IO[str] | None = None,
    handle_signals: bool = True,
    on_started: Callable[[web.AppRunner, web.AppRunner], None] | None = None,
) -> int:
    """Run the webhook until a signal (or ``stop``); return the process exit code.

    ``on_started(webhook_runner, metrics_runner)`` is called once both ports listen.
    """
    out = out if out is not None else sys.stdout
    stop = stop if stop is not None else asyncio.Event()
    config = options.config
    generated: SelfSigned | None = None
    tls: CertReloader | None = None
    metrics = Metrics()
    runner: web.AppRunner | None = None
    metrics_runner: web.AppRunner | None = None
    watch: SupportWatch | None = None
    loop = asyncio.get_running_loop()
    try:
        if not options.insecure:
            cert_file, key_file = options.tls_cert, options.tls_key
            if cert_file is None or key_file is None:
                generated = make_self_signed(options.sans)
                cert_file, key_file = generated.cert_file, generated.key_file

            def reloaded(ok: bool, error: str | None) -> None:
                metrics.cert_reloads.labels("success" if ok else "failure").inc()
                if ok:
                    log_event(_log, logging.INFO, "certificate reloaded", cert=str(cert_file))
                else:
                    log_event(
                        _log,
                        logging.ERROR,
                        "certificate reload failed; still serving the previous certificate",
                        error=error,
                    )

            tls = CertReloader(
                cert_file, key_file, check_interval=options.cert_check_interval, on_reload=reloaded
            )
            tls.load()
            metrics.track_cert_expiry(lambda: tls.not_after if tls is not None else 0.0)

        watch = _watch_nodes(options)
        app = create_app(
            config,
            tls=tls,
            metrics=metrics,
            user_namespaces=watch.support if watch is not None else None,
        )
        shutdown_timeout = config.webhook.deadline_seconds + _SHUTDOWN_MARGIN
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
        )
        await _start_site(
            runner, options.host, options.port, ssl_context=tls.context if tls is not None else None
        )
        metrics_runner = web.AppRunner(
            create_metrics_app(app), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await _start_site(metrics_runner, options.host, options.metrics_port)

        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
        if generated is not None:
            out.write(_banner(options, generated, _port_of(runner, options.port)))
            out.flush()
        log_event(
            _log,
            logging.INFO,
            "serving",
            webhook=_addresses(runner),
            metrics=_addresses(metrics_runner),
            tls=tls is not None,
            loop=_loop_name(loop),
            mode=config.mode,
            profile=config.profile,
            pss_level=config.level,
            config=config.source,
            user_namespaces=config.user_namespaces,
            **_image_fields(app),
        )
        if options.insecure:
            log_event(
                _log,
                logging.WARNING,
                "serving plain HTTP (--insecure): the API server "
                "only calls webhooks over HTTPS; use this for local tests only",
            )
        if on_started is not None:
            on_started(runner, metrics_runner)

        await stop.wait()
        log_event(
            _log,
            logging.INFO,
            "shutting down: no new connections, finishing the requests in flight",
        )
        state = app[STATE_KEY]
        state.draining = True
        # Close the listening socket first and let the reviews in flight finish on their open
        # connections (aiohttp's own cleanup stops reading from a connection at once, which
        # would lose a request whose body is still arriving). Idle keep-alive connections are
        # closed by the cleanup after that.
        for site in list(runner.sites):
            await site.stop()
        if not await state.wait_idle(shutdown_timeout):
            log_event(
                _log,
                logging.WARNING,
                "requests still in flight at the shutdown timeout",
                in_flight=state.in_flight,
            )
        await runner.cleanup()
        runner = None
        await metrics_runner.cleanup()
        metrics_runner = None
        log_event(_log, logging.INFO, "stopped")
        return 0
    except (CertLoadError, HardenerError) as exc:
        log_event(_log, logging.ERROR, "cannot start", error=str(exc))
        print(f"hardener serve: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log_event(_log, logging.ERROR, "cannot listen", error=str(exc))
        print(f"hardener serve: error: cannot listen: {exc}", file=sys.stderr)
        return 1
    finally:
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        for leftover in (runner, metrics_runner):
            if leftover is not None:
                await leftover.cleanup()
        if watch is not None:
            watch.stop()
            watch.api.close()
        if generated is not None:
            shutil.rmtree(generated.directory, ignore_errors=True)
