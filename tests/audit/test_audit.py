"""``hardener audit`` through the real ``kubernetes`` client against the fake API server."""

from __future__ import annotations

import html
import json
import re
import shlex
import socket
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from hardener.audit import WorkloadAudit, kubectl_command, namespace_policy
from hardener.audit._results import Policy
from hardener.cli import main
from hardener.config import default_config, parse_config
from hardener.engine import plan
from hardener.pss import evaluate
from tests.audit.kubeapi import FakeKubeAPI, kubeconfig, load


def _audit(
    capsys: pytest.CaptureFixture[str], config_file: Path, *args: str
) -> tuple[int, str, str]:
    code = main(["audit", "--kubeconfig", str(config_file), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], config_file: Path, *args: str) -> dict[str, Any]:
    code, out, _ = _audit(capsys, config_file, "--format", "json", *args)
    assert code in (1, 2), out
    report: dict[str, Any] = json.loads(out)
    return report


def _workloads(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{w['namespace']}/{w['kind']}/{w['name']}": w
        for ns in report["namespaces"]
        for w in ns["workloads"]
    }


def _stored(data: str, namespace: str, name: str) -> dict[str, Any]:
    item: dict[str, Any] = next(
        i
        for i in load(data)
        if i["metadata"]["name"] == name and i["metadata"]["namespace"] == namespace
    )
    return item


EXPECTED = {
    "default/Deployment/api",
    "default/ReplicaSet/orphan",
    "default/CronJob/nightly",
    "default/Job/migrate",
    "default/Pod/debug",
    "kube-system/DaemonSet/kube-proxy",
    "legacy/DaemonSet/agent",
    "odd/Pod/probe",
    "shop/Deployment/web",
    "shop/StatefulSet/db",
}


def test_owned_replicasets_jobs_and_pods_are_skipped(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, config_file, "-A")
    names = set(_workloads(report))
    assert "shop/ReplicaSet/web-5d8f7c9b6" not in names
    assert "default/Job/nightly-28597500" not in names
    assert "shop/Pod/web-5d8f7c9b6-abcde" not in names
    assert "kube-system/Pod/kube-apiserver-node-1" not in names  # a mirror pod: owned by a Node
    assert report["skipped_owned"] == {
        "CronJob": 1,
        "Deployment": 1,
        "Job": 1,
        "Node": 1,
        "ReplicaSet": 1,
    }
    # Objects without a controller owner of those kinds are audited.
    assert {"default/ReplicaSet/orphan", "default/Job/migrate", "default/Pod/debug"} <= names


def test_namespace_labels_choose_the_level(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, config_file, "-A")
    policies = {ns["name"]: ns["policy"] for ns in report["namespaces"]}
    assert policies["shop"] == {
        "level": "restricted",
        "version": "v1.30",
        "source": "label",
        "note": None,
    }
    assert policies["legacy"]["level"] == "baseline"
    assert policies["legacy"]["version"] == "v1.29"
    assert policies["kube-system"]["level"] == "privileged"
    assert policies["default"] == {
        "level": "restricted",
        "version": "latest",
        "source": "config",
        "note": None,
    }
    assert policies["odd"]["level"] == "restricted"
    assert "invalid pod-security.kubernetes.io/enforce label 'strict'" in policies["odd"]["note"]

    workloads = _workloads(report)
    # restricted: violations now, none once hardened.
    web = workloads["shop/Deployment/web"]["pss"]
    assert web["allowed_now"] is False and web["allowed_after_hardening"] is True
    assert {v["check"] for v in web["now"]} >= {"runAsNonRoot", "seccompProfile_restricted"}
    # baseline: a privileged container stays a violation; restricted-only checks do not count.
    agent = workloads["legacy/DaemonSet/agent"]["pss"]
    assert [v["check"] for v in agent["now"]] == ["privileged"]
    assert [v["check"] for v in agent["after_hardening"]] == ["privileged"]
    # privileged: nothing is enforced, even on a privileged host-network pod.
    proxy = workloads["kube-system/DaemonSet/kube-proxy"]["pss"]
    assert proxy["allowed_now"] and proxy["allowed_after_hardening"] and proxy["now"] == []
    # The engine's findings follow the configured level (restricted), whatever the namespace.
    assert any(
        f["check"] == "privileged"
        for f in workloads["kube-system/DaemonSet/kube-proxy"]["findings"]
    )


