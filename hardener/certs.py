"""TLS material for the admission webhook: a private CA and a serving certificate signed by it.

The API server only calls a webhook over TLS and checks its certificate against the
``caBundle`` of the webhook configuration. This module makes that pair of certificates with the
``cryptography`` package, writes them without ever clobbering existing files by accident, and
renders the kustomize inputs that the ``self-managed`` overlay in ``deploy/`` consumes.

The CA private key is returned in the bundle but never written by :func:`write_bundle`: once the
serving certificate is signed nobody needs it, and a key that is not on disk cannot leak.
Rotating means making a fresh bundle (new CA, new ``caBundle``).

Errors (both derive from :class:`hardener.model.HardenerError`)::

    CertsError                 bad input: an empty name list, an invalid IP, a bad validity
    └── CertFileExistsError    a file exists and ``force`` was not given (also a FileExistsError)
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hardener import webhook_config
from hardener.model import HardenerError

__all__ = [
    "DEFAULT_SECRET_NAME",
    "DEFAULT_WEBHOOK_CONFIGURATION",
    "DEFAULT_WEBHOOK_NAMES",
    "MAX_DAYS",
    "CertBundle",
    "CertFileExistsError",
    "CertsError",
    "kustomize_files",
    "make_bundle",
    "service_dns_names",
    "write_bundle",
    "write_files",
]

# Names used by deploy/base; the caBundle patch must name the same objects to land.
DEFAULT_SECRET_NAME = "hardener-tls"
DEFAULT_WEBHOOK_CONFIGURATION = webhook_config.CONFIGURATION_NAME
DEFAULT_WEBHOOK_NAMES: tuple[str, ...] = webhook_config.WEBHOOK_NAMES

# Ten years is already far longer than a webhook certificate should live; anything above this
# is more likely a typo (days vs hours) than a wish.
MAX_DAYS = 3650

# Certificates start a little in the past so that a node whose clock runs behind still
# accepts a certificate made a second ago.
_BACKDATE = datetime.timedelta(minutes=5)

_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644


class CertsError(HardenerError):
    """Input that cannot become a certificate, or files that cannot be written."""


class CertFileExistsError(CertsError, FileExistsError):
    """A file to be written already exists and overwriting was not asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path}: already exists; not overwriting it (pass --force to replace it, "
            "or choose another --out directory)"
        )
        self.path = path


