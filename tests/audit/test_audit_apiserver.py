"""``hardener audit`` against the real kube-apiserver: real namespaces (with the labels Pod
Security Admission reads), Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs
and Pods, read by a ServiceAccount whose RBAC grants exactly what ``docs/audit.md`` says the
audit needs. The server's audit log shows what the audit asked for; a narrower ClusterRole
shows what the audit says when a permission is missing.

The objects are those of ``tests/audit/data``, created in namespaces of their own (the server
is shared by the whole session, so the tests look only at these). The audits run under
``images.unknown: assume-nonroot``: these tests are about the cluster side, not the images.
"""

from __future__ import annotations

import copy
import html
import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonpatch
import pytest
import yaml

from hardener.cli import main
from hardener.config import parse_config
from hardener.engine import plan
from hardener.image_facts import ImageFacts
from hardener.images import images_of, lookup_run
from hardener.pss import evaluate
from tests.apiserver import APIServer
from tests.audit.kubeapi import load

pytestmark = pytest.mark.apiserver

# tests/audit/data's namespace -> the namespace here, and its labels. ("odd", whose enforce label
# is invalid, is not here: Pod Security Admission refuses such a label.)
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
    "kube-system": ("audit-privileged", {"pod-security.kubernetes.io/enforce": "privileged"}),
    "empty": ("audit-empty", {"pod-security.kubernetes.io/enforce": "restricted"}),
}
CONFIG = parse_config({"images": {"unknown": "assume-nonroot"}})


def _facts(obj: Any) -> dict[str, ImageFacts]:
    """The facts the audit has of the object's images: the suite runs offline, so the offline
    table's (postgres, nginx and busybox run as root; postgres writes /var/run/postgresql,
    nginx /var/cache/nginx and /var/run), and unknown for the registry.example images."""
    return lookup_run(images_of([obj]), CONFIG.images, offline=True).facts


