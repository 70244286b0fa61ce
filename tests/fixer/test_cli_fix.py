"""``hardener fix`` end to end through ``hardener.cli.main``: exit codes, output, files on disk."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hardener.cli import main
from hardener.fixer import output
from hardener.report import json_schema

ROOT = Path(__file__).resolve().parents[2]

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web  # the web pod
spec:
  containers:
  - name: app
    image: nginx:1.27
"""

HARDENED = """\
apiVersion: v1
kind: Pod
metadata:
  name: ok
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
    fsGroup: 65532
    fsGroupChangePolicy: OnRootMismatch
  containers:
  - name: app
    image: nginx:1.27
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts: [{name: hardener-tmp, mountPath: /tmp}]
  volumes: [{name: hardener-tmp, emptyDir: {}}]
"""

HELM = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\n"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tree(root: Path) -> dict[str, Path]:
    paths = {
        "pod": root / "apps" / "pod.yaml",
        "ok": root / "apps" / "ok.yaml",
        "helm": root / "chart" / "templates" / "pod.yaml",
        "ci": root / "ci.yml",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    paths["pod"].write_text(POD)
    paths["ok"].write_text(HARDENED)
    paths["helm"].write_text(HELM)
    paths["ci"].write_text("on: push\njobs: {}\n")
    return paths


def test_fix_writes_in_place_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = tree(tmp_path)
    code, out, err = run(["fix", str(tmp_path)], capsys)
    assert code == 0
    # 8 changes, and 4 for the paths the offline table says nginx writes (/var/cache/nginx,
    # /var/run): an emptyDir volume and a mount each, under the read-only root.
    assert out == f"fixed {paths['pod']} (12 changes)\n"
    fixed = paths["pod"].read_text()
    assert "name: web  # the web pod\n" in fixed and "allowPrivilegeEscalation: false" in fixed
    assert "mountPath: /var/cache/nginx" in fixed and "mountPath: /var/run" in fixed
    assert paths["ok"].read_text() == HARDENED
    assert paths["helm"].read_text() == HELM
    assert err.startswith(
        "hardener fix: 4 files scanned, 1 changed, 1 unchanged, 2 skipped, 0 errors\n"
    )
    assert "Helm template" in err and str(paths["helm"]) in err
    assert "not a Kubernetes object" in err
    assert "changes by rule: drop-all-capabilities 1," in err
    # A second run finds nothing to do.
    code, out, err = run(["fix", "--check", str(tmp_path)], capsys)
    assert (code, out) == (0, "")


def test_check_exits_1_and_lists_changes_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = tree(tmp_path)
    code, out, err = run(["fix", "--check", str(tmp_path)], capsys)
    assert code == 1
    assert paths["pod"].read_text() == POD
    lines = out.splitlines()
    assert len(lines) == 12
    writable = [line for line in lines if "writable path /var/" in line or "at /var/" in line]
    assert len(writable) == 4, writable  # nginx's paths from the offline table
    assert all(line.startswith(f"{paths['pod']}:") for line in lines)
    assert f"{paths['pod']}:7:3: [no-privilege-escalation]" in out
    assert "1 would change" in err


def test_diff_prints_a_patch_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = tree(tmp_path)
    code, out, _ = run(["fix", "--diff", "--color", "never", str(paths["pod"])], capsys)
    assert code == 0
    assert out.startswith(f"--- a/{paths['pod']}\n+++ b/{paths['pod']}\n@@ ")
    assert "+    securityContext:\n" in out
    assert "\x1b[" not in out
    assert paths["pod"].read_text() == POD
    code, out, _ = run(["fix", "--diff", "--check", "--color", "always", str(paths["pod"])], capsys)
    assert code == 1
    assert "\x1b[32m+" in out


def test_json_manifest_stays_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pod.json"
    original = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "j"},
        "spec": {"containers": [{"name": "a", "image": "x"}]},
    }
    path.write_text(json.dumps(original, indent=4) + "\n")
    code, out, _ = run(["fix", str(path)], capsys)
    assert code == 0 and out == f"fixed {path} (8 changes)\n"
    fixed = json.loads(path.read_text())
    assert fixed["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert fixed["spec"]["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert path.read_text().startswith('{\n    "apiVersion": "v1",\n')


def test_exclude(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = tree(tmp_path)
    code, out, err = run(["fix", "--check", "--exclude", "apps", str(tmp_path)], capsys)
    assert (code, out) == (0, "")
    assert "2 files scanned" in err
    code, _, err = run(["fix", "--check", "--exclude", "*.yml", str(tmp_path)], capsys)
    assert code == 1 and "3 files scanned" in err
    assert paths["pod"].read_text() == POD


def test_errors_exit_2_and_other_files_are_still_fixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = tree(tmp_path)
    bad = tmp_path / "apps" / "dup.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nmetadata: {name: b}\n")
    latin = tmp_path / "apps" / "latin.yaml"
    latin.write_bytes(b"apiVersion: v1\nkind: ConfigMap\ndata: {a: caf\xe9}\n")
    code, _, err = run(["fix", str(tmp_path), str(tmp_path / "missing.yaml")], capsys)
    assert code == 2
    assert f"{bad}:4:1: error: duplicate key 'metadata'" in err
    assert f"{latin}:3:14: error: not UTF-8 text" in err
    assert f"{tmp_path / 'missing.yaml'}: error: no such file or directory" in err
    assert "3 errors" in err
    assert "allowPrivilegeEscalation" in paths["pod"].read_text()
    assert bad.read_text().endswith("metadata: {name: b}\n")


def test_errors_win_over_check_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree(tmp_path)
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: [Pod\n")
    code, _, _ = run(["fix", "--check", str(tmp_path)], capsys)
    assert code == 2


def test_engine_rejection_is_a_file_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template: nope\n"
    path.write_text(text)
    code, _, err = run(["fix", str(path)], capsys)
    assert code == 2
    assert f"{path}:5:3: error: document 1 (Deployment d): /spec/template: must be an object" in err
    assert path.read_text() == text


def set_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_stdin_to_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_stdin(monkeypatch, POD.encode())
    code, out, err = run(["fix", "-"], capsys)
    assert code == 0
    assert out.startswith("apiVersion: v1\n") and "allowPrivilegeEscalation: false" in out
    assert yaml.safe_load(out)["spec"]["securityContext"]["fsGroup"] == 65532
    assert "1 changed" in err


def test_stdin_unchanged_and_unparsable_pass_the_text_through(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_stdin(monkeypatch, HARDENED.encode())
    code, out, _ = run(["fix", "-"], capsys)
    assert (code, out) == (0, HARDENED)
    broken = "apiVersion: v1\nkind: [Pod\n"
    set_stdin(monkeypatch, broken.encode())
    code, out, err = run(["fix", "-"], capsys)
    assert (code, out) == (2, broken)
    assert err.startswith("<stdin>:3:1: error:")


def test_stdin_check_and_diff(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_stdin(monkeypatch, POD.encode())
    code, out, _ = run(["fix", "--check", "-"], capsys)
    assert code == 1 and out.startswith("<stdin>:")
    set_stdin(monkeypatch, POD.encode())
    code, out, _ = run(["fix", "--diff", "--color", "never", "-"], capsys)
    assert code == 0 and out.startswith("--- a/<stdin>\n")


def test_stdin_with_json_needs_check_or_diff(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_stdin(monkeypatch, POD.encode())
    code, out, err = run(["fix", "--format", "json", "-"], capsys)
    assert (code, out) == (2, "")
    assert "add --check or --diff" in err
    set_stdin(monkeypatch, POD.encode())
    code, out, _ = run(["fix", "--format", "json", "--check", "-"], capsys)
    assert code == 1
    assert json.loads(out)["files"][0]["path"] == "<stdin>"


def check_contract(report: dict[str, Any]) -> None:
    """The minimal shape tools rely on (issue: add fields freely, never rename these)."""
    assert isinstance(report["version"], str)
    for file in report["files"]:
        assert isinstance(file["path"], str)
        assert file["error"] is None or isinstance(file["error"], str)
        assert isinstance(file["changed"], bool)
        for document in file["documents"]:
            assert isinstance(document["index"], int)
            assert isinstance(document["kind"], str)
            for key in ("namespace", "name"):
                assert document[key] is None or isinstance(document[key], str)
            for change in document["changes"]:
                assert {type(change[k]) for k in ("rule", "pointer", "message")} == {str}
                assert isinstance(change["line"], int) and change["line"] >= 1
                assert isinstance(change["column"], int) and change["column"] >= 1
            for finding in document["findings"]:
                assert isinstance(finding["check"], str)
                assert finding["level"] is None or isinstance(finding["level"], str)
                assert finding["container"] is None or isinstance(finding["container"], str)
                assert isinstance(finding["line"], int) and isinstance(finding["message"], str)
                assert isinstance(finding["fixable"], bool)
    schema = json_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(report)


def test_json_output_follows_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = tree(tmp_path)
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: [Pod\n")
    host = tmp_path / "host.yaml"
    host.write_text(POD.replace("spec:\n", "spec:\n  hostNetwork: true\n"))
    code, out, err = run(["fix", "--check", "--format", "json", str(tmp_path)], capsys)
    assert code == 2
    report = json.loads(out)
    check_contract(report)
    by_path = {f["path"]: f for f in report["files"]}
    pod = by_path[str(paths["pod"])]
    assert pod["changed"] is True and pod["error"] is None
    lines = {(c["rule"], c["line"], c["column"]) for c in pod["documents"][0]["changes"]}
    assert ("no-privilege-escalation", 7, 3) in lines  # the container's "- name:" line
    assert ("fs-group", 5, 1) in lines  # the pod's "spec:" line
    bad = by_path[str(tmp_path / "bad.yaml")]
    assert (bad["error_line"], bad["error_column"]) == (3, 1)
    assert by_path[str(paths["helm"])]["skipped"].startswith("Helm template")
    assert by_path[str(paths["ok"])]["changed"] is False
    # What the fix cannot change is reported with the PSA check name, at its line.
    findings = by_path[str(host)]["documents"][0]["findings"]
    [finding] = [f for f in findings if f["level"] == "baseline"]
    assert (finding["check"], finding["line"], finding["fixable"]) == ("hostNamespaces", 6, False)
    # Offline, the table says nginx runs as root: runAsNonRoot is left out, with the reason,
    # at the line that names the image.
    [image] = [f for f in findings if f["level"] is None]
    assert (image["check"], image["line"]) == ("run-as-non-root", 9)
    assert "image nginx:1.27 runs as root; set runAsUser" in image["message"]
    # ... and the report says where the facts came from.
    images = report["images"]
    assert (images["lookup"], images["offline_reason"]) == ("off", "HARDENER_IMAGES_OFFLINE=1")
    assert images["by_source"] == {"registry": 0, "cache": 0, "table": 1, "unknown": 0}
    [nginx] = images["images"]
    assert (nginx["image"], nginx["source"], nginx["user"]) == ("nginx:1.27", "table", "")
    assert nginx["writable_paths"] == ["/var/cache/nginx", "/var/run"]
    # ... and the PSS finding it leaves is not one that hardener fix sets.
    [left] = [f for f in findings if f["check"] == "runAsNonRoot"]
    assert left["fixable"] is False
    assert err.startswith("hardener fix:")


def test_jobs_give_the_same_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for index in range(10):
        (tmp_path / f"p{index}.yaml").write_text(POD if index % 2 else HARDENED)
    (tmp_path / "bad.yaml").write_text("a: [\n")
    serial = run(["fix", "--check", "--format", "json", str(tmp_path)], capsys)
    parallel = run(["fix", "--check", "--format", "json", "-j", "2", str(tmp_path)], capsys)
    assert serial == parallel
    serial = run(["fix", "--diff", "--color", "never", str(tmp_path)], capsys)
    parallel = run(["fix", "--diff", "--color", "never", "-j", "2", str(tmp_path)], capsys)
    assert serial == parallel
    code = main(["fix", "-j", "2", str(tmp_path)])
    capsys.readouterr()
    assert code == 2  # bad.yaml
    assert all("allowPrivilegeEscalation" in p.read_text() for p in tmp_path.glob("p*.yaml"))


def test_profile_and_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    code, out, _ = run(["fix", "--check", "--profile", "baseline", str(path)], capsys)
    baseline_rules = {line.split("[")[1].split("]")[0] for line in out.splitlines()}
    code, out, _ = run(["fix", "--check", str(path)], capsys)
    restricted_rules = {line.split("[")[1].split("]")[0] for line in out.splitlines()}
    assert baseline_rules < restricted_rules
    config = tmp_path / "hardener.yaml"
    config.write_text("rules:\n  read-only-root-filesystem: {enabled: false}\n")
    code, out, _ = run(["fix", "--check", "--config", str(config), str(path)], capsys)
    assert code == 1 and "read-only-root-filesystem" not in out
    config.write_text("rules:\n  no-such-rule: {}\n")
    code, out, err = run(["fix", "--config", str(config), str(path)], capsys)
    assert code == 2 and "invalid config" in err and "no-such-rule" in err
    assert path.read_text() == POD


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_with_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in range(output.PROGRESS_MIN_FILES):
        (tmp_path / f"p{index:02}.yaml").write_text(HARDENED)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["fix", "--check", str(tmp_path)]) == 0
    shown = terminal.getvalue()
    assert f"] {output.PROGRESS_MIN_FILES}/{output.PROGRESS_MIN_FILES} files" in shown
    # The summary closes the output (followed only by the images and user namespaces notes).
    assert any(line.rstrip().endswith("0 errors") for line in shown.splitlines()[-3:])
    assert "  images: 1 image, lookups off (HARDENER_IMAGES_OFFLINE=1): 1 table" in shown
    assert "looking up images" not in shown  # no lookup took a second
    few = output.Progress(FakeTerminal(), output.PROGRESS_MIN_FILES - 1)
    assert not few.enabled
    assert not output.Progress(io.StringIO(), 1000).enabled


def test_subprocess_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    env = {**os.environ, "NO_COLOR": "1"}
    command = [sys.executable, "-c", "import sys; from hardener.cli import main; sys.exit(main())"]
    done = subprocess.run(
        [*command, "fix", "--check", str(path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1, done.stderr
    assert f"{path}:7:3: [no-privilege-escalation]" in done.stdout
    done = subprocess.run([*command, "fix", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "allowPrivilegeEscalation: false" in path.read_text()


def test_pre_commit_hooks() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"hardener-fix", "hardener-check"}
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= hook.keys()
        assert hook["language"] == "python"
        assert hook["entry"].split()[0] == "hardener"
        assert set(hook["types_or"]) == {"yaml", "json"}
    assert by_id["hardener-fix"]["entry"].split()[1] == "fix"
    assert by_id["hardener-check"]["entry"].split()[1] == "check"


def test_pre_commit_hook_entries_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    path = tmp_path / "pod.yaml"
    # An explicit non-root user: with it, the image's own user does not matter and the fixed
    # pod passes the restricted level.
    path.write_text(POD.replace("spec:\n", "spec:\n  securityContext: {runAsUser: 1000}\n"))
    check_args = hooks["hardener-check"]["entry"].split()[1:]
    assert main([*check_args, str(path)]) == 1
    fix_args = hooks["hardener-fix"]["entry"].split()[1:]
    assert main([*fix_args, str(path)]) == 0
    assert main([*check_args, str(path)]) == 0
    capsys.readouterr()


def test_a_sub_command_imports_only_its_own_module() -> None:
    """``hardener fix`` does not pay for the webhook and the Kubernetes client at start-up."""
    code = (
        "import sys; from hardener.cli import main\n"
        "try:\n    main(['fix', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('hardener.webhook', 'kubernetes'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
