"""``install`` and ``uninstall``: the webhook's ``MutatingWebhookConfiguration``, through the API,
and the read-only RBAC of ``user-namespaces: auto``.

The configuration holds the same two webhooks as ``deploy/base`` (a test keeps them equal to
``kubectl kustomize deploy/base``); only the client config (a Service or a URL, and the CA
bundle) and the ``app.kubernetes.io/managed-by`` label differ. It is written with server-side
apply under the field manager ``hardener``: the first apply creates it, later ones update the
fields hardener owns, and fields other managers own (a CA injector, say) are a conflict that
``force`` resolves in hardener's favour.

The RBAC (``rbac_objects``) is ``deploy/base/rbac.yaml``'s: a ClusterRole with ``get``,
``list`` and ``watch`` on nodes and ``node.k8s.io`` runtimeclasses and nothing else, bound to
the webhook's ServiceAccount. It is applied the same way; ``uninstall`` removes it only when
``install`` made it (its ``managed-by`` label says ``hardener``).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from kubernetes import client as k8s

from hardener import webhook_config
from hardener.audit._cluster import ClusterError, Connection, RequestDenied, call
from hardener.model import HardenerError

__all__ = [
    "CONFIGURATION_NAME",
    "FIELD_MANAGER",
    "NODE_READER_RULES",
    "RBAC_NAME",
    "WEBHOOK_NAMES",
    "Applied",
    "InstallError",
    "apply_configuration",
    "apply_rbac",
    "delete_configuration",
    "delete_rbac",
    "install_webhook_configuration",
    "rbac_objects",
    "read_ca_bundle",
]

CONFIGURATION_NAME = webhook_config.CONFIGURATION_NAME
FIELD_MANAGER = "hardener"
WEBHOOK_NAMES = webhook_config.WEBHOOK_NAMES
DEFAULT_NAMESPACE = "hardener-system"
_APPLY = "application/apply-patch+yaml"
_LABELS = {
    "app.kubernetes.io/name": "hardener",
    "app.kubernetes.io/component": "webhook",
    "app.kubernetes.io/part-of": "hardener",
    "app.kubernetes.io/managed-by": FIELD_MANAGER,
}
RBAC_NAME = "hardener"
NODE_READER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["node.k8s.io"],
        "resources": ["runtimeclasses"],
        "verbs": ["get", "list", "watch"],
    },
]
"""What the webhook reads, for ``user-namespaces: auto``: nodes and RuntimeClasses, no more."""


class InstallError(HardenerError):
    """Input ``install`` cannot use (a CA bundle that is not PEM, a URL the API server would
    refuse) or a change the API server refused."""


def read_ca_bundle(path: str | Path) -> bytes:
    """The PEM certificates in ``path``, checked to be certificates (the API server would take
    anything and the webhook calls would then fail with TLS errors)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InstallError(f"--ca-bundle {path}: cannot read: {exc.strerror or exc}") from exc
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InstallError(
            f"--ca-bundle {path}: not a PEM certificate ({exc}); give the CA that signed the "
            "webhook's serving certificate, e.g. the ca.crt written by 'hardener certs'"
        ) from exc
    if not certificates:
        raise InstallError(f"--ca-bundle {path}: no certificate found")
    return data


def _check_url(url: str) -> None:
    # The API server's validation of webhook URLs (admissionregistration.k8s.io/v1).
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise InstallError(f"--url {url!r}: must start with https://")
    if not parts.hostname:
        raise InstallError(f"--url {url!r}: names no host")
    if parts.username is not None or parts.password is not None:
        raise InstallError(f"--url {url!r}: must not carry a user or password")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InstallError(f"--url {url!r}: must not have a query or a fragment")


def install_webhook_configuration(
    ca_bundle: bytes,
    *,
    service: str | None = None,
    namespace: str | None = None,
    url: str | None = None,
    failure_policy: str = "Ignore",
) -> dict[str, Any]:
    """The ``MutatingWebhookConfiguration``: ``deploy/base``'s webhooks calling ``service`` in
    ``namespace`` (path ``/mutate``, port 443) or ``url``, trusting ``ca_bundle`` (PEM).

    The webhook's own namespace is left out by its namespace selector, like
    ``hardener-system`` in ``deploy/base``, so the webhook never waits on itself.
    """
    if (service is None) == (url is None):
        raise InstallError("give either --service and --namespace, or --url")
    if failure_policy not in ("Ignore", "Fail"):
        raise InstallError(f"failure policy {failure_policy!r}: use Ignore or Fail")
    own_namespace = namespace or DEFAULT_NAMESPACE
    client_config: dict[str, Any]
    if service is not None:
        client_config = {
            "service": {
                "name": service,
                "namespace": own_namespace,
                "path": "/mutate",
                "port": 443,
            }
        }
    else:
        assert url is not None
        _check_url(url)
        client_config = {"url": url}
    client_config["caBundle"] = base64.b64encode(ca_bundle).decode("ascii")
    return webhook_config.webhook_configuration(
        client_config,
        own_namespace=own_namespace,
        failure_policy=failure_policy,
        labels=_LABELS,
    )


