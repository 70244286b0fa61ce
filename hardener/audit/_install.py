"""``install`` and ``uninstall``: the webhook's ``MutatingWebhookConfiguration``, through the API.

The configuration holds the same two webhooks as ``deploy/base`` (a test keeps them equal to
``kubectl kustomize deploy/base``); only the client config (a Service or a URL, and the CA
bundle) and the ``app.kubernetes.io/managed-by`` label differ. It is written with server-side
apply under the field manager ``hardener``: the first apply creates it, later ones update the
fields hardener owns, and fields other managers own (a CA injector, say) are a conflict that
``force`` resolves in hardener's favour.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from kubernetes import client as k8s

from hardener import admission
from hardener.audit._cluster import ClusterError, Connection, RequestDenied, call
from hardener.model import HardenerError

__all__ = [
    "CONFIGURATION_NAME",
    "FIELD_MANAGER",
    "WEBHOOK_NAMES",
    "Applied",
    "InstallError",
    "apply_configuration",
    "delete_configuration",
    "read_ca_bundle",
    "webhook_configuration",
]

CONFIGURATION_NAME = admission.CONFIGURATION_NAME
FIELD_MANAGER = "hardener"
WEBHOOK_NAMES = admission.WEBHOOK_NAMES
DEFAULT_NAMESPACE = "hardener-system"
_APPLY = "application/apply-patch+yaml"


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


def webhook_configuration(
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
    return admission.webhook_configuration(
        client_config,
        own_namespace=own_namespace,
        failure_policy=failure_policy,
        labels={
            "app.kubernetes.io/name": "hardener",
            "app.kubernetes.io/component": "webhook",
            "app.kubernetes.io/part-of": "hardener",
            "app.kubernetes.io/managed-by": FIELD_MANAGER,
        },
    )


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
    name = body["metadata"]["name"]
    options: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": force}
    if dry_run:
        options["dry_run"] = "All"
    try:
        status, obj = call(
            connection,
            api.patch_mutating_webhook_configuration,
            name=name,
            body=body,
            _content_type=_APPLY,
            **options,
        )
    except RequestDenied as exc:
        raise _refused(f"applying mutatingwebhookconfiguration {name!r}", exc) from exc
    if not isinstance(obj, dict):
        raise ClusterError(f"applying mutatingwebhookconfiguration {name!r}: empty answer")
    return Applied(created=status == 201, obj=obj)


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
