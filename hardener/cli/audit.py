"""``hardener audit``: what the webhook would do to the workloads a cluster already runs.

Exit status: 0 when no workload would change and none violates its namespace's policy after
hardening, 1 otherwise, 2 when the audit could not run (no kubeconfig, unreachable server,
rejected credentials, bad config) or is incomplete (a resource the server refused to list, a
workload that could not be read). Nothing in the cluster is ever changed: only GET requests.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hardener import __version__
from hardener.config import Config, default_config, load_config
from hardener.model import ConfigError, HardenerError
from hardener.report import AUDIT_FORMATS, render_audit

__all__ = ["add_cluster_arguments", "register", "run"]


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a cluster, shared with ``install`` and ``uninstall``."""
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")


def _chunk_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="report what the webhook would change in the workloads a cluster runs",
        description=(
            "List the Deployments, StatefulSets, DaemonSets, CronJobs, and the ReplicaSets, "
            "Jobs and Pods no controller owns, and report for each the changes the webhook "
            "would make, the findings it cannot fix, and the Pod Security Standards verdict of "
            "the level its namespace enforces (its pod-security.kubernetes.io/enforce label, "
            "else the configured level), now and after hardening. Only reads: nothing in the "
            "cluster is changed. --format diff prints a kubectl command per workload. Exit "
            "status: 0 nothing to change, 1 changes or violations, 2 error or incomplete audit."
        ),
    )
    add_cluster_arguments(parser)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", help="audit this namespace (default: the context's namespace)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="audit every namespace")
    parser.add_argument(
        "--format",
        choices=AUDIT_FORMATS,
        default="text",
        help="output format (default: text); diff prints kubectl commands that remediate",
    )
    parser.add_argument("--config", metavar="FILE", help="hardener config file (YAML)")
    parser.add_argument(
        "--profile",
        choices=("restricted", "baseline"),
        help="hardening profile (default: the config's, or restricted)",
    )
    parser.add_argument(
        "--chunk-size",
        type=_chunk_size,
        default=500,
        metavar="N",
        help="list at most N objects per request (default: 500)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="look no image up: the image cache and the offline table only (also "
        "HARDENER_IMAGES_OFFLINE=1, or images.lookup: false in the config)",
    )
    parser.set_defaults(func=run)


def _config(path: str | None, profile: str | None) -> Config:
    config = load_config(path) if path else default_config()
    if profile is not None and profile != config.profile:
        config = config.with_profile(profile)
    return config


def run(args: argparse.Namespace) -> int:
    prog = "hardener audit"
    try:
        config = _config(args.config, args.profile)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    # The client is imported only by the commands that talk to a cluster.
    from hardener.audit import ClusterError, audit, connect

    try:
        connection = connect(args.kubeconfig, args.context)
    except ClusterError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    namespace = None if args.all_namespaces else (args.namespace or connection.namespace)
    try:
        report = audit(
            connection,
            config,
            namespace=namespace,
            chunk_size=args.chunk_size,
            offline=args.offline,
        )
    except HardenerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        connection.close()
    sys.stdout.write(render_audit(report, args.format, version=__version__))
    sys.stdout.flush()
    incomplete = [d for d in report.denied if d.resource != "namespaces" and d.code != 404]
    if args.format != "text":
        for denied in report.denied:
            print(f"{prog}: warning: not audited: {denied.describe()}", file=sys.stderr)
    if incomplete or any(w.error for w in report.workloads):
        if incomplete:
            names = ", ".join(sorted({d.resource for d in incomplete}))
            print(f"{prog}: error: incomplete audit: could not list {names}", file=sys.stderr)
        return 2
    if any(w.ops or w.findings or not w.allowed_after for w in report.workloads):
        return 1
    return 0
