"""``hardener serve``: run the admission webhook."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from hardener.cli._common import fail
from hardener.config import default_config, load_config
from hardener.model import ConfigError
from hardener.webhook import ServeOptions, configure_logging, run_server

__all__ = ["register", "run"]

PROG = "hardener serve"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0..65535)")
    return value


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the admission webhook (HTTPS POST /mutate)",
        description=(
            "Run the mutating admission webhook. The API server POSTs admission.k8s.io/v1 "
            "AdmissionReviews to /mutate; hardener answers with a JSONPatch that hardens the "
            "pod (Pod CREATE, pods/ephemeralcontainers, and the pod template of Deployments, "
            "StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and "
            "CronJobs). The certificate files are reloaded when they change. Without "
            "--tls-cert, a private CA and certificate are made for localhost, 127.0.0.1 and "
            "every --san, and a ready-to-apply MutatingWebhookConfiguration is printed. "
            "GET /healthz and /readyz on both ports; GET /metrics on the metrics port. "
            "SIGTERM stops accepting connections and finishes the requests in flight."
        ),
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="config file (default: the restricted profile, mutate mode)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    parser.add_argument("--port", type=_port, default=8443, help="webhook port (default: 8443)")
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=9090,
        help="port for /metrics, /healthz and /readyz over plain HTTP (default: 9090)",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="serving certificate (PEM, may hold the chain); needs --tls-key",
    )
    parser.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="private key of --tls-cert (PEM)"
    )
    parser.add_argument(
        "--san",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="with no --tls-cert: also put this DNS name or IP address in the "
        "generated certificate (repeatable); the first one is used in the "
        "printed webhook URL",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig of the cluster whose Nodes and RuntimeClasses user-namespaces: auto "
        "follows (default: $KUBECONFIG, else ~/.kube/config, else the pod's service account)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve plain HTTP instead of TLS (local tests only: the API "
        "server never calls a webhook over plain HTTP)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        return fail(
            PROG,
            "--tls-cert and --tls-key go together: give both, or neither for a "
            "generated self-signed certificate",
        )
    if args.insecure and args.tls_cert is not None:
        return fail(PROG, "--insecure serves plain HTTP: drop it, or drop --tls-cert/--tls-key")
    if args.san and (args.tls_cert is not None or args.insecure):
        return fail(
            PROG, "--san only applies to the generated certificate (no --tls-cert, no --insecure)"
        )
    try:
        config = load_config(args.config) if args.config is not None else default_config()
    except ConfigError as exc:
        return fail(PROG, str(exc))
    configure_logging()
    options = ServeOptions(
        config=config,
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
        sans=tuple(args.san),
        cluster=functools.partial(_cluster, args.kubeconfig),
    )
    return run_server(options)


def _cluster(kubeconfig: str | None) -> Any:
    """The API client ``user-namespaces: auto`` follows the cluster with: ``--kubeconfig``,
    else ``$KUBECONFIG`` or ``~/.kube/config``, else (in a pod) its service account."""
    from hardener.audit import connect  # the client is loaded only when it is needed

    return connect(kubeconfig).api