def rbac_objects(
    *, namespace: str | None = None, service_account: str = "hardener"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ClusterRole and ClusterRoleBinding that let the webhook's ServiceAccount (in
    ``namespace``) read nodes and RuntimeClasses, as ``deploy/base/rbac.yaml``."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": RBAC_NAME, "labels": dict(_LABELS)},
        "rules": copy.deepcopy(NODE_READER_RULES),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": RBAC_NAME, "labels": dict(_LABELS)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": RBAC_NAME,
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": service_account,
                "namespace": namespace or DEFAULT_NAMESPACE,
            }
        ],
    }
    return role, binding


@dataclass(frozen=True)
class Applied:
    """What the API server answered: ``created`` (201) or updated (200), and the object."""

    created: bool
    obj: dict[str, Any]


def _refused(action: str, exc: RequestDenied) -> InstallError:
    hint = ""
    if exc.code == 409:
        hint = (
            "; another field manager owns these fields: pass --force-conflicts to take them "
            "over, or change them with the tool that manages them"
        )
    elif exc.code == 403:
        hint = "; this needs permission to manage mutatingwebhookconfigurations (cluster admin)"
    return InstallError(f"{action}: {exc.code} {exc.reason}: {exc.message}{hint}")


def apply_configuration(
    connection: Connection, body: dict[str, Any], *, dry_run: bool = False, force: bool = False
) -> Applied:
    """Create or update the configuration with server-side apply (field manager ``hardener``).
    ``dry_run`` asks the server to validate and answer without storing anything."""
    api = k8s.AdmissionregistrationV1Api(connection.api)
    return _apply(
        connection,
        api.patch_mutating_webhook_configuration,
        body,
        "mutatingwebhookconfiguration",
        _refused,
        dry_run=dry_run,
        force=force,
    )


def _apply(
    connection: Connection,
    method: Any,
    body: dict[str, Any],
    what: str,
    refused: Any,
    *,
    dry_run: bool,
    force: bool,
) -> Applied:
    """Server-side apply of ``body`` with ``method`` (a client ``patch_*`` call); ``refused``
    turns a refusal into the ``InstallError`` to raise."""
    name = body["metadata"]["name"]
    options: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": force}
    if dry_run:
        options["dry_run"] = "All"
    try:
        status, obj = call(
            connection, method, name=name, body=body, _content_type=_APPLY, **options
        )
    except RequestDenied as exc:
        raise refused(f"applying {what} {name!r}", exc) from exc
    if not isinstance(obj, dict):
        raise ClusterError(f"applying {what} {name!r}: empty answer")
    return Applied(created=status == 201, obj=obj)


_RBAC_CALLS = {
    "ClusterRole": ("patch_cluster_role", "read_cluster_role", "delete_cluster_role"),
    "ClusterRoleBinding": (
        "patch_cluster_role_binding",
        "read_cluster_role_binding",
        "delete_cluster_role_binding",
    ),
}


def _rbac_refused(action: str, exc: RequestDenied) -> InstallError:
    hint = ""
    if exc.code == 403:
        hint = (
            "; this needs permission to manage clusterroles and clusterrolebindings (cluster "
            "admin); or pass --no-rbac and grant get, list and watch on nodes and "
            "runtimeclasses.node.k8s.io yourself"
        )
    elif exc.code == 409:
        hint = "; pass --force-conflicts to take the fields over"
    return InstallError(f"{action}: {exc.code} {exc.reason}: {exc.message}{hint}")


def apply_rbac(
    connection: Connection,
    objects: tuple[dict[str, Any], ...],
    *,
    dry_run: bool = False,
    force: bool = False,
) -> list[Applied]:
    """Create or update ``rbac_objects`` with server-side apply (field manager ``hardener``)."""
    api = k8s.RbacAuthorizationV1Api(connection.api)
    return [
        _apply(
            connection,
            getattr(api, _RBAC_CALLS[body["kind"]][0]),
            body,
            body["kind"].lower(),
            _rbac_refused,
            dry_run=dry_run,
            force=force,
        )
        for body in objects
    ]


def delete_rbac(connection: Connection, *, dry_run: bool = False) -> list[str]:
    """Delete the ClusterRoleBinding and ClusterRole ``install`` made (labelled managed by
    ``hardener``; ones made otherwise, by ``deploy/``, are left); the kinds deleted."""
    api = k8s.RbacAuthorizationV1Api(connection.api)
    deleted: list[str] = []
    for kind in ("ClusterRoleBinding", "ClusterRole"):
        _, read, delete = _RBAC_CALLS[kind]
        try:
            _, obj = call(connection, getattr(api, read), name=RBAC_NAME)
            labels = (
                (obj.get("metadata") or {}).get("labels") or {} if isinstance(obj, dict) else {}
            )
            if labels.get("app.kubernetes.io/managed-by") != FIELD_MANAGER:
                continue
            options: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
            call(connection, getattr(api, delete), name=RBAC_NAME, **options)
        except RequestDenied as exc:
            if exc.code == 404:
                continue
            raise _rbac_refused(f"deleting {kind.lower()} {RBAC_NAME!r}", exc) from exc
        deleted.append(kind)
    return deleted


def delete_configuration(
    connection: Connection, name: str = CONFIGURATION_NAME, *, dry_run: bool = False
) -> bool:
    """Delete the configuration; ``False`` when there was none."""
    api = k8s.AdmissionregistrationV1Api(connection.api)
    options: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
    try:
        call(connection, api.delete_mutating_webhook_configuration, name=name, **options)
    except RequestDenied as exc:
        if exc.code == 404:
            return False
        raise _refused(f"deleting mutatingwebhookconfiguration {name!r}", exc) from exc
    return True