def test_the_configured_level_applies_to_unlabelled_namespaces(
    kube: FakeKubeAPI,
    config_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = tmp_path / "hardener.yaml"
    settings.write_text("level: baseline\nversion: v1.28\n", encoding="utf-8")
    report = _json(capsys, config_file, "-A", "--config", str(settings))
    policies = {ns["name"]: ns["policy"] for ns in report["namespaces"]}
    assert policies["default"]["level"] == "baseline"
    assert policies["default"]["version"] == "v1.28"
    assert policies["shop"]["level"] == "restricted"  # the label wins
    debug = _workloads(report)["default/Pod/debug"]["pss"]
    assert debug["now"] == [] and debug["allowed_now"] is True


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, ("restricted", "latest", "config")),
        ({"pod-security.kubernetes.io/enforce": "baseline"}, ("baseline", "latest", "label")),
        (
            {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/enforce-version": "v1.25",
            },
            ("baseline", "v1.25", "label"),
        ),
        (
            {"pod-security.kubernetes.io/enforce-version": "v1.25"},
            ("restricted", "v1.25", "config"),
        ),
        ({"pod-security.kubernetes.io/enforce": "Strict"}, ("restricted", "latest", "label")),
        (
            {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/enforce-version": "1.25",
            },
            ("baseline", "latest", "label"),
        ),
        ({"pod-security.kubernetes.io/warn": "baseline"}, ("restricted", "latest", "config")),
    ],
)
def test_namespace_policy(labels: dict[str, str], expected: tuple[str, str, str]) -> None:
    policy = namespace_policy(labels, default_config())
    assert (policy.level, policy.version, policy.source) == expected
    invalid = any(v in ("Strict", "1.25") for v in labels.values())
    assert (policy.note is not None) == invalid


def test_one_namespace_uses_namespaced_paths(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, config_file, "-n", "shop")
    assert set(_workloads(report)) == {"shop/Deployment/web", "shop/StatefulSet/db"}
    assert report["namespace"] == "shop"
    paths = kube.paths()
    assert paths[0] == "/api/v1/namespaces/shop"
    assert "/apis/apps/v1/namespaces/shop/deployments" in paths
    assert "/api/v1/namespaces/shop/pods" in paths
    assert "/apis/apps/v1/deployments" not in paths


