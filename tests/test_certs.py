"""hardener.certs and ``hardener certs``: what the API server checks, checked with cryptography."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from hardener.certs import (
    CertBundle,
    CertFileExistsError,
    CertsError,
    kustomize_files,
    make_bundle,
    service_dns_names,
    write_bundle,
)
from hardener.cli import main
from hardener.model import HardenerError

SERVICE_NAMES = [
    "hardener",
    "hardener.hardener-system",
    "hardener.hardener-system.svc",
    "hardener.hardener-system.svc.cluster.local",
]


@pytest.fixture(scope="module")
def bundle() -> CertBundle:
    return make_bundle(service_dns_names("hardener", "hardener-system"), ["10.96.0.10", "::1"])


def _certs(bundle: CertBundle) -> tuple[x509.Certificate, x509.Certificate]:
    return (
        x509.load_pem_x509_certificate(bundle.ca_cert),
        x509.load_pem_x509_certificate(bundle.cert),
    )


def _verify(
    ca: x509.Certificate, leaf: x509.Certificate, subject: x509.DNSName | x509.IPAddress
) -> None:
    builder = PolicyBuilder().store(Store([ca]))
    verifier = builder.build_server_verifier(subject)
    chain = verifier.verify(leaf, [])
    assert chain[0] == leaf
    assert chain[-1] == ca


def test_service_dns_names() -> None:
    assert service_dns_names("hardener", "hardener-system") == SERVICE_NAMES


@pytest.mark.parametrize(("service", "namespace"), [("", "ns"), ("svc", ""), ("a.b", "ns")])
def test_service_dns_names_rejects_bad_labels(service: str, namespace: str) -> None:
    with pytest.raises(CertsError, match="invalid"):
        service_dns_names(service, namespace)


def test_sans_cover_every_name_and_ip(bundle: CertBundle) -> None:
    _, leaf = _certs(bundle)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == SERVICE_NAMES
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.96.0.10"),
        ipaddress.ip_address("::1"),
    ]


def test_ca_and_leaf_extensions(bundle: CertBundle) -> None:
    ca, leaf = _certs(bundle)
    ca_bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_bc.critical and ca_bc.value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    leaf_bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert not leaf_bc.value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.issuer == ca.subject


@pytest.mark.parametrize("days", [1, 30, 365])
def test_validity_is_the_requested_days(days: int) -> None:
    before = datetime.datetime.now(datetime.UTC)
    ca, leaf = _certs(make_bundle(["svc.ns.svc"], days=days))
    after = datetime.datetime.now(datetime.UTC)
    for cert in (ca, leaf):
        assert cert.not_valid_before_utc <= before
        expected = datetime.timedelta(days=days)
        # Certificate times have one-second resolution.
        assert before + expected - datetime.timedelta(seconds=1) <= cert.not_valid_after_utc
        assert cert.not_valid_after_utc <= after + expected


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_chain_verifies_for_every_service_name(bundle: CertBundle, name: str) -> None:
    ca, leaf = _certs(bundle)
    _verify(ca, leaf, x509.DNSName(name))


def test_chain_verifies_for_ip(bundle: CertBundle) -> None:
    ca, leaf = _certs(bundle)
    _verify(ca, leaf, x509.IPAddress(ipaddress.ip_address("10.96.0.10")))


def test_chain_rejects_other_name_and_other_ca(bundle: CertBundle) -> None:
    ca, leaf = _certs(bundle)
    with pytest.raises(VerificationError):
        _verify(ca, leaf, x509.DNSName("hardener.other-namespace.svc"))
    other_ca, _ = _certs(make_bundle(SERVICE_NAMES))
    with pytest.raises(VerificationError):
        _verify(other_ca, leaf, x509.DNSName(SERVICE_NAMES[2]))


def test_keys_match_their_certificates(bundle: CertBundle) -> None:
    ca, leaf = _certs(bundle)
    for key_pem, cert in ((bundle.ca_key, ca), (bundle.key, leaf)):
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key() == cert.public_key()


def test_each_bundle_is_fresh() -> None:
    first, second = make_bundle(["a"]), make_bundle(["a"])
    assert first.ca_key != second.ca_key
    assert first.key != second.key


def test_common_name_defaults_and_override() -> None:
    _, leaf = _certs(make_bundle(["first.example", "second.example"]))
    assert leaf.subject.rfc4514_string() == "CN=first.example"
    _, leaf = _certs(make_bundle([], ["127.0.0.1"], common_name="local"))
    assert leaf.subject.rfc4514_string() == "CN=local"


@pytest.mark.parametrize(
    ("dns_names", "ips", "days", "message"),
    [
        ([], [], 365, "at least one"),
        (["ok"], ["not-an-ip"], 365, "invalid IP address 'not-an-ip'"),
        (["bad name"], [], 365, "invalid DNS name"),
        (["ok"], [], 0, "invalid validity 0"),
        (["ok"], [], 100000, "invalid validity 100000"),
    ],
)
def test_make_bundle_rejects_bad_input(
    dns_names: list[str], ips: list[str], days: int, message: str
) -> None:
    with pytest.raises(CertsError, match=message):
        make_bundle(dns_names, ips, days=days)


def test_make_bundle_rejects_a_bare_string() -> None:
    with pytest.raises(CertsError, match="not a string"):
        make_bundle("hardener.svc")


def test_write_bundle_files_and_modes(bundle: CertBundle, tmp_path: Path) -> None:
    out = tmp_path / "new" / "tls"
    written = write_bundle(bundle, out)
    assert [p.name for p in written] == ["tls.crt", "tls.key", "ca.crt"]
    assert (out / "tls.crt").read_bytes() == bundle.cert
    assert (out / "tls.key").read_bytes() == bundle.key
    assert (out / "ca.crt").read_bytes() == bundle.ca_cert
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "tls.crt").stat().st_mode) == 0o644
    assert not list(out.glob("*ca.key*")), "the CA key must never be written"


def test_write_bundle_never_overwrites_without_force(bundle: CertBundle, tmp_path: Path) -> None:
    (tmp_path / "tls.key").write_bytes(b"precious")
    with pytest.raises(CertFileExistsError, match=r"tls\.key: already exists.*--force") as info:
        write_bundle(bundle, tmp_path)
    assert isinstance(info.value, FileExistsError)
    assert isinstance(info.value, HardenerError)
    assert info.value.path == tmp_path / "tls.key"
    assert (tmp_path / "tls.key").read_bytes() == b"precious"
    # All or nothing: the files that did not exist were not written either.
    assert not (tmp_path / "tls.crt").exists()
    assert not (tmp_path / "ca.crt").exists()


def test_write_bundle_force_replaces_and_keeps_key_private(
    bundle: CertBundle, tmp_path: Path
) -> None:
    key = tmp_path / "tls.key"
    key.write_bytes(b"old")
    key.chmod(0o644)
    write_bundle(bundle, tmp_path, force=True)
    assert key.read_bytes() == bundle.key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]


def test_write_bundle_refuses_a_file_as_directory(bundle: CertBundle, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CertsError, match="not a directory"):
        write_bundle(bundle, target)


def test_kustomize_files(bundle: CertBundle) -> None:
    files = kustomize_files(bundle, namespace="ns1")
    component = yaml.safe_load(files["kustomization.yaml"])
    assert component["kind"] == "Component"
    (generator,) = component["secretGenerator"]
    assert generator["name"] == "hardener-tls"
    assert generator["namespace"] == "ns1"
    assert generator["type"] == "kubernetes.io/tls"
    assert generator["files"] == ["tls.crt", "tls.key", "ca.crt"]
    patch = yaml.safe_load(files["cabundle-patch.yaml"])
    assert patch["metadata"]["name"] == "hardener"
    bundles = {w["name"]: w["clientConfig"]["caBundle"] for w in patch["webhooks"]}
    assert set(bundles) == {"pods.hardener.dev", "workloads.hardener.dev"}
    for value in bundles.values():
        assert base64.b64decode(value) == bundle.ca_cert


def test_cli_writes_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tls"
    code = main(
        ["certs", "--service", "hook", "--namespace", "guard", "--out", str(out), "--days", "7"]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "ca.crt",
        "cabundle-patch.yaml",
        "kustomization.yaml",
        "tls.crt",
        "tls.key",
    ]
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600
    assert "wrote" in capsys.readouterr().out
    ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    leaf = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    _verify(ca, leaf, x509.DNSName("hook.guard.svc"))
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert datetime.timedelta(days=7) < lifetime <= datetime.timedelta(days=7, minutes=6)
    component = yaml.safe_load((out / "kustomization.yaml").read_bytes())
    assert component["secretGenerator"][0]["namespace"] == "guard"


def test_cli_refuses_overwrite_then_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "tls.key").read_bytes()
    capsys.readouterr()
    assert main(["certs", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "tls.crt: already exists" in err and "--force" in err
    assert (tmp_path / "tls.key").read_bytes() == first
    assert main(["certs", "--out", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "tls.key").read_bytes() != first
    assert stat.S_IMODE((tmp_path / "tls.key").stat().st_mode) == 0o600


def test_cli_bad_days_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path / "x"), "--days", "0"]) == 2
    assert "invalid validity 0 days" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
