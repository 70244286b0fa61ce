"""``hardener check`` end to end through ``hardener.cli.main``: lines, objects, exit codes, JSON."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hardener.cli import main
from hardener.pss import CHECKS
from hardener.report import json_schema

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
spec:
  hostNetwork: true
  containers:
  - name: app
    image: nginx:1.27
"""

DEPLOYMENT = """\
# api
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: api
        image: api:1
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_violations_are_reported_with_file_line_object_container_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    code, out, err = run(["check", "--color", "never", str(path)], capsys)
    assert code == 1
    lines = out.splitlines()
    assert f"{path}:7: Pod shop/web: [hostNamespaces] " in out
    ape = next(line for line in lines if "[allowPrivilegeEscalation]" in line)
    assert ape.startswith(f'{path}:9: Pod shop/web: [allowPrivilegeEscalation] container "app"')
    assert ape.endswith("(hardener fix sets this)")
    assert "hardener check (restricted, latest): 1 file, 1 object checked: " in err
    assert "violations by check: " in err


def test_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(DEPLOYMENT)
    code, out, err = run(["check", str(path)], capsys)
    assert (code, out) == (0, "")
    assert "0 violations" in err


def test_level_and_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(DEPLOYMENT.replace("        seccompProfile: {type: RuntimeDefault}\n", ""))
    assert run(["check", str(path)], capsys)[0] == 1
    assert run(["check", "--version", "v1.18", str(path)], capsys)[0] == 0
    assert run(["check", "--level", "baseline", str(path)], capsys)[0] == 0
    code, _, err = run(["check", "--version", "2.0", str(path)], capsys)
    assert code == 2 and "invalid policy version" in err


def test_level_and_version_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD.replace("  hostNetwork: true\n", ""))
    config = tmp_path / "hardener.yaml"
    config.write_text("level: baseline\n")
    assert run(["check", "--config", str(config), str(path)], capsys)[0] == 0
    assert (
        run(["check", "--config", str(config), "--level", "restricted", str(path)], capsys)[0] == 1
    )


def test_after_fix_leaves_only_what_fix_does_not_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    code, out, err = run(["check", "--after-fix", "--color", "never", str(path)], capsys)
    assert code == 1
    # nginx runs as root (the offline table): fix leaves runAsNonRoot out (images.root: keep
    # outside a user namespace).
    assert [line.split("[")[1].split("]")[0] for line in out.splitlines()] == [
        "hostNamespaces",
        "runAsNonRoot",
    ]
    assert "after fix" in err
    assert path.read_text() == POD  # nothing written
    path.write_text(POD.replace("  hostNetwork: true\n", ""))
    config = tmp_path / "hardener.yaml"
    config.write_text("images: {unknown: assume-nonroot}\n")
    # Offline, the table knows that nginx runs as root: assume-nonroot is for unknown images
    # only, so runAsNonRoot stays left out and violated.
    code, out, _ = run(["check", "--after-fix", "--config", str(config), str(path)], capsys)
    assert code == 1 and "[runAsNonRoot]" in out
    # An image neither the cache nor the table knows is assumed non-root.
    path.write_text(
        POD.replace("  hostNetwork: true\n", "").replace("nginx:1.27", "registry.example/app:1")
    )
    assert run(["check", "--after-fix", "--config", str(config), str(path)], capsys)[0] == 0


def test_unparsable_file_is_reported_and_the_rest_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-bad.yaml").write_text("apiVersion: v1\nkind: Pod\n\tspec: {}\n")
    (tmp_path / "b-pod.yaml").write_text(POD)
    (tmp_path / "c-latin.yaml").write_bytes(b"kind: Pod\nname: caf\xe9\n")
    code, out, err = run(["check", str(tmp_path)], capsys)
    assert code == 2
    assert f"{tmp_path / 'a-bad.yaml'}:3:1: error: tab in indentation" in err
    assert f"{tmp_path / 'c-latin.yaml'}:2:10: error: not UTF-8 text" in err
    assert f"{tmp_path / 'b-pod.yaml'}:7: Pod shop/web: [hostNamespaces]" in out


def test_skips_helm_kustomize_and_other_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A marker where structure is (a quoted marker would be a value, not a template).
    (tmp_path / "helm.yaml").write_text("kind: Pod\nmetadata:\n  name: {{ .Values.name }}\n")
    (tmp_path / "values.yaml").write_text("image: nginx\n")
    (tmp_path / "patch.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: api\n        resources: {}\n"
    )
    code, out, err = run(["check", str(tmp_path)], capsys)
    assert (code, out) == (0, "")
    assert "3 skipped" in err
    assert "Helm template" in err and "Kustomize patch" in err and "not a Kubernetes object" in err


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(POD.encode())))
    code, out, _ = run(["check", "--color", "never", "-"], capsys)
    assert code == 1 and out.startswith("<stdin>:")


def check_contract(report: dict[str, Any]) -> None:
    assert isinstance(report["version"], str)
    for file in report["files"]:
        assert isinstance(file["path"], str) and isinstance(file["changed"], bool)
        assert file["error"] is None or isinstance(file["error"], str)
        for document in file["documents"]:
            assert isinstance(document["index"], int) and isinstance(document["kind"], str)
            for finding in document["findings"]:
                assert isinstance(finding["check"], str) and isinstance(finding["level"], str)
                assert finding["container"] is None or isinstance(finding["container"], str)
                assert isinstance(finding["line"], int) and isinstance(finding["message"], str)
                assert isinstance(finding["fixable"], bool)
    schema = json_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(report)


def test_json_uses_the_psa_check_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pod.yaml").write_text(POD + "---\n" + DEPLOYMENT)
    (tmp_path / "bad.yaml").write_text("a: [\n")
    code, out, _ = run(["check", "--format", "json", str(tmp_path)], capsys)
    assert code == 2
    report = json.loads(out)
    check_contract(report)
    assert report["command"] == "check"
    bad, pods = report["files"]
    assert bad["error"] and bad["error_line"] == 2
    pod, deployment = pods["documents"]
    assert (pod["kind"], pod["namespace"], pod["name"]) == ("Pod", "shop", "web")
    assert deployment["findings"] == []
    names = {check.id for check in CHECKS}
    found = {f["check"] for f in pod["findings"]}
    assert found <= names
    assert {"hostNamespaces", "allowPrivilegeEscalation", "runAsNonRoot"} <= found
    host = next(f for f in pod["findings"] if f["check"] == "hostNamespaces")
    assert (host["line"], host["fixable"], host["level"]) == (7, False, "baseline")


def test_jobs_give_the_same_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for index in range(8):
        (tmp_path / f"p{index}.yaml").write_text(POD if index % 2 else DEPLOYMENT)
    assert run(["check", str(tmp_path)], capsys) == run(["check", "-j", "2", str(tmp_path)], capsys)