@dataclass(frozen=True)
class CertBundle:
    """A CA and a serving certificate signed by it. Every field is PEM."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names a client inside the cluster may use to reach ``service`` in ``namespace``.

    The API server calls a webhook as ``<service>.<namespace>.svc``; the other forms are there
    for clients (probes, port-forwards, debugging) that resolve the shorter or longer names.
    """
    for label, value in (("service", service), ("namespace", namespace)):
        if not value or "." in value or value != value.strip():
            raise CertsError(
                f"invalid {label} name {value!r}: expected a DNS label like 'hardener'"
            )
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def make_bundle(
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    *,
    days: int = 365,
    common_name: str | None = None,
) -> CertBundle:
    """Make a fresh self-signed CA and a serving certificate for the given names.

    The serving certificate carries every DNS name and IP address as a subjectAltName, the
    serverAuth extended key usage, and is valid for ``days`` days (as is the CA).
    """
    if isinstance(dns_names, str) or isinstance(ip_addresses, str):
        raise CertsError("dns_names and ip_addresses must be sequences of strings, not a string")
    if not dns_names and not ip_addresses:
        raise CertsError("a serving certificate needs at least one DNS name or IP address")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise CertsError(f"invalid validity {days!r} days: expected a whole number 1..{MAX_DAYS}")
    for name in dns_names:
        if not name or any(c.isspace() for c in name) or name.startswith(".") or ".." in name:
            raise CertsError(f"invalid DNS name {name!r}")
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for text in ip_addresses:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            raise CertsError(f"invalid IP address {text!r}") from None

    subject_cn = common_name or (dns_names[0] if dns_names else str(addresses[0]))
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - _BACKDATE
    not_after = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hardener CA for {subject_cn}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())

    def signed(
        subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool, *more: x509.ExtensionType
    ) -> x509.Certificate:
        """A certificate of ``subject`` for ``key``, signed with the CA key: the CA's own
        (``ca``) or a serving one, with ``more`` (non-critical) extensions."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        for extension in more:
            builder = builder.add_extension(extension, critical=False)
        authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
        return builder.add_extension(authority, critical=False).sign(ca_key, hashes.SHA256())

    ca_cert = signed(ca_name, ca_key, True, ca_ski)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(address) for address in addresses]
    cert = signed(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]),
        key,
        False,
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.SubjectAlternativeName(sans),
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
    )

    return CertBundle(
        ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key=_key_pem(ca_key),
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=_key_pem(key),
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_files(
    out_dir: Path,
    files: Mapping[str, bytes],
    *,
    private: frozenset[str] = frozenset(),
    force: bool = False,
) -> list[Path]:
    """Write ``files`` (name -> content) into ``out_dir``; names in ``private`` get mode 0600.

    Without ``force`` nothing is written if any of the files already exists, so a refused
    run never leaves a half-replaced set behind. With ``force`` each file is replaced
    atomically (a private file is never readable by others, not even for a moment).
    """
    out_dir = Path(out_dir)
    for name in files:
        if not name or Path(name).name != name:
            raise CertsError(f"invalid file name {name!r}: expected a plain name without '/'")
    if out_dir.exists() and not out_dir.is_dir():
        raise CertsError(f"{out_dir}: exists and is not a directory")
    targets = [out_dir / name for name in files]
    if not force:
        for target in targets:
            if target.exists() or target.is_symlink():
                raise CertFileExistsError(target)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for target, content in zip(targets, files.values(), strict=True):
            mode = _PRIVATE_MODE if target.name in private else _PUBLIC_MODE
            if force:
                _replace(target, content, mode)
            else:
                _create(target, content, mode)
    except FileExistsError as exc:
        # Someone created the file between the check above and the write.
        raise CertFileExistsError(Path(exc.filename or out_dir)) from None
    except OSError as exc:
        raise CertsError(f"{exc.filename or out_dir}: cannot write: {exc.strerror}") from None
    return targets


def _create(target: Path, content: bytes, mode: int) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    # The umask may have taken bits away from a public file; set exactly what we mean.
    os.chmod(target, mode)


def _replace(target: Path, content: bytes, mode: int) -> None:
    # mkstemp creates the file 0600, so a key is never world-readable on the way in.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bundle(bundle: CertBundle, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write ``tls.crt``, ``tls.key`` (0600) and ``ca.crt`` into ``out_dir``.

    Existing files are never overwritten unless ``force`` is true; see :func:`write_files`.
    """
    return write_files(
        out_dir,
        {"tls.crt": bundle.cert, "tls.key": bundle.key, "ca.crt": bundle.ca_cert},
        private=frozenset({"tls.key"}),
        force=force,
    )


def kustomize_files(
    bundle: CertBundle,
    *,
    namespace: str,
    secret_name: str = DEFAULT_SECRET_NAME,
    configuration_name: str = DEFAULT_WEBHOOK_CONFIGURATION,
    webhook_names: Sequence[str] = DEFAULT_WEBHOOK_NAMES,
) -> dict[str, bytes]:
    """The kustomize Component that puts ``bundle`` into a cluster, as file name -> content.

    ``kustomization.yaml`` is a ``kind: Component`` that generates the ``kubernetes.io/tls``
    Secret from the ``tls.crt``/``tls.key``/``ca.crt`` files written beside it and applies
    ``cabundle-patch.yaml``, which sets the CA on every webhook of the configuration.
    """
    ca_bundle = base64.b64encode(bundle.ca_cert).decode("ascii")
    component = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "secretGenerator": [
            {
                "name": secret_name,
                "namespace": namespace,
                "type": "kubernetes.io/tls",
                "files": ["tls.crt", "tls.key", "ca.crt"],
                # The Deployment mounts the Secret by its plain name, as with cert-manager.
                "options": {
                    "disableNameSuffixHash": True,
                    "labels": {"app.kubernetes.io/part-of": "hardener"},
                },
            }
        ],
        "patches": [
            {
                "path": "cabundle-patch.yaml",
                "target": {
                    "group": "admissionregistration.k8s.io",
                    "version": "v1",
                    "kind": "MutatingWebhookConfiguration",
                    "name": configuration_name,
                },
            }
        ],
    }
    patch = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": configuration_name},
        "webhooks": [
            {"name": name, "clientConfig": {"caBundle": ca_bundle}} for name in webhook_names
        ],
    }
    header = "# Generated by `hardener certs`; re-run it with --force to rotate.\n"
    return {
        "kustomization.yaml": (header + yaml.safe_dump(component, sort_keys=False)).encode(),
        "cabundle-patch.yaml": (header + yaml.safe_dump(patch, sort_keys=False)).encode(),
    }
