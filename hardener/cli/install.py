"""``hardener install`` and ``hardener uninstall``: the webhook's MutatingWebhookConfiguration.

Exit status: 0 done (for ``uninstall`` also when there was nothing to remove), 2 when the
input is unusable (CA bundle, URL), the cluster cannot be reached, or the server refused.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from hardener.cli.audit import add_cluster_arguments
from hardener.model import HardenerError

__all__ = ["register", "run_install", "run_uninstall"]

_KIND = "mutatingwebhookconfiguration.admissionregistration.k8s.io"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    install = subparsers.add_parser(
        "install",
        help="create or update the webhook's MutatingWebhookConfiguration in a cluster",
        description=(
            "Create or update the MutatingWebhookConfiguration 'hardener' (the webhooks of "
            "deploy/base) with server-side apply and the field manager 'hardener'. The webhook "
            "is reached through a Service (--service and --namespace) or a URL (--url), and "
            "trusted through the CA bundle. --dry-run has the server validate the object and "
            "prints it without storing anything."
        ),
    )
    add_cluster_arguments(install)
    target = install.add_mutually_exclusive_group(required=True)
    target.add_argument("--service", metavar="NAME", help="the webhook's Service")
    target.add_argument("--url", help="the webhook's https:// URL (outside the cluster)")
    install.add_argument(
        "--namespace",
        metavar="NS",
        help="the Service's namespace, left out by the webhook (default: hardener-system)",
    )
    install.add_argument(
        "--ca-bundle",
        required=True,
        metavar="FILE",
        help="PEM CA certificate(s) that signed the webhook's serving certificate",
    )
    install.add_argument(
        "--failure-policy",
        choices=("Ignore", "Fail"),
        default="Ignore",
        help="what the API server does when the webhook cannot answer (default: Ignore)",
    )
    install.add_argument(
        "--force-conflicts",
        action="store_true",
        help="take over fields another field manager owns instead of failing",
    )
    install.add_argument(
        "--dry-run",
        action="store_true",
        help="server-side dry run: validate and print the object, store nothing",
    )
    install.set_defaults(func=run_install)

    uninstall = subparsers.add_parser(
        "uninstall",
        help="delete the webhook's MutatingWebhookConfiguration from a cluster",
        description=(
            "Delete the MutatingWebhookConfiguration 'hardener', so the API server stops "
            "calling the webhook. The webhook's Deployment and Service are left alone."
        ),
    )
    add_cluster_arguments(uninstall)
    uninstall.add_argument(
        "--dry-run", action="store_true", help="server-side dry run: delete nothing"
    )
    uninstall.set_defaults(func=run_uninstall)


def run_install(args: argparse.Namespace) -> int:
    prog = "hardener install"
    from hardener.audit import (
        FIELD_MANAGER,
        apply_configuration,
        connect,
        read_ca_bundle,
        webhook_configuration,
    )

    if args.url is not None and args.namespace is not None:
        print(f"{prog}: error: --namespace goes with --service, not --url", file=sys.stderr)
        return 2
    try:
        body = webhook_configuration(
            read_ca_bundle(args.ca_bundle),
            service=args.service,
            namespace=args.namespace,
            url=args.url,
            failure_policy=args.failure_policy,
        )
        connection = connect(args.kubeconfig, args.context)
        try:
            applied = apply_configuration(
                connection, body, dry_run=args.dry_run, force=args.force_conflicts
            )
        finally:
            connection.close()
    except HardenerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    name = body["metadata"]["name"]
    if args.dry_run:
        sys.stdout.write(yaml.safe_dump(applied.obj, sort_keys=False))
        verb = "would be created" if applied.created else "would be configured"
        print(f"{_KIND}/{name} {verb} (server dry run)", file=sys.stderr)
    else:
        verb = "created" if applied.created else "configured"
        print(f"{_KIND}/{name} {verb} (server-side apply, field manager {FIELD_MANAGER})")
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    prog = "hardener uninstall"
    from hardener.audit import CONFIGURATION_NAME, connect, delete_configuration

    try:
        connection = connect(args.kubeconfig, args.context)
        try:
            deleted = delete_configuration(connection, dry_run=args.dry_run)
        finally:
            connection.close()
    except HardenerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    name = f"{_KIND}/{CONFIGURATION_NAME}"
    if not deleted:
        print(f"{name} not found: nothing to remove")
    elif args.dry_run:
        print(f"{name} would be deleted (server dry run)")
    else:
        print(f"{name} deleted")
    return 0
