"""``hardener audit`` where no real API server is needed or can help: the parts that need no
server (namespace policies, shell quoting, kubeconfig and config errors, which must come
before any request), and, through the real ``kubernetes`` client against the fake API server
(``kubeapi.py``), the faults the real server cannot be made to show. Everything else runs
against the real server in ``test_audit_apiserver.py``.
"""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.audit import Policy, WorkloadAudit, namespace_policy
from hardener.cli import main
from hardener.config import default_config
from hardener.report import kubectl_command
from tests.audit.kubeapi import FakeKubeAPI, kubeconfig


def _audit(
    capsys: pytest.CaptureFixture[str], config_file: Path, *args: str
) -> tuple[int, str, str]:
    code = main(["audit", "--kubeconfig", str(config_file), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _workloads(report: dict[str, Any]) -> set[str]:
    return {
        f"{w['namespace']}/{w['kind']}/{w['name']}"
        for ns in report["namespaces"]
        for w in ns["workloads"]
    }


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


def test_a_resource_the_server_does_not_serve_is_noted(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fake: the session's server serves every kind the audit lists (one without CronJobs is an
    older or trimmed server, another server start)."""
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
    assert "default/Deployment/api" in _workloads(report)
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


def test_unknown_context_and_broken_kubeconfig(
    nowhere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _audit(capsys, nowhere, "--context", "prod")
    assert code == 2
    assert f"kubeconfig {nowhere}: no context named 'prod' (contexts: test)" in err

    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: [\n", encoding="utf-8")
    code, _, err = _audit(capsys, broken)
    assert code == 2
    assert f"kubeconfig {broken}" in err
    assert "Traceback" not in err


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


def test_bad_config_is_reported_before_connecting(
    nowhere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "hardener.yaml"
    settings.write_text("profile: paranoid\n", encoding="utf-8")
    code, _, err = _audit(capsys, nowhere, "-A", "--config", str(settings))
    assert code == 2
    assert "invalid config" in err and "profile" in err
    assert "cannot reach" not in err


def test_an_invalid_enforce_label_is_noted(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fake: Pod Security Admission refuses an invalid label on a namespace (422), so only a
    namespace labelled before it was switched on carries one."""
    code, out, _ = _audit(capsys, config_file, "-A", "--format", "json")
    assert code == 1
    report = json.loads(out)
    (odd,) = (ns for ns in report["namespaces"] if ns["name"] == "odd")
    assert (odd["policy"]["level"], odd["policy"]["source"]) == ("restricted", "label")
    assert "invalid pod-security.kubernetes.io/enforce label 'strict'" in odd["policy"]["note"]
    (probe,) = odd["workloads"]
    assert probe["pss"]["allowed_now"] is False


def test_a_server_error_on_one_list_is_reported_and_the_rest_audited(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fake: a real server answers 500 only when it is broken (here: etcd timing out)."""
    kube.faults = {"/api/v1/pods": "500"}
    code, out, err = _audit(capsys, config_file, "-A", "--format", "json")
    assert code == 2
    report = json.loads(out)
    assert report["denied"] == [
        {
            "resource": "pods",
            "namespace": None,
            "code": 500,
            "reason": "InternalError",
            "message": "Internal error occurred: etcdserver: request timed out",
        }
    ]
    assert "shop/Deployment/web" in _workloads(report)
    assert not any(name.split("/")[1] == "Pod" for name in _workloads(report))
    assert "incomplete audit: could not list pods" in err


def test_an_answer_that_is_not_json(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fake: a real server always answers JSON; a proxy in front of it may not."""
    kube.faults = {"/apis/apps/v1/deployments": "not-json"}
    code, out, err = _audit(capsys, config_file, "-A")
    assert (code, out) == (2, "")
    assert (
        f"the API server {kube.url} (context 'test') answered with something that is not JSON "
        "(HTTP 200)"
    ) in err
    assert "Traceback" not in err


def test_a_connection_cut_before_the_answer(
    kube: FakeKubeAPI, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fake: a real server cannot be made to drop one request's connection."""
    kube.faults = {"/apis/batch/v1/jobs": "cut"}
    code, out, err = _audit(capsys, config_file, "-A")
    assert (code, out) == (2, "")
    assert f"cannot reach the API server {kube.url} (context 'test')" in err
    assert "Traceback" not in err


def test_an_answer_slower_than_the_client_waits(
    kube: FakeKubeAPI,
    config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Fake: a real server cannot be made to stall one request."""
    # The client's read timeout, cut from 60 s so that the test stays quick.
    monkeypatch.setattr("hardener.audit._cluster.TIMEOUT", (5.0, 0.2))
    kube.faults = {"/apis/apps/v1/statefulsets": "slow"}
    code, out, err = _audit(capsys, config_file, "-A")
    assert (code, out) == (2, "")
    assert f"cannot reach the API server {kube.url} (context 'test')" in err
    assert "timed out" in err
    assert "Traceback" not in err