def test_without_n_or_a_the_context_namespace_is_audited(
    kube: FakeKubeAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kubeconfig-legacy"
    path.write_text(yaml.safe_dump(kubeconfig(kube.url, namespace="legacy")), encoding="utf-8")
    report = _json(capsys, path)
    assert set(_workloads(report)) == {"legacy/DaemonSet/agent"}
    assert "/apis/apps/v1/namespaces/legacy/daemonsets" in kube.paths()


def test_forbidden_resources_in_the_text_report(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.forbid = {"pods"}
    code, out, _ = _audit(capsys, config_file, "-n", "default")
    assert code == 2
    assert (
        "not audited: pods in namespace default: 403 Forbidden: pods is forbidden: User "
        '"system:serviceaccount:audit:reader" cannot list resource "pods" in API group "" in '
        'the namespace "default"'
    ) in out
    assert "Deployment api" in out


def test_a_resource_the_server_does_not_serve_is_noted(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.not_served = {"cronjobs"}
    code, out, err = _audit(capsys, config_file, "-A", "--format", "json")
    assert code == 1  # changes to make; a kind the server lacks does not make it incomplete
    report = json.loads(out)
    assert report["denied"] == [
        {
            "resource": "cronjobs.batch",
            "namespace": None,
            "code": 404,
            "reason": "NotFound",
            "message": "the server could not find the requested resource",
        }
    ]
    assert "default/CronJob/nightly" not in _workloads(report)
    assert "incomplete" not in err


def test_unreachable_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(f"http://127.0.0.1:{port}")), encoding="utf-8")
    code, out, err = _audit(capsys, path, "-A")
    assert code == 2
    assert out == ""
    assert f"cannot reach the API server http://127.0.0.1:{port} (context 'test')" in err
    assert "Traceback" not in err


def test_missing_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(["audit", "-A"])
    _, err = capsys.readouterr()
    assert code == 2
    assert (
        f"no kubeconfig: {tmp_path}/.kube/config does not exist; pass --kubeconfig FILE or "
        "set KUBECONFIG"
    ) in err

    missing = tmp_path / "nowhere.yaml"
    code = main(["audit", "--kubeconfig", str(missing)])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"no kubeconfig: {missing} does not exist" in err


def test_kubeconfig_from_the_environment(
    kube: FakeKubeAPI,
    config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(config_file))
    code = main(["audit", "-n", "shop", "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["context"] == "test"


def test_unknown_context_and_broken_kubeconfig(
    kube: FakeKubeAPI, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _audit(capsys, config_file, "--context", "prod")
    assert code == 2
    assert f"kubeconfig {config_file}: no context named 'prod' (contexts: test)" in err

    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: [\n", encoding="utf-8")
    code, _, err = _audit(capsys, broken)
    assert code == 2
    assert f"kubeconfig {broken}" in err
    assert "Traceback" not in err
    assert kube.requests == []


def test_text_report(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _audit(capsys, config_file, "-A")
    assert code == 1
    lines = out.splitlines()
    assert "namespace shop: enforces restricted (v1.30) (its label)" in lines
    assert "namespace kube-system: enforces privileged (its label): nothing is checked" in lines
    assert (
        "namespace default: no enforce label: checked against the configured level "
        "restricted (latest)"
    ) in lines
    assert (
        "  Deployment web: 9 changes, 0 findings; PSS restricted (v1.30): now 4 violations, "
        "after hardening allowed"
    ) in lines
    assert (
        "    [run-as-non-root] /spec/template/spec/securityContext/runAsNonRoot: set "
        "runAsNonRoot=true on the pod"
    ) in lines
    assert any(
        line.startswith('    [restrictedVolumes] volume "data"') and "needs a manual fix" in line
        for line in lines
    )
    assert lines[-1] == (
        "hardener audit: 10 workloads in 5 namespaces, 10 would change (85 changes), "
        "6 findings (6 need a manual fix), PSS: 9 not allowed now, 2 after hardening, "
        "5 owned by a controller skipped"
    )


def test_json_report_matches_the_engine(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, config_file, "-A")
    assert report["command"] == "audit"
    assert report["server"] == kube.url
    assert report["summary"]["workloads"] == len(EXPECTED)
    # Objects are read raw: camelCase API names, exactly as served, so the engine sees what a
    # manifest would show and its pointers address the stored object.
    stored = _stored("statefulsets.json", "shop", "db")
    obj = {"apiVersion": "apps/v1", "kind": "StatefulSet", **stored}
    decided = plan(obj, default_config())
    db = _workloads(report)["shop/StatefulSet/db"]
    assert db["ops"] == decided.ops
    assert [c["pointer"] for c in db["changes"]] == [c.pointer for c in decided.changes]
    assert any("/spec/template/spec/securityContext/" in op["path"] for op in db["ops"])
    hardened = jsonpatch.apply_patch(obj, db["ops"])
    after = evaluate(hardened, level="restricted", version="v1.30")
    assert [v.check for v in after] == [v["check"] for v in db["pss"]["after_hardening"]]
    assert [v["check"] for v in db["pss"]["after_hardening"]] == ["restrictedVolumes"]


def test_markdown_report(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.forbid = {"jobs"}
    code, out, err = _audit(capsys, config_file, "-A", "--format", "markdown")
    assert code == 2
    assert out.startswith("## hardener audit\n\ncontext <code>test</code>, server <code>http://")
    assert "| Namespace | Workload | Changes | Findings | Policy | Now | After hardening |" in out
    assert (
        "| <code>shop</code> | <code>StatefulSet/db</code> | 9 | 1 | restricted (v1.30) | "
        "5 violations | 1 violation |"
    ) in out
    assert (
        "| <code>kube-system</code> | <code>DaemonSet/kube-proxy</code> | 8 | 3 | "
        "privileged (latest) | allowed | allowed |"
    ) in out
    assert "### Needs a manual fix" in out
    assert "### Not audited: requests the server refused\n\n- jobs.batch: 403 Forbidden" in out
    assert "<summary><code>default/Deployment/api</code>: 6 changes</summary>" in out
    assert "not audited: jobs.batch" in err


def _figure(page: str, name: str) -> int:
    match = re.search(rf'id="fig-{name}">(\d+)<', page)
    assert match, name
    return int(match.group(1))


def test_html_report_has_the_json_verdicts(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, config_file, "-A")
    code, page, _ = _audit(capsys, config_file, "-A", "--format", "html")
    assert code == 1
    workloads = list(_workloads(report).values())
    assert page.startswith("<!DOCTYPE html>")
    assert _figure(page, "workloads") == len(workloads)
    assert _figure(page, "pass-now") == sum(
        1 for w in workloads if w["pss"]["allowed_now"] and not w["error"]
    )
    assert _figure(page, "pass-after") == sum(
        1 for w in workloads if w["pss"]["allowed_after_hardening"] and not w["error"]
    )
    assert _figure(page, "changes") == report["summary"]["changes"]
    # The heat map is by namespace; shop's db keeps its restrictedVolumes violation.
    assert '<th scope="row" class="group">shop</th>' in page
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
    db = _workloads(report)["shop/StatefulSet/db"]
    assert json.dumps(db["ops"], indent=2) in html.unescape(page)


def _commands(out: str) -> list[list[str]]:
    return [shlex.split(line) for line in out.splitlines() if line.startswith("kubectl patch")]


def test_diff_patches_apply_to_the_stored_objects(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _audit(capsys, config_file, "-A", "--format", "diff")
    assert code == 1
    commands = {(c[2], c[3], c[5]): c for c in _commands(out)}
    assert set(commands) == {
        ("deployment.apps", "api", "default"),
        ("replicaset.apps", "orphan", "default"),
        ("cronjob.batch", "nightly", "default"),
        ("daemonset.apps", "kube-proxy", "kube-system"),
        ("daemonset.apps", "agent", "legacy"),
        ("deployment.apps", "web", "shop"),
        ("statefulset.apps", "db", "shop"),
    }
    files = {
        "deployment.apps": "deployments.json",
        "replicaset.apps": "replicasets.json",
        "cronjob.batch": "cronjobs.json",
        "daemonset.apps": "daemonsets.json",
        "statefulset.apps": "statefulsets.json",
    }
    for (kind, name, namespace), command in commands.items():
        assert command[:2] == ["kubectl", "patch"]
        assert command[4] == "-n" and command[6:9] == ["--type", "json", "-p"]
        ops = json.loads(command[9])
        stored = _stored(files[kind], namespace, name)
        # test ops guard every container addressed by index; then the engine's ops.
        assert ops[0]["op"] == "test" and ops[0]["path"].endswith("/name")
        hardened = jsonpatch.apply_patch(stored, ops)
        assert plan(hardened, default_config()).ops == [], (kind, name)
    # The test op names the right container: api's sidecar is containers/1.
    api_ops = json.loads(commands[("deployment.apps", "api", "default")][9])
    assert api_ops[0] == {
        "op": "test",
        "path": "/spec/template/spec/containers/1/name",
        "value": "sidecar",
    }
    assert "# hardener audit: 7 workloads to patch, 3 to re-create" in out


def test_diff_recreates_pods_and_jobs(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _audit(capsys, config_file, "-n", "default", "--format", "diff")
    blocks = out.split("kubectl replace --force -f - <<'HARDENER_EOF'\n")[1:]
    manifests = [yaml.safe_load(block.split("HARDENER_EOF\n")[0]) for block in blocks]
    by_kind = {m["kind"]: m for m in manifests}
    assert set(by_kind) == {"Job", "Pod"}
    pod = by_kind["Pod"]
    assert pod["apiVersion"] == "v1"
    assert "status" not in pod
    assert set(pod["metadata"]) == {"name", "namespace"}
    assert plan(pod, default_config()).ops == []
    job = by_kind["Job"]
    assert "selector" not in job["spec"]
    assert "labels" not in job["metadata"] and "labels" not in job["spec"]["template"]["metadata"]
    assert plan(job, default_config()).ops == []
    assert "# Pod default/debug: 9 changes; a Pod's security settings cannot be changed" in out


def test_kubectl_command_quotes_for_the_shell() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "it's"},
        "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}},
    }
    ops: list[Any] = [
        {"op": "add", "path": "/metadata/annotations", "value": {"note": "it's $(rm -rf /) `x`"}}
    ]
    workload = WorkloadAudit(
        kind="Deployment",
        api_version="apps/v1",
        namespace="it's",
        name="web",
        policy=Policy("restricted", "latest", "config"),
        ops=ops,
        obj=obj,
    )
    command = shlex.split(kubectl_command(workload))
    assert command[5] == "it's"
    assert json.loads(command[-1]) == ops


def test_config_exemptions_are_reported(
    kube: FakeKubeAPI, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "hardener.yaml"
    settings.write_text("exempt:\n  namespaces: [shop]\n", encoding="utf-8")
    assert parse_config(yaml.safe_load(settings.read_text()), str(settings)).exempt_namespaces
    report = _json(capsys, config_file, "-A", "--config", str(settings))
    web = _workloads(report)["shop/Deployment/web"]
    assert web["exempt"] and web["ops"] == [] and web["changes"] == []
    assert web["pss"]["after_hardening"] == web["pss"]["now"] != []
    _, out, _ = _audit(
        capsys, config_file, "-n", "shop", "--config", str(settings), "--format", "diff"
    )
    assert "kubectl patch" not in out


def test_bad_config_is_reported_before_connecting(
    kube: FakeKubeAPI, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "hardener.yaml"
    settings.write_text("profile: paranoid\n", encoding="utf-8")
    code, _, err = _audit(capsys, config_file, "-A", "--config", str(settings))
    assert code == 2
    assert "invalid config" in err and "profile" in err
    assert kube.requests == []


def test_nothing_to_change_exits_zero(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _audit(capsys, config_file, "-n", "empty")
    assert code == 0
    # The fake API serves no Nodes: user namespaces stay off, and the audit says why.
    assert out == (
        "user namespaces (user-namespaces: auto): off: the nodes of the cluster cannot be read "
        "(404 the server could not find the requested resource); grant get, list and watch on "
        "nodes and runtimeclasses.node.k8s.io to read them\n"
        "  workloads running as root: 0, maybe (image user not known): 0; would move into a "
        "user namespace: 0; could not: 0\n"
        "hardener audit: 0 workloads in 0 namespaces, 0 would change (0 changes), 0 findings, "
        "PSS: 0 not allowed now, 0 after hardening\n"
    )
