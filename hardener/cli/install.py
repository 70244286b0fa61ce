"""``hardener install`` and ``hardener uninstall``: the webhook's MutatingWebhookConfiguration,
and the read-only RBAC that ``user-namespaces: auto`` needs (``--service`` installs).

Exit status: 0 done (for ``uninstall`` also when there was nothing to remove), 2 when the
input is unusable (CA bundle, URL), the cluster cannot be reached, or the server refused.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from hardener.cli._common import fail
from hardener.cli.audit import add_cluster_arguments
from hardener.model import HardenerError

__all__ = ["register", "run_install", "run_uninstall"]

_KIND = "mutatingwebhookconfiguration.admissionregistration.k8s.io"
_RBAC_KINDS = {
    "ClusterRole": "clusterrole.rbac.authorization.k8s.io",
    "ClusterRoleBinding": "clusterrolebinding.rbac.authorization.k8s.io",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    install = subparsers.add_parser(
        "install",
        help="create or update the webhook's MutatingWebhookConfiguration in a cluster",
        description=(
            "Create or update the MutatingWebhookConfiguration 'hardener' (the webhooks of "
            "deploy/base) with server-side apply and the field manager 'hardener'. The webhook "
            "is reached through a Service (--service and --namespace) or a URL (--url), and "
            "trusted through the CA bundle. With --service, the ClusterRole and "
            "ClusterRoleBinding 'hardener' of deploy/base are applied too: get, list and watch "
            "on nodes and runtimeclasses for the webhook's ServiceAccount, which "
            "user-namespaces: auto reads (--no-rbac leaves them out). --dry-run has the server "
            "validate the objects and prints them without storing anything."
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
        "--service-account",
        default="hardener",
        metavar="NAME",
        help="with --service: the webhook's ServiceAccount in --namespace, bound to the "
        "ClusterRole that reads nodes and runtimeclasses (default: hardener)",
    )
    install.add_argument(
        "--no-rbac",
        action="store_true",
        help="do not apply the ClusterRole and ClusterRoleBinding (RBAC managed elsewhere, or "
        "user-namespaces: always or never)",
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
            "calling the webhook, and the ClusterRole and ClusterRoleBinding 'hardener' when "
            "'hardener install' made them. The webhook's Deployment and Service are left alone."
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
        apply_rbac,
        connect,
        install_webhook_configuration,
        rbac_objects,
        read_ca_bundle,
    )

    if args.url is not None and args.namespace is not None:
        return fail(prog, "--namespace goes with --service, not --url")
    rbac = args.service is not None and not args.no_rbac
    rbac_applied = []
    try:
        body = install_webhook_configuration(
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
            if rbac:
                objects = rbac_objects(
                    namespace=args.namespace, service_account=args.service_account
                )
                rbac_applied = apply_rbac(
                    connection, objects, dry_run=args.dry_run, force=args.force_conflicts
                )
        finally:
            connection.close()
    except HardenerError as exc:
        return fail(prog, str(exc))
    name = body["metadata"]["name"]
    done = [(f"{_KIND}/{name}", applied)] + [
        (f"{_RBAC_KINDS[a.obj['kind']]}/{a.obj['metadata']['name']}", a) for a in rbac_applied
    ]
    if args.dry_run:
        sys.stdout.write(yaml.safe_dump_all([a.obj for _, a in done], sort_keys=False))
        for what, result in done:
            verb = "would be created" if result.created else "would be configured"
            print(f"{what} {verb} (server dry run)", file=sys.stderr)
    else:
        for what, result in done:
            verb = "created" if result.created else "configured"
            print(f"{what} {verb} (server-side apply, field manager {FIELD_MANAGER})")
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    prog = "hardener uninstall"
    from hardener.audit import (
        CONFIGURATION_NAME,
        RBAC_NAME,
        connect,
        delete_configuration,
        delete_rbac,
    )

    try:
        connection = connect(args.kubeconfig, args.context)
        try:
            deleted = delete_configuration(connection, dry_run=args.dry_run)
            rbac_deleted = delete_rbac(connection, dry_run=args.dry_run)
        finally:
            connection.close()
    except HardenerError as exc:
        return fail(prog, str(exc))
    name = f"{_KIND}/{CONFIGURATION_NAME}"
    if not deleted:
        print(f"{name} not found: nothing to remove")
    elif args.dry_run:
        print(f"{name} would be deleted (server dry run)")
    else:
        print(f"{name} deleted")
    for kind in rbac_deleted:
        what = f"{_RBAC_KINDS[kind]}/{RBAC_NAME}"
        print(f"{what} would be deleted (server dry run)" if args.dry_run else f"{what} deleted")
    return 0
