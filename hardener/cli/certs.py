"""``hardener certs``: make the webhook's CA and serving certificate, ready for kustomize."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hardener.certs import (
    DEFAULT_SECRET_NAME,
    MAX_DAYS,
    kustomize_files,
    make_bundle,
    service_dns_names,
    write_files,
)
from hardener.cli._common import fail
from hardener.model import HardenerError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "certs",
        help="generate a CA and a serving certificate for the webhook Service",
        description=(
            "Generate a private CA and a serving certificate for <service>.<namespace>.svc and "
            "write tls.crt, tls.key (mode 0600) and ca.crt into --out, together with a "
            "kustomize Component (kustomization.yaml, cabundle-patch.yaml) that creates the "
            "TLS Secret and sets the webhook caBundle. Pointing --out at "
            "deploy/overlays/self-managed/tls makes that overlay ready to apply. The CA key "
            "is not written: rotate by running again with --force."
        ),
    )
    parser.add_argument("--service", default="hardener", help="Service name (default: hardener)")
    parser.add_argument(
        "--namespace",
        default="hardener-system",
        help="namespace of the Service and Secret (default: hardener-system)",
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument(
        "--days",
        type=int,
        default=365,
        help=f"validity of the CA and the certificate in days, 1..{MAX_DAYS} (default: 365)",
    )
    parser.add_argument(
        "--ip",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="also put this IP address in the certificate (repeatable)",
    )
    parser.add_argument(
        "--secret-name",
        default=DEFAULT_SECRET_NAME,
        help=f"name of the generated TLS Secret (default: {DEFAULT_SECRET_NAME})",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        names = service_dns_names(args.service, args.namespace)
        bundle = make_bundle(names, args.ip, days=args.days, common_name=names[2])
        files = {"tls.crt": bundle.cert, "tls.key": bundle.key, "ca.crt": bundle.ca_cert}
        files.update(
            kustomize_files(bundle, namespace=args.namespace, secret_name=args.secret_name)
        )
        written = write_files(args.out, files, private=frozenset({"tls.key"}), force=args.force)
    except HardenerError as exc:
        return fail("hardener certs", str(exc))
    for path in written:
        print(f"wrote {path}")
    print(
        f"certificate for {', '.join(names)} valid for {args.days} days; "
        "the CA key was not kept (re-run with --force to rotate)"
    )
    return 0