KINDS = (
    "deployments",
    "statefulsets",
    "daemonsets",
    "replicationcontrollers",
    "replicasets",
    "jobs",
    "cronjobs",
    "pods",
)
READER = "audit-reader"
# What docs/audit.md says the audit needs: list on the workload kinds and namespaces, and on
# nodes and runtime classes for the user-namespace section.
RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
    {"apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["replicationcontrollers"], "verbs": ["list"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "verbs": ["list"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["list"]},
]
EXPECTED = {
    "audit-privileged/DaemonSet/kube-proxy",
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
    group = {"pods": "/api/v1", "replicationcontrollers": "/api/v1"}.get(plural)
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
    """The workloads of ``tests/audit/data``, created for real; the namespace labels set last,
    so that Pod Security Admission lets the (unhardened) pods in and only warns."""
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
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return _kubeconfig(cluster, tmp_path / "reader", _token(cluster, "audit-system", READER))


def _settings(path: Path, extra: str = "") -> Path:
    """A hardener config: no image facts, images assumed non-root (and ``extra``)."""
    path.write_text("images:\n  unknown: assume-nonroot\n" + extra, encoding="utf-8")
    return path


Audit = Callable[..., tuple[int, str, str]]


@pytest.fixture
def audit(reader: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Audit:
    """``hardener audit ARGS`` as the reader (or with ``kubeconfig=``): exit code, stdout,
    stderr. Without ``--config`` in ARGS, images are assumed non-root."""
    settings = _settings(tmp_path / "hardener.yaml")

    def run(*args: str, kubeconfig: Path = reader) -> tuple[int, str, str]:
        config = () if "--config" in args else ("--config", str(settings))
        code = main(["audit", "--kubeconfig", str(kubeconfig), *config, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _json(audit: Audit, *args: str) -> dict[str, Any]:
    code, out, err = audit("--format", "json", *args)
    assert code in (1, 2), err
    report: dict[str, Any] = json.loads(out)
    return report


def _ours(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mine = {name for name, _ in NAMESPACES.values()}
    return {
        f"{w['namespace']}/{w['kind']}/{w['name']}": w
        for ns in report["namespaces"]
        if ns["name"] in mine
        for w in ns["workloads"]
    }


def _user() -> str:
    return f"system:serviceaccount:audit-system:{READER}"


def _allowed(cluster: APIServer, group: str, resource: str) -> bool:
    """Whether the authorizer lets the reader list ``resource`` now."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": _user(),
            "groups": ["system:serviceaccounts", "system:serviceaccounts:audit-system"],
            "resourceAttributes": {"verb": "list", "group": group, "resource": resource},
        },
    }
    answer = cluster.must("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer["status"].get("allowed"))


def _set_rules(cluster: APIServer, rules: list[dict[str, Any]], group: str, resource: str) -> None:
    """Give the reader's ClusterRole ``rules`` and wait until the authorizer, which reads roles
    from a cache, has seen the change for ``resource``."""
    cluster.must(
        "PATCH",
        f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{READER}",
        {"rules": rules},
        content_type="application/merge-patch+json",
    )
    wanted = any(
        group in rule["apiGroups"] and resource in rule["resources"] and "list" in rule["verbs"]
        for rule in rules
    )
    deadline = time.monotonic() + 10
    while _allowed(cluster, group, resource) != wanted:
        assert time.monotonic() < deadline, f"RBAC change for {resource} not seen in 10 s"
        time.sleep(0.05)


@contextmanager
def _without(cluster: APIServer, group: str, resource: str) -> Iterator[None]:
    """The reader without ``list`` (and ``get``) on ``resource`` for the duration."""
    narrower = copy.deepcopy(RULES)
    for rule in narrower:
        if group in rule["apiGroups"] and resource in rule["resources"]:
            rule["resources"].remove(resource)
    _set_rules(cluster, narrower, group, resource)
    try:
        yield
    finally:
        _set_rules(cluster, RULES, group, resource)


def _reader_events(cluster: APIServer, before: int) -> list[dict[str, Any]]:
    return [e for e in list(cluster.audit_events())[before:] if e["user"]["username"] == _user()]


def _stored(cluster: APIServer, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """The object as the server stores it, with its kind and apiVersion."""
    found: dict[str, Any] = cluster.must("GET", f"{_collection({}, plural, namespace)}/{name}")
    return found


def test_audit_pages_through_the_real_server_with_only_the_documented_rights(
    audit: Audit,
) -> None:
    code, out, err = audit("-A", "--chunk-size", "2", "--format", "json")
    assert code == 1, err  # changes to make, nothing denied
    report = json.loads(out)
    assert report["denied"] == []
    workloads = _ours(report)
    assert set(workloads) == EXPECTED
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


def test_owned_replicasets_jobs_and_pods_are_skipped(audit: Audit) -> None:
    """By the ownerReferences the server stored: a Deployment's ReplicaSet and its pod, a
    CronJob's Job and its pod, a mirror pod owned by its Node."""
    skipped = {
        namespace: _json(audit, "-n", namespace)["skipped_owned"]
        for namespace in ("audit-open", "audit-shop", "audit-privileged")
    }
    assert skipped == {
        "audit-open": {"CronJob": 1, "Job": 1},
        "audit-shop": {"Deployment": 1, "ReplicaSet": 1},
        "audit-privileged": {"Node": 1},
    }
    # Objects without a controller owner of those kinds are audited.
    names = set(_ours(_json(audit, "-n", "audit-open")))
    assert {"audit-open/ReplicaSet/orphan", "audit-open/Job/migrate"} <= names
    assert "audit-open/Pod/debug" in names


def test_namespace_labels_choose_the_level(audit: Audit) -> None:
    report = _json(audit, "-A")
    policies = {ns["name"]: ns["policy"] for ns in report["namespaces"]}
    assert policies["audit-legacy"]["level"] == "baseline"
    assert policies["audit-privileged"]["level"] == "privileged"
    assert policies["audit-open"] == {
        "level": "restricted",
        "version": "latest",
        "source": "config",
        "note": None,
    }
    workloads = _ours(report)
    # restricted: violations now, none once hardened.
    web = workloads["audit-shop/Deployment/web"]["pss"]
    assert {v["check"] for v in web["now"]} >= {"runAsNonRoot", "seccompProfile_restricted"}
    # baseline: a privileged container stays a violation; restricted-only checks do not count.
    agent = workloads["audit-legacy/DaemonSet/agent"]["pss"]
    assert [v["check"] for v in agent["now"]] == ["privileged"]
    # privileged: nothing is enforced, even on a privileged host-network pod.
    proxy = workloads["audit-privileged/DaemonSet/kube-proxy"]
    assert proxy["pss"]["allowed_now"] and proxy["pss"]["allowed_after_hardening"]
    assert proxy["pss"]["now"] == []
    # The engine's findings follow the configured level (restricted), whatever the namespace.
    assert any(f["check"] == "privileged" for f in proxy["findings"])


def test_the_configured_level_applies_to_unlabelled_namespaces(
    audit: Audit, tmp_path: Path
) -> None:
    settings = _settings(tmp_path / "baseline.yaml", "level: baseline\nversion: v1.28\n")
    report = _json(audit, "-A", "--config", str(settings))
    policies = {ns["name"]: ns["policy"] for ns in report["namespaces"]}
    assert (policies["audit-open"]["level"], policies["audit-open"]["version"]) == (
        "baseline",
        "v1.28",
    )
    assert policies["audit-shop"]["level"] == "restricted"  # the label wins
    debug = _ours(report)["audit-open/Pod/debug"]["pss"]
    assert debug["now"] == [] and debug["allowed_now"] is True


def test_one_namespace_uses_namespaced_paths(cluster: APIServer, audit: Audit) -> None:
    before = sum(1 for _ in cluster.audit_events())
    report = _json(audit, "-n", "audit-shop")
    assert set(_ours(report)) == {"audit-shop/Deployment/web", "audit-shop/StatefulSet/db"}
    assert report["namespace"] == "audit-shop"
    paths = [urlsplit(e["requestURI"]).path for e in _reader_events(cluster, before)]
    assert paths[0] == "/api/v1/namespaces/audit-shop"
    assert "/apis/apps/v1/namespaces/audit-shop/deployments" in paths
    assert "/api/v1/namespaces/audit-shop/pods" in paths
    assert "/apis/apps/v1/deployments" not in paths


def test_without_n_or_a_the_context_namespace_is_audited(
    cluster: APIServer, audit: Audit, reader: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load(reader.read_text(encoding="utf-8"))
    config["contexts"][0]["context"]["namespace"] = "audit-legacy"
    legacy = tmp_path / "kubeconfig-legacy"
    legacy.write_text(yaml.safe_dump(config), encoding="utf-8")
    before = sum(1 for _ in cluster.audit_events())
    code, out, _ = audit("--format", "json", kubeconfig=legacy)
    assert code == 1
    assert set(_ours(json.loads(out))) == {"audit-legacy/DaemonSet/agent"}
    paths = [urlsplit(e["requestURI"]).path for e in _reader_events(cluster, before)]
    assert "/apis/apps/v1/namespaces/audit-legacy/daemonsets" in paths


def test_kubeconfig_from_the_environment(
    cluster: APIServer,
    reader: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(reader))
    settings = _settings(tmp_path / "env.yaml")
    code = main(["audit", "-n", "audit-shop", "--format", "json", "--config", str(settings)])
    out, _ = capsys.readouterr()
    assert code == 1
    report = json.loads(out)
    assert (report["context"], report["server"]) == ("test", cluster.url)


def test_the_audit_only_reads_and_follows_continue_tokens(cluster: APIServer, audit: Audit) -> None:
    before = sum(1 for _ in cluster.audit_events())
    for fmt in ("text", "diff"):
        audit("-A", "--chunk-size", "2", "--format", fmt)
    reader_requests = _reader_events(cluster, before)
    assert reader_requests, "the audit log holds none of the reader's requests"
    assert {e["verb"] for e in reader_requests} == {"list"}
    pods = [
        parse_qs(urlsplit(e["requestURI"]).query)
        for e in reader_requests
        if e["objectRef"]["resource"] == "pods"
    ]
    assert all(q["limit"] == ["2"] for q in pods)
    assert any("continue" in q for q in pods), "more than 2 pods, yet no second page"


def test_what_the_audit_says_when_a_permission_is_missing(cluster: APIServer, audit: Audit) -> None:
    """Without ``list`` on daemonsets: the rest is audited, the report says what was denied
    with the server's own RBAC message, and the audit counts as incomplete (exit 2)."""
    with _without(cluster, "apps", "daemonsets"):
        code, out, err = audit("-A", "--format", "json")
    assert code == 2
    report = json.loads(out)
    assert set(_ours(report)) == EXPECTED - {
        "audit-legacy/DaemonSet/agent",
        "audit-privileged/DaemonSet/kube-proxy",
    }
    (denied,) = report["denied"]
    assert (denied["resource"], denied["code"], denied["reason"]) == (
        "daemonsets.apps",
        403,
        "Forbidden",
    )
    assert denied["message"] == (
        f'daemonsets.apps is forbidden: User "{_user()}" '
        'cannot list resource "daemonsets" in API group "apps" at the cluster scope'
    )
    assert "not audited: daemonsets.apps: 403 Forbidden" in err
    assert "incomplete audit: could not list daemonsets.apps" in err


def test_forbidden_resources_in_the_text_report(cluster: APIServer, audit: Audit) -> None:
    with _without(cluster, "", "pods"):
        code, out, _ = audit("-n", "audit-open")
    assert code == 2
    assert (
        "not audited: pods in namespace audit-open: 403 Forbidden: pods is forbidden: User "
        f'"{_user()}" cannot list resource "pods" in API group "" in the namespace '
        '"audit-open"'
    ) in out
    assert "Deployment api" in out


def test_one_namespace_and_a_missing_one(cluster: APIServer, audit: Audit) -> None:
    code, out, _ = audit("-n", "audit-shop", "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert set(_ours(report)) == {"audit-shop/Deployment/web", "audit-shop/StatefulSet/db"}
    code, out, err = audit("-n", "nope")
    assert (code, out) == (2, "")
    assert f"namespace 'nope' not found on {cluster.url}" in err


def test_a_replication_controller_is_audited(cluster: APIServer, audit: Audit) -> None:
    """The webhook hardens ReplicationControllers, so the audit lists them (with the reader's
    documented rights)."""
    namespace = NAMESPACES["default"][0]
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "legacy-web"},
        "spec": {
            "replicas": 1,
            "selector": {"app": "legacy-web"},
            "template": {
                "metadata": {"labels": {"app": "legacy-web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
            },
        },
    }
    answer = cluster.create(rc, namespace)
    assert answer.status == 201, answer.body
    try:
        workload = _ours(_json(audit, "-n", namespace))[
            f"{namespace}/ReplicationController/legacy-web"
        ]
        assert workload["changes"], workload
    finally:
        # A ReplicationController is deleted with "orphan" by default, a finalizer that only
        # the garbage collector (not running here) removes.
        cluster.must(
            "DELETE",
            f"/api/v1/namespaces/{namespace}/replicationcontrollers/legacy-web",
            {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"},
        )


def test_nothing_to_change_exits_zero(audit: Audit) -> None:
    code, out, _ = audit("-n", "audit-empty")
    assert code == 0
    # The user-namespace section comes first; what it says depends on the session's nodes.
    assert out.startswith("user namespaces (user-namespaces: auto): ")
    assert out.splitlines(keepends=True)[-1] == (
        "hardener audit: 0 workloads in 0 namespaces, 0 would change (0 changes), 0 findings, "
        "PSS: 0 not allowed now, 0 after hardening\n"
    )


def test_text_report(audit: Audit) -> None:
    code, out, _ = audit("-A")
    assert code == 1
    lines = out.splitlines()
    assert "namespace audit-shop: enforces restricted (v1.30) (its label)" in lines
    assert (
        "namespace audit-privileged: enforces privileged (its label): nothing is checked"
    ) in lines
    assert (
        "namespace audit-open: no enforce label: checked against the configured level "
        "restricted (latest)"
    ) in lines
    assert (
        "  Deployment web: 9 changes, 0 findings; PSS restricted (v1.30): now 4 violations, "
        "after hardening allowed"
    ) in lines
    # The image is unknown offline, and the message says why.
    assert (
        "    [run-as-non-root] /spec/template/spec/securityContext/runAsNonRoot: set "
        "runAsNonRoot=true on the pod: the user of image registry.example/web:1.4 is not known "
        "(lookups are off (offline); not cached and not in the offline table (add it under "
        "images.table)); assumed non-root (images.unknown: assume-nonroot)"
    ) in lines
    # The images section: the suite runs with HARDENER_IMAGES_OFFLINE=1; postgres, nginx and
    # busybox are in the offline table.
    assert "images: 9 images, lookups off (HARDENER_IMAGES_OFFLINE=1): 3 table, 6 unknown" in lines
    assert any(
        line.startswith('    [restrictedVolumes] volume "data"') and "needs a manual fix" in line
        for line in lines
    )
    code, out, _ = audit("-n", "audit-shop")
    assert out.splitlines()[-1] == (
        # web 9 changes, db 10; db's findings: its root image, the user-namespace note, and
        # the hostPath volume and runAsNonRoot that restricted still asks for.
        "hardener audit: 2 workloads in 1 namespace, 2 would change (19 changes), "
        "4 findings (4 need a manual fix), PSS: 2 not allowed now, 1 after hardening, "
        "2 owned by a controller skipped"
    )


def test_json_report_matches_the_engine(cluster: APIServer, audit: Audit) -> None:
    report = _json(audit, "-A")
    assert report["command"] == "audit"
    assert report["server"] == cluster.url
    # Objects are read raw: camelCase API names, exactly as stored, so the engine sees what a
    # manifest would show and its pointers address the stored object.
    obj = _stored(cluster, "statefulsets", "audit-shop", "db")
    decided = plan(obj, CONFIG, images=_facts(obj))
    db = _ours(report)["audit-shop/StatefulSet/db"]
    assert db["ops"] == decided.ops
    assert [c["pointer"] for c in db["changes"]] == [c.pointer for c in decided.changes]
    assert any("/spec/template/spec/securityContext/" in op["path"] for op in db["ops"])
    hardened = jsonpatch.apply_patch(obj, db["ops"])
    after = evaluate(hardened, level="restricted", version="v1.30")
    assert [v.check for v in after] == [v["check"] for v in db["pss"]["after_hardening"]]
    # postgres runs as root (the offline table): runAsNonRoot is left out, so the kubelet starts
    # it, and restricted still asks for it; /var/run/postgresql gets an emptyDir.
    assert [v["check"] for v in db["pss"]["after_hardening"]] == [
        "restrictedVolumes",
        "runAsNonRoot",
    ]
    assert not any(op["path"].endswith("/runAsNonRoot") for op in db["ops"])
    assert any(
        c["after"] == {"name": "hardener-var-run-postgresql", "emptyDir": {}} for c in db["changes"]
    )
    assert (
        "image postgres:16 runs as root; set runAsUser or use a non-root image"
        in (db["findings"][0]["message"])
    )


def test_markdown_report(cluster: APIServer, audit: Audit) -> None:
    with _without(cluster, "batch", "jobs"):
        code, out, err = audit("-A", "--format", "markdown")
    assert code == 2
    assert out.startswith(
        f"## hardener audit\n\ncontext <code>test</code>, server <code>{cluster.url}</code>"
    )
    assert "| Namespace | Workload | Changes | Findings | Policy | Now | After hardening |" in out
    assert (
        # postgres runs as root (offline table): no runAsNonRoot (1 change fewer), an emptyDir
        # for /var/run/postgresql (2 more), the reason and the user-namespace note as findings,
        # and runAsNonRoot still violated after hardening.
        "| <code>audit-shop</code> | <code>StatefulSet/db</code> | 10 | 4 | restricted (v1.30) | "
        "5 violations | 2 violations |"
    ) in out
    assert (
        "| <code>audit-privileged</code> | <code>DaemonSet/kube-proxy</code> | 8 | 3 | "
        "privileged (latest) | allowed | allowed |"
    ) in out
    assert "### Needs a manual fix" in out
    assert "### Not audited: requests the server refused\n\n- jobs.batch: 403 Forbidden" in out
    assert "<summary><code>audit-open/Deployment/api</code>: 6 changes</summary>" in out
    assert "not audited: jobs.batch" in err


def _figure(page: str, name: str) -> int:
    match = re.search(rf'id="fig-{name}">(\d+)<', page)
    assert match, name
    return int(match.group(1))


def test_html_report_has_the_json_verdicts(audit: Audit) -> None:
    report = _json(audit, "-A")
    code, page, _ = audit("-A", "--format", "html")
    assert code == 1
    workloads = [w for ns in report["namespaces"] for w in ns["workloads"]]
    assert page.startswith("<!DOCTYPE html>")
    assert _figure(page, "workloads") == len(workloads)
    assert _figure(page, "pass-now") == sum(
        1 for w in workloads if w["pss"]["allowed_now"] and not w["error"]
    )
    assert _figure(page, "pass-after") == sum(
        1 for w in workloads if w["pss"]["allowed_after_hardening"] and not w["error"]
    )
    assert _figure(page, "changes") == report["summary"]["changes"]
    # The heat map is by namespace; audit-shop's db keeps its restrictedVolumes violation.
    assert '<th scope="row" class="group">audit-shop</th>' in page
    cells = re.findall(r'data-check="restrictedVolumes"[^>]*>(\d+) → (\d+)<', page)
    after = sum(
        1
        for w in workloads
        if not w["pss"]["allowed_after_hardening"]
        for v in w["pss"]["after_hardening"]
        if v["check"] == "restrictedVolumes"
    )
    assert sum(int(b) for _, b in cells) == after > 0
    # The JSONPatch of each workload that changes is the one the json report carries.
    db = _ours(report)["audit-shop/StatefulSet/db"]
    assert json.dumps(db["ops"], indent=2) in html.unescape(page)


def _commands(out: str) -> list[list[str]]:
    return [shlex.split(line) for line in out.splitlines() if line.startswith("kubectl patch")]


def test_diff_patches_apply_to_the_stored_objects(cluster: APIServer, audit: Audit) -> None:
    """Each ``kubectl patch`` the diff prints is sent to the server (dry run): it accepts the
    patch, guards included, and what it would store needs no further change."""
    mine = {name for name, _ in NAMESPACES.values()}
    code, out, _ = audit("-A", "--format", "diff")
    assert code == 1
    commands = {(c[2], c[3], c[5]): c for c in _commands(out) if c[5] in mine}
    assert set(commands) == {
        ("deployment.apps", "api", "audit-open"),
        ("replicaset.apps", "orphan", "audit-open"),
        ("cronjob.batch", "nightly", "audit-open"),
        ("daemonset.apps", "kube-proxy", "audit-privileged"),
        ("daemonset.apps", "agent", "audit-legacy"),
        ("deployment.apps", "web", "audit-shop"),
        ("statefulset.apps", "db", "audit-shop"),
    }
    for (kind, name, namespace), command in commands.items():
        assert command[:2] == ["kubectl", "patch"]
        assert command[4] == "-n" and command[6:9] == ["--type", "json", "-p"]
        ops = json.loads(command[9])
        # test ops guard every container addressed by index; then the engine's ops.
        assert ops[0]["op"] == "test" and ops[0]["path"].endswith("/name")
        plural = kind.split(".")[0] + "s"
        patched = cluster.must(
            "PATCH",
            f"{_collection({}, plural, namespace)}/{name}",
            ops,
            params={"dryRun": "All"},
            content_type="application/json-patch+json",
        )
        assert plan(patched, CONFIG, images=_facts(patched)).ops == [], (kind, name)
    # The test op names the right container: api's sidecar is containers/1.
    api_ops = json.loads(commands[("deployment.apps", "api", "audit-open")][9])
    assert api_ops[0] == {
        "op": "test",
        "path": "/spec/template/spec/containers/1/name",
        "value": "sidecar",
    }


def test_diff_recreates_pods_and_jobs(cluster: APIServer, audit: Audit) -> None:
    """The manifests ``kubectl replace --force`` gets are ones the server creates (dry run,
    under another name: the originals still exist)."""
    _, out, _ = audit("-n", "audit-open", "--format", "diff")
    blocks = out.split("kubectl replace --force -f - <<'HARDENER_EOF'\n")[1:]
    manifests = [yaml.safe_load(block.split("HARDENER_EOF\n")[0]) for block in blocks]
    by_kind = {m["kind"]: m for m in manifests}
    assert set(by_kind) == {"Job", "Pod"}
    pod = by_kind["Pod"]
    assert pod["apiVersion"] == "v1"
    assert "status" not in pod
    assert set(pod["metadata"]) == {"name", "namespace"}
    assert plan(pod, CONFIG, images=_facts(pod)).ops == []
    job = by_kind["Job"]
    assert "selector" not in job["spec"]
    assert "labels" not in job["metadata"] and "labels" not in job["spec"]["template"]["metadata"]
    assert plan(job, CONFIG, images=_facts(job)).ops == []
    for manifest in (pod, job):
        renamed = copy.deepcopy(manifest)
        renamed["metadata"]["name"] += "-recreated"
        answer = cluster.create(renamed, "audit-open", dry_run=True)
        assert answer.status == 201, answer.body
    # busybox runs as root (offline table): no runAsNonRoot, 8 changes.
    assert "# Pod audit-open/debug: 8 changes; a Pod's security settings cannot be changed" in out


def test_config_exemptions_are_reported(audit: Audit, tmp_path: Path) -> None:
    settings = _settings(tmp_path / "exempt.yaml", "exempt:\n  namespaces: [audit-shop]\n")
    report = _json(audit, "-A", "--config", str(settings))
    web = _ours(report)["audit-shop/Deployment/web"]
    assert web["exempt"] and web["ops"] == [] and web["changes"] == []
    assert web["pss"]["after_hardening"] == web["pss"]["now"] != []
    _, out, _ = audit("-n", "audit-shop", "--config", str(settings), "--format", "diff")
    assert "kubectl patch" not in out


def test_rejected_credentials(cluster: APIServer, audit: Audit, tmp_path: Path) -> None:
    path = _kubeconfig(cluster, tmp_path / "kubeconfig", "not-a-valid-token")
    code, out, err = audit("-A", kubeconfig=path)
    assert (code, out) == (2, "")
    assert "rejected the credentials (401 Unauthorized: Unauthorized)" in err


def test_unknown_images_are_kept_by_default(audit: Audit, tmp_path: Path) -> None:
    # Without the assumption the other tests make: an image whose user is not known gets no
    # runAsNonRoot (the kubelet would refuse it for a root or named user), and audit says so.
    settings = tmp_path / "default.yaml"
    settings.write_text("images: {lookup: false}\n", encoding="utf-8")
    report = _json(audit, "-A", "--config", str(settings))
    web = _ours(report)["audit-shop/Deployment/web"]
    assert not [c for c in web["changes"] if c["pointer"].endswith("/runAsNonRoot")]
    [kept] = [
        f for f in web["findings"] if f["rule"] == "run-as-non-root" and f["container"] == "app"
    ]
    assert "registry.example/web:1.4 is not known" in kept["message"]
    assert "images.unknown: keep" in kept["message"]
    assert "runAsNonRoot" in [v["check"] for v in web["pss"]["after_hardening"]]
