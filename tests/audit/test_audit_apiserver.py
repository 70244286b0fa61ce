"""``hardener audit`` against the real kube-apiserver: real namespaces (with the labels Pod
Security Admission reads), Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs
and Pods, read by a ServiceAccount whose RBAC grants exactly what ``docs/audit.md`` says the
audit needs. The server's audit log shows what the audit asked for.

The objects are those the fake API serves (``tests/audit/data``), in namespaces of their own.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from hardener.cli import main
from tests.apiserver import APIServer
from tests.audit.kubeapi import load
from tests.audit.test_audit import ASSUME_NONROOT

pytestmark = pytest.mark.apiserver

# The fake's namespaces here (kube-system, with its Node-owned mirror pod, stays the fake's).
NAMESPACES = {
    "shop": (
        "audit-shop",
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
        },
    ),
    "legacy": (
        "audit-legacy",
        {
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.29",
        },
    ),
    "default": ("audit-open", {}),
}
KINDS = ("deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs", "pods")
READER = "audit-reader"
# What docs/audit.md says the audit needs: list on the workload kinds and namespaces.
RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "verbs": ["list"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["list"]},
]
EXPECTED = {
    "audit-open/Deployment/api",
    "audit-open/ReplicaSet/orphan",
    "audit-open/CronJob/nightly",
    "audit-open/Job/migrate",
    "audit-open/Pod/debug",
    "audit-legacy/DaemonSet/agent",
    "audit-shop/Deployment/web",
    "audit-shop/StatefulSet/db",
}


def _collection(obj: dict[str, Any], plural: str, namespace: str) -> str:
    group = {"pods": "/api/v1"}.get(plural)
    if group is None:
        group = "/apis/batch/v1" if plural in ("jobs", "cronjobs") else "/apis/apps/v1"
    return f"{group}/namespaces/{namespace}/{plural}"


def _as_new(obj: dict[str, Any], plural: str, namespace: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    metadata = obj["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        metadata.pop(key, None)
    metadata["namespace"] = namespace
    if plural == "jobs":
        # The server makes the selector and these labels from the Job's uid: as written
        # by a user, a Job has neither.
        obj["spec"].pop("selector", None)
        for labels in (metadata.get("labels", {}), obj["spec"]["template"]["metadata"]["labels"]):
            for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
                labels.pop(key, None)
    return obj


def _token(apiserver: APIServer, namespace: str, name: str) -> str:
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    answer = apiserver.must(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", request
    )
    token: str = answer["status"]["token"]
    return token


def _kubeconfig(apiserver: APIServer, path: Path, token: str) -> Path:
    config = yaml.safe_load(apiserver.kubeconfig.read_text(encoding="utf-8"))
    config["users"][0]["user"]["token"] = token
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cluster(apiserver: APIServer) -> APIServer:
    """The fake's workloads, created for real; the namespace labels set last, so that Pod
    Security Admission lets the (unhardened) pods in and only warns."""
    for name, _ in NAMESPACES.values():
        apiserver.create_namespace(name)
    for plural in KINDS:
        for item in load(f"{plural}.json"):
            target = NAMESPACES.get(item["metadata"]["namespace"])
            if target is None:
                continue
            obj = _as_new(item, plural, target[0])
            spec = obj["spec"]
            if plural == "cronjobs":
                spec = spec["jobTemplate"]["spec"]
            pod_spec = obj["spec"] if plural == "pods" else spec["template"]["spec"]
            account = pod_spec.get("serviceAccountName")
            if account and account != "default":
                apiserver.request(
                    "POST",
                    f"/api/v1/namespaces/{target[0]}/serviceaccounts",
                    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
                )
            apiserver.must("POST", _collection(obj, plural, target[0]), obj)
    for name, labels in NAMESPACES.values():
        if labels:
            apiserver.must(
                "PATCH",
                f"/api/v1/namespaces/{name}",
                {"metadata": {"labels": labels}},
                content_type="application/merge-patch+json",
            )
    # The reader: a ServiceAccount with a ClusterRole of exactly RULES.
    apiserver.create_namespace("audit-system")
    apiserver.must(
        "POST",
        "/api/v1/namespaces/audit-system/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": READER}},
    )
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    apiserver.must(
        "POST",
        f"{rbac}/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": READER},
            "rules": RULES,
        },
    )
    apiserver.must(
        "POST",
        f"{rbac}/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": READER},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": READER,
            },
            "subjects": [{"kind": "ServiceAccount", "name": READER, "namespace": "audit-system"}],
        },
    )
    return apiserver


@pytest.fixture
def reader(cluster: APIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig for the reader ServiceAccount (a token from the TokenRequest API)."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return _kubeconfig(cluster, tmp_path / "reader", _token(cluster, "audit-system", READER))


def _audit(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    # The fixtures' images cannot be looked up here; as in test_audit.py, they are stated to
    # run as non-root users, since these tests are about what audit reads and reports.
    settings = config.parent / "hardener-assume-nonroot.yaml"
    settings.write_text(ASSUME_NONROOT)
    code = main(["audit", "--kubeconfig", str(config), "--config", str(settings), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _ours(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mine = {name for name, _ in NAMESPACES.values()}
    return {
        f"{w['namespace']}/{w['kind']}/{w['name']}": w
        for ns in report["namespaces"]
        if ns["name"] in mine
        for w in ns["workloads"]
    }


def test_audit_pages_through_the_real_server_with_only_the_documented_rights(
    cluster: APIServer, reader: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _audit(capsys, reader, "-A", "--chunk-size", "2", "--format", "json")
    assert code == 1, err  # changes to make, nothing denied
    report = json.loads(out)
    assert report["denied"] == []
    workloads = _ours(report)
    assert set(workloads) == EXPECTED
    # Owned objects (the ReplicaSet of a Deployment, the Job of a CronJob, their pods) are
    # skipped, by the ownerReferences the server stored.
    assert report["skipped_owned"]["Deployment"] >= 1
    assert report["skipped_owned"]["ReplicaSet"] >= 1
    assert report["skipped_owned"]["CronJob"] >= 1
    assert report["skipped_owned"]["Job"] >= 1
    policies = {ns["name"]: ns["policy"] for ns in report["namespaces"]}
    assert policies["audit-shop"] == {
        "level": "restricted",
        "version": "v1.30",
        "source": "label",
        "note": None,
    }
    assert (policies["audit-legacy"]["level"], policies["audit-legacy"]["version"]) == (
        "baseline",
        "v1.29",
    )
    assert policies["audit-open"]["source"] == "config"
    web = workloads["audit-shop/Deployment/web"]["pss"]
    assert web["allowed_now"] is False and web["allowed_after_hardening"] is True
    agent = workloads["audit-legacy/DaemonSet/agent"]["pss"]
    assert [v["check"] for v in agent["after_hardening"]] == ["privileged"]


def test_the_audit_only_reads_and_follows_continue_tokens(
    cluster: APIServer, reader: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sum(1 for _ in cluster.audit_events())
    for fmt in ("text", "diff"):
        _audit(capsys, reader, "-A", "--chunk-size", "2", "--format", fmt)
    user = f"system:serviceaccount:audit-system:{READER}"
    reader_requests = [
        e for e in list(cluster.audit_events())[before:] if e["user"]["username"] == user
    ]
    assert reader_requests, "the audit log holds none of the reader's requests"
    assert {e["verb"] for e in reader_requests} == {"list"}
    pods = [
        parse_qs(urlsplit(e["requestURI"]).query)
        for e in reader_requests
        if e["objectRef"]["resource"] == "pods"
    ]
    assert all(q["limit"] == ["2"] for q in pods)
    assert any("continue" in q for q in pods), "more than 2 pods, yet no second page"


def test_what_the_audit_says_when_a_permission_is_missing(
    cluster: APIServer, reader: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without ``list`` on daemonsets: the rest is audited, the report says what was denied
    with the server's own RBAC message, and the audit counts as incomplete (exit 2)."""
    role = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{READER}"
    narrower = copy.deepcopy(RULES)
    narrower[1]["resources"].remove("daemonsets")
    cluster.must("PATCH", role, {"rules": narrower}, content_type="application/merge-patch+json")
    try:
        code, out, err = _audit(capsys, reader, "-A", "--format", "json")
    finally:
        cluster.must("PATCH", role, {"rules": RULES}, content_type="application/merge-patch+json")
    assert code == 2
    report = json.loads(out)
    assert set(_ours(report)) == EXPECTED - {"audit-legacy/DaemonSet/agent"}
    (denied,) = report["denied"]
    assert (denied["resource"], denied["code"], denied["reason"]) == (
        "daemonsets.apps",
        403,
        "Forbidden",
    )
    assert denied["message"] == (
        f'daemonsets.apps is forbidden: User "system:serviceaccount:audit-system:{READER}" '
        'cannot list resource "daemonsets" in API group "apps" at the cluster scope'
    )
    assert "not audited: daemonsets.apps: 403 Forbidden" in err
    assert "incomplete audit: could not list daemonsets.apps" in err


def test_one_namespace_and_a_missing_one(
    cluster: APIServer, reader: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _audit(capsys, reader, "-n", "audit-shop", "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert set(_ours(report)) == {"audit-shop/Deployment/web", "audit-shop/StatefulSet/db"}
    code, out, err = _audit(capsys, reader, "-n", "nope")
    assert (code, out) == (2, "")
    assert f"namespace 'nope' not found on {cluster.url}" in err


def test_rejected_credentials(
    cluster: APIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _kubeconfig(cluster, tmp_path / "kubeconfig", "not-a-valid-token")
    code, out, err = _audit(capsys, path, "-A")
    assert (code, out) == (2, "")
    assert "rejected the credentials (401 Unauthorized: Unauthorized)" in err
