"""``hardener install`` and ``hardener uninstall`` against the real kube-apiserver: after each
step the server holds exactly what is expected (the webhook configurations it lists, the
stored object, its generation and field managers)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.audit import NODE_READER_RULES, install_webhook_configuration
from hardener.certs import make_bundle
from hardener.cli import main
from tests.apiserver import APIServer

pytestmark = pytest.mark.apiserver

MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
ROLE = f"{RBAC}/clusterroles/hardener"
BINDING = f"{RBAC}/clusterrolebindings/hardener"
CREATED = "(server-side apply, field manager hardener)"
# The server's defaults for fields hardener leaves out of a webhook entry.
SERVER_DEFAULTS = {"port": 443}


def _names(apiserver: APIServer) -> set[str]:
    return {item["metadata"]["name"] for item in apiserver.must("GET", MWC)["items"]}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, bytes]:
    pem: bytes = make_bundle(["hardener.hardener-system.svc"], [], days=1).ca_cert
    path = tmp_path / "ca.crt"
    path.write_bytes(pem)
    return path, pem


@pytest.fixture
def clean(apiserver: APIServer) -> Iterator[set[str]]:
    """The configurations before the test; ``hardener`` is gone again afterwards."""
    before = _names(apiserver)
    assert "hardener" not in before
    yield before
    apiserver.request("DELETE", f"{MWC}/hardener")
    apiserver.request("DELETE", BINDING)
    apiserver.request("DELETE", ROLE)


def _as_account(
    apiserver: APIServer, namespace: str, account: str, directory: Path
) -> tuple[Path, str]:
    """A kubeconfig that speaks as the ServiceAccount (a TokenRequest token), and the token."""
    token: str = apiserver.must(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    config = yaml.safe_load(apiserver.kubeconfig.read_text(encoding="utf-8"))
    config["users"][0]["user"]["token"] = token
    path = directory / f"{namespace}-{account}.kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, token


def _stored_as_sent(stored: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """``stored`` cut down to the fields of ``sent`` (the server adds its own)."""
    if isinstance(sent, dict):
        return {k: _stored_as_sent(stored[k], v) for k, v in sent.items() if k in stored}
    if isinstance(sent, list):
        return [_stored_as_sent(a, b) for a, b in zip(stored, sent, strict=True)]  # type: ignore[return-value]
    return stored


def test_install_dry_run_install_update_and_uninstall(
    apiserver: APIServer,
    ca: tuple[Path, bytes],
    clean: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    kc = ("--kubeconfig", str(apiserver.kubeconfig))
    args = ("install", *kc, "--service", "hardener", "--namespace", "hardener-system")
    args += ("--ca-bundle", str(ca[0]))
    expected = install_webhook_configuration(ca[1], service="hardener", namespace="hardener-system")

    code, out, err = _run(capsys, *args, "--dry-run")
    assert code == 0, err
    assert (
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/hardener would be created" in err
    )
    assert "clusterrole.rbac.authorization.k8s.io/hardener would be created" in err
    assert "clusterrolebinding.rbac.authorization.k8s.io/hardener would be created" in err
    printed, role, binding = yaml.safe_load_all(out)
    assert printed["metadata"]["uid"] and printed["metadata"]["managedFields"][0]["manager"] == (
        "hardener"
    )
    assert (role["kind"], binding["kind"]) == ("ClusterRole", "ClusterRoleBinding")
    assert _names(apiserver) == clean  # nothing stored
    assert apiserver.request("GET", ROLE).status == 404

    code, out, err = _run(capsys, *args)
    assert (code, err) == (0, "")
    assert out == (
        f"mutatingwebhookconfiguration.admissionregistration.k8s.io/hardener created {CREATED}\n"
        f"clusterrole.rbac.authorization.k8s.io/hardener created {CREATED}\n"
        f"clusterrolebinding.rbac.authorization.k8s.io/hardener created {CREATED}\n"
    )
    # Read-only on nodes and RuntimeClasses, for the webhook's ServiceAccount, nothing else.
    assert apiserver.must("GET", ROLE)["rules"] == NODE_READER_RULES
    assert apiserver.must("GET", BINDING)["subjects"] == [
        {"kind": "ServiceAccount", "name": "hardener", "namespace": "hardener-system"}
    ]
    assert _names(apiserver) == clean | {"hardener"}
    stored = apiserver.must("GET", f"{MWC}/hardener")
    assert stored["metadata"]["generation"] == 1
    assert [m["manager"] for m in stored["metadata"]["managedFields"]] == ["hardener"]
    assert _stored_as_sent(stored, expected) == expected
    for webhook in stored["webhooks"]:
        assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == ca[1]
        assert webhook["clientConfig"]["service"]["port"] == SERVER_DEFAULTS["port"]

    code, out, _ = _run(capsys, *args, "--failure-policy", "Fail")
    assert code == 0 and "hardener configured" in out
    stored = apiserver.must("GET", f"{MWC}/hardener")
    assert stored["metadata"]["generation"] == 2
    assert {w["failurePolicy"] for w in stored["webhooks"]} == {"Fail"}

    code, out, _ = _run(capsys, "uninstall", *kc, "--dry-run")
    assert code == 0 and out.endswith("hardener would be deleted (server dry run)\n")
    assert _names(apiserver) == clean | {"hardener"}

    code, out, _ = _run(capsys, "uninstall", *kc)
    assert code == 0
    assert out == (
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/hardener deleted\n"
        "clusterrolebinding.rbac.authorization.k8s.io/hardener deleted\n"
        "clusterrole.rbac.authorization.k8s.io/hardener deleted\n"
    )
    assert _names(apiserver) == clean
    assert apiserver.request("GET", ROLE).status == 404

    code, out, _ = _run(capsys, "uninstall", *kc)
    assert code == 0 and out.endswith("hardener not found: nothing to remove\n")


def test_install_conflicts_with_another_field_manager(
    apiserver: APIServer,
    ca: tuple[Path, bytes],
    clean: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cainjector owning the failure policy: hardener does not take it over unasked."""
    kc = ("--kubeconfig", str(apiserver.kubeconfig))
    args = ("install", *kc, "--url", "https://hooks.example.com/mutate", "--ca-bundle", str(ca[0]))
    assert _run(capsys, *args)[0] == 0
    other = install_webhook_configuration(ca[1], url="https://hooks.example.com/mutate")
    for webhook in other["webhooks"]:
        webhook["failurePolicy"] = "Fail"
    apiserver.must(
        "PATCH",
        f"{MWC}/hardener",
        yaml.safe_dump(other).encode(),
        params={"fieldManager": "cainjector", "force": "true"},
        content_type="application/apply-patch+yaml",
    )
    code, out, err = _run(capsys, *args)
    assert (code, out) == (2, "")
    assert '409 Conflict: Apply failed with 2 conflicts: conflicts with "cainjector"' in err, err
    assert "pass --force-conflicts to take them over" in err
    stored = apiserver.must("GET", f"{MWC}/hardener")
    assert {w["failurePolicy"] for w in stored["webhooks"]} == {"Fail"}

    assert _run(capsys, *args, "--force-conflicts")[0] == 0
    stored = apiserver.must("GET", f"{MWC}/hardener")
    assert {w["failurePolicy"] for w in stored["webhooks"]} == {"Ignore"}


def test_install_and_uninstall_without_the_permission(
    apiserver: APIServer,
    ca: tuple[Path, bytes],
    clean: set[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ServiceAccount with no rights on webhook configurations: the server's 403, named."""
    apiserver.create_namespace("install-test")
    path, _ = _as_account(apiserver, "install-test", "default", tmp_path)
    user = "system:serviceaccount:install-test:default"

    code, _, err = _run(
        capsys,
        "install",
        "--kubeconfig",
        str(path),
        "--service",
        "hardener",
        "--ca-bundle",
        str(ca[0]),
    )
    assert code == 2
    assert (
        "applying mutatingwebhookconfiguration 'hardener': 403 Forbidden: "
        'mutatingwebhookconfigurations.admissionregistration.k8s.io "hardener" is forbidden: '
        f'User "{user}" cannot patch resource'
    ) in err
    assert "needs permission to manage mutatingwebhookconfigurations" in err
    assert _names(apiserver) == clean
    code, _, err = _run(capsys, "uninstall", "--kubeconfig", str(path))
    assert code == 2
    assert "deleting mutatingwebhookconfiguration 'hardener': 403 Forbidden" in err


def test_uninstall_with_rejected_credentials(
    apiserver: APIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(apiserver.kubeconfig.read_text(encoding="utf-8"))
    config["users"][0]["user"]["token"] = "not-a-valid-token"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    code, out, err = _run(capsys, "uninstall", "--kubeconfig", str(path))
    assert (code, out) == (2, "")
    assert "rejected the credentials (401 Unauthorized: Unauthorized)" in err


def test_the_installed_role_lets_the_webhook_read_nodes_and_nothing_else(
    apiserver: APIServer,
    ca: tuple[Path, bytes],
    clean: set[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The ServiceAccount bound by install reads what the node watch needs; writes and other
    resources stay forbidden. A ClusterRole made by deploy/ (no managed-by hardener label) is
    left alone by uninstall."""
    from hardener.audit import connect
    from hardener.nodewatch import SupportWatch

    namespace = "install-rbac"
    apiserver.create_namespace(namespace)
    apiserver.must(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "webhook"}},
    )
    kc = ("--kubeconfig", str(apiserver.kubeconfig))
    code, _, err = _run(
        capsys,
        "install",
        *kc,
        "--service",
        "hardener",
        "--namespace",
        namespace,
        "--service-account",
        "webhook",
        "--ca-bundle",
        str(ca[0]),
    )
    assert code == 0, err
    path, token = _as_account(apiserver, namespace, "webhook", tmp_path)
    # The API server's authorizer reads RBAC objects from its own watch cache, so a binding
    # just created takes effect a moment later: wait for it (at most 10 s) before judging.
    for _ in range(100):
        if apiserver.request("GET", "/api/v1/nodes", token=token).status != 403:
            break
        time.sleep(0.1)
    for verb, url, allowed in (
        ("GET", "/api/v1/nodes", True),
        ("GET", "/api/v1/nodes?watch=true&timeoutSeconds=1", True),
        ("GET", "/apis/node.k8s.io/v1/runtimeclasses", True),
        ("GET", "/api/v1/pods", False),
        ("GET", "/api/v1/secrets", False),
        ("DELETE", "/api/v1/nodes/none", False),
    ):
        status = apiserver.request(verb, url, token=token).status
        assert (status != 403) == allowed, (verb, url, status)
    connection = connect(str(path))
    try:
        assert SupportWatch.read_once(connection.api, 10).state == "cluster"
    finally:
        connection.close()

    # Without --service (a URL), or with --no-rbac, no RBAC is applied.
    assert _run(capsys, "uninstall", *kc)[0] == 0
    assert apiserver.request("GET", ROLE).status == 404
    for extra in (("--url", "https://hooks.example.com/mutate"), ("--service", "x", "--no-rbac")):
        code, out, err = _run(capsys, "install", *kc, *extra, "--ca-bundle", str(ca[0]))
        assert code == 0 and "clusterrole" not in out, err
        assert apiserver.request("GET", ROLE).status == 404

    # A ClusterRole of the same name that install did not make stays.
    apiserver.must(
        "POST",
        f"{RBAC}/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "hardener",
                "labels": {"app.kubernetes.io/managed-by": "kustomize"},
            },
            "rules": NODE_READER_RULES,
        },
    )
    code, out, _ = _run(capsys, "uninstall", *kc)
    assert code == 0 and "clusterrole" not in out
    assert apiserver.request("GET", ROLE).status == 200
