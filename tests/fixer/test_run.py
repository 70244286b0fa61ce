"""``hardener.fixer.run``: one file at a time, from text to verified, atomically written output."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.config import default_config, parse_config
from hardener.engine import plan
from hardener.fixer import files as files_module
from hardener.fixer.files import FileWriteError, collect_paths, is_excluded, read_text
from hardener.fixer.run import (
    CheckOptions,
    FixOptions,
    check_text,
    fix_file,
    fix_text,
    run_files,
    same_json,
)
from hardener.fixer.source import SourceFile

POD = """\
# The web pod.
apiVersion: v1
kind: Pod
metadata:
  name: web  # keep me
  namespace: shop
spec:
  containers:
  - name: app
    image: nginx:1.27
"""

HARDENED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
    fsGroup: 65532
    fsGroupChangePolicy: OnRootMismatch
  containers:
  - name: app
    image: nginx:1.27
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: [ALL]
    volumeMounts:
    - name: hardener-tmp
      mountPath: /tmp
  volumes:
  - name: hardener-tmp
    emptyDir: {}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
        - name: api
          image: api:1
          securityContext:
            runAsUser: 1000
"""


def load_values(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=yaml.CSafeLoader))


def expected_values(text: str) -> list[Any]:
    """What the webhook would produce: the engine's ops applied with jsonpatch."""
    import jsonpatch

    out = []
    for value in load_values(text):
        if isinstance(value, dict) and "kind" in value:
            value = jsonpatch.apply_patch(value, plan(value, default_config()).ops)
        out.append(value)
    return out


# ---------------------------------------------------------------------------------------------
# fix_text


def test_fix_text_hardens_and_keeps_comments() -> None:
    result = fix_text(POD, "pod.yaml")
    assert result.error is None and result.skipped is None
    assert result.changed and result.fixed is not None
    assert result.fixed.startswith("# The web pod.\n")
    assert "name: web  # keep me\n" in result.fixed
    assert load_values(result.fixed) == expected_values(POD)
    [document] = result.documents
    assert (document.kind, document.namespace, document.name) == ("Pod", "shop", "web")
    rules = {c.rule for c in document.changes}
    assert {"drop-all-capabilities", "no-privilege-escalation"} <= rules
    # nginx's user is not known here: images.unknown: keep leaves runAsNonRoot out, and says so.
    assert "run-as-non-root" not in rules
    [note] = [f for f in document.findings if f.rule == "run-as-non-root"]
    assert "the user of image nginx:1.27 is not known" in note.message
    assert note.line == 10  # the image line


ASSUME_NONROOT = parse_config({"images": {"unknown": "assume-nonroot"}})


def test_change_lines_point_at_the_container_or_the_key_they_complete() -> None:
    result = fix_text(DEPLOYMENT, "deploy.yaml")
    [document] = result.documents
    by_rule = {c.rule: c for c in document.changes}
    # The container has a securityContext: container-level changes complete it (line 11).
    ape = by_rule["no-privilege-escalation"]
    assert ape.pointer.startswith("/spec/template/spec/containers/0/securityContext")
    assert (ape.line, ape.column) == (11, 11)
    # The pod spec has no securityContext: pod-level changes sit on the "spec:" line (7).
    seccomp = by_rule["seccomp-runtime-default"]
    assert seccomp.line == 7


def test_findings_about_what_remains_are_optional() -> None:
    text = POD.replace("spec:\n", "spec:\n  hostPID: true\n")
    full = fix_text(text, "pod.yaml", FixOptions(config=ASSUME_NONROOT))
    lean = fix_text(text, "pod.yaml", FixOptions(config=ASSUME_NONROOT, evaluate=False))
    assert full.fixed == lean.fixed is not None
    assert [f.check_or_rule for f in full.documents[0].findings] == ["hostNamespaces"]
    assert full.documents[0].findings[0].line == 8  # the hostPID line
    assert lean.documents[0].findings == []


def test_hardened_file_is_unchanged_and_has_no_changes() -> None:
    result = fix_text(HARDENED_POD, "ok.yaml")
    assert result.error is None
    assert not result.changed and result.fixed is None
    assert [d.changes for d in result.documents] == [[]]


def test_fast_and_slow_paths_agree() -> None:
    texts = [POD, HARDENED_POD, DEPLOYMENT, POD + "---\n" + HARDENED_POD]
    for text in texts:
        fast = fix_text(text, "x.yaml", FixOptions(fast_path=True))
        slow = fix_text(text, "x.yaml", FixOptions(fast_path=False))
        assert fast.fixed == slow.fixed
        assert fast.to_json() == slow.to_json()


def test_multi_document_file_with_non_kubernetes_document() -> None:
    text = "# values\nreplicas: 3\n---\n" + POD
    result = fix_text(text, "mixed.yaml")
    assert result.error is None and result.skipped is None
    assert result.changed
    skipped, pod = result.documents
    assert skipped.skipped == "not a Kubernetes object (no apiVersion and kind)"
    assert skipped.changes == [] and pod.changes
    assert result.fixed is not None and result.fixed.startswith("# values\nreplicas: 3\n---\n")


def test_non_kubernetes_file_is_skipped() -> None:
    result = fix_text("jobs:\n  build:\n    runs-on: ubuntu-latest\n", "ci.yml")
    assert result.skipped == "not a Kubernetes object (no apiVersion and kind)"
    assert result.fixed is None and result.error is None


def test_helm_template_is_skipped_before_parsing() -> None:
    text = POD.replace("nginx:1.27", "{{ .Values.image }}")
    result = fix_text(text, "templates/pod.yaml")
    assert result.skipped is not None and "Helm" in result.skipped
    assert result.fixed is None and result.error is None and result.documents == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n"
            "    spec:\n      containers:\n      - name: app\n        resources: {}\n",
            'container "app" at /spec/template/spec/containers/0 has no image',
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n"
            "    spec:\n      securityContext: {runAsNonRoot: true}\n",
            "the pod spec at /spec/template/spec has no containers",
        ),
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: a}\nspec:\n  jobTemplate:\n"
            "    spec:\n      backoffLimit: 2\n",
            "the pod spec at /spec/jobTemplate/spec/template/spec has no containers",
        ),
    ],
)
def test_kustomize_patches_are_skipped(text: str, fragment: str) -> None:
    result = fix_text(text, "patch.yaml")
    assert result.error is None and result.fixed is None
    assert result.skipped is not None
    assert result.skipped.startswith("partial object, e.g. a Kustomize patch")
    assert fragment in result.skipped


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("apiVersion: v1\nkind: Pod\nkind: Pod\n", 3, 1, "duplicate key 'kind'"),
        ("apiVersion: v1\nkind: Pod\nspec:\n\tcontainers: []\n", 4, 1, "tab"),
        ("apiVersion: v1\nkind: [Pod\n", 3, 1, ""),
    ],
)
def test_unparsable_files_are_errors_with_a_place(
    text: str, line: int, column: int, fragment: str, fast: bool
) -> None:
    result = fix_text(text, "bad.yaml", FixOptions(fast_path=fast))
    assert result.error is not None and fragment in result.error
    assert (result.error_line, result.error_column) == (line, column)
    assert result.fixed is None


def test_engine_rejection_names_the_document_and_field() -> None:
    broken = "apiVersion: v1\nkind: Pod\nmetadata: {name: broken}\nspec:\n  containers: nope\n"
    text = POD + "---\n" + broken
    result = fix_text(text, "two.yaml")
    assert result.error is not None
    assert "document 2 (Pod broken)" in result.error
    assert "/spec/containers" in result.error
    assert result.error_line == 16
    assert result.fixed is None


def test_stdin_name() -> None:
    assert fix_text(POD, "-").path == "<stdin>"


def test_same_json_is_strict_about_types() -> None:
    assert same_json({"a": [1, "x", None]}, {"a": [1, "x", None]})
    assert not same_json(1, True)
    assert not same_json(1, 1.0)
    assert not same_json({"a": 1}, {"a": 1, "b": 2})
    assert same_json(float("nan"), float("nan"))


# ---------------------------------------------------------------------------------------------
# fix_file: writes


def test_fix_file_writes_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    path.chmod(0o640)
    result = fix_file(str(path))
    assert result.changed and result.error is None
    assert path.read_text() == result.fixed
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["pod.yaml"]  # no temp file left behind


def test_unchanged_file_keeps_bytes_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    data = HARDENED_POD.replace("\n", "\r\n").encode()
    path.write_bytes(data)
    past = 1_600_000_000_000_000_000
    os.utime(path, ns=(past, past))
    inode = path.stat().st_ino
    result = fix_file(str(path))
    assert not result.changed and result.error is None
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == past
    assert path.stat().st_ino == inode


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    result = fix_file(str(path), FixOptions(write=False))
    assert result.changed
    assert path.read_text() == POD


def test_failed_verification_leaves_the_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    before = path.stat().st_mtime_ns
    real_apply = SourceFile.apply

    def corrupting_apply(self: SourceFile, ops: Any) -> str:
        # An editor bug: a value changes meaning (a string becomes a number).
        return real_apply(self, ops).replace("name: web", "name: 0x10")

    monkeypatch.setattr(SourceFile, "apply", corrupting_apply)
    result = fix_file(str(path))
    assert result.error is not None
    assert "does not read back" in result.error and "left unchanged" in result.error
    assert result.fixed is None and not result.changed
    assert path.read_text() == POD
    assert path.stat().st_mtime_ns == before


def test_failed_rename_leaves_the_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module.os, "replace", failing_replace)
    result = fix_file(str(path))
    assert result.error is not None and "No space left on device" in result.error
    assert path.read_text() == POD
    assert [p.name for p in tmp_path.iterdir()] == ["pod.yaml"]


def test_file_changed_while_processing_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    _, snapshot = read_text(str(path))
    path.write_text(POD + "# edited meanwhile\n")
    with pytest.raises(FileWriteError, match="changed while"):
        files_module.write_atomic(str(path), "x: 1\n", snapshot)
    assert path.read_text().endswith("# edited meanwhile\n")


def test_symlink_target_is_rewritten_link_kept(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text(POD)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    refused = fix_file(str(link))
    assert refused.error is not None and "--follow-symlinks" in refused.error
    assert target.read_text() == POD
    result = fix_file(str(link), FixOptions(follow_symlinks=True))
    assert result.changed
    assert link.is_symlink()
    assert target.read_text() == result.fixed


def test_bom_and_crlf_survive(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_bytes(("\ufeff" + POD.replace("\n", "\r\n")).encode())
    result = fix_file(str(path))
    assert result.changed and result.error is None
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf# The web pod.\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert load_values(data.decode("utf-8-sig")) == expected_values(POD)


def test_not_utf8_is_an_error_with_a_place(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: caf\xe9\n")
    result = fix_file(str(path))
    assert result.error is not None and "not UTF-8" in result.error
    assert (result.error_line, result.error_column) == (4, 12)


def test_directory_is_an_error(tmp_path: Path) -> None:
    result = fix_file(str(tmp_path))
    assert result.error == "is a directory"


def test_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    assert fix_file(str(path)).error == "not a regular file"


def test_unreadable_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(POD)
    real_open = os.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    # The suite may run as root, which reads any file: simulate what the kernel says.
    monkeypatch.setattr(files_module.os, "open", guarded_open)
    result = fix_file(str(path))
    assert result.error is not None and "permission denied" in result.error


# ---------------------------------------------------------------------------------------------
# check_text


def test_check_text_places_findings_and_after_fix_clears_fixable_ones() -> None:
    ports = "    ports:\n    - hostPort: 80\n      containerPort: 80\n"
    text = POD + ports
    before = check_text(text, "pod.yaml", CheckOptions())
    [document] = before.documents
    checks = {f.check_or_rule for f in document.findings}
    assert {"runAsNonRoot", "allowPrivilegeEscalation", "hostPorts"} <= checks
    host_port = next(f for f in document.findings if f.check_or_rule == "hostPorts")
    assert (host_port.line, host_port.column) == (12, 7) and not host_port.fixable
    after = check_text(text, "pod.yaml", CheckOptions(after_fix=True))
    [fixed] = after.documents
    # nginx's user is not known: fix leaves runAsNonRoot out (images.unknown: keep).
    assert {f.check_or_rule for f in fixed.findings} == {"hostPorts", "runAsNonRoot"}
    assert fixed.changes  # what fix would change is listed too
    after = check_text(text, "pod.yaml", CheckOptions(after_fix=True, config=ASSUME_NONROOT))
    assert {f.check_or_rule for f in after.documents[0].findings} == {"hostPorts"}


def test_check_text_baseline_and_version() -> None:
    result = check_text(POD, "pod.yaml", CheckOptions(level="baseline"))
    assert [d.findings for d in result.documents] == [[]]
    old = check_text(POD, "pod.yaml", CheckOptions(level="restricted", version="v1.18"))
    checks = {f.check_or_rule for d in old.documents for f in d.findings}
    assert "seccompProfile_restricted" not in checks  # restricted seccomp starts at v1.19
    assert "runAsNonRoot" in checks


def test_check_text_reports_unparsable_text() -> None:
    result = check_text("apiVersion: v1\nkind: Pod\nkind: Pod\n", "bad.yaml")
    assert result.error is not None and "duplicate key" in result.error
    assert (result.error_line, result.error_column) == (3, 1)


# ---------------------------------------------------------------------------------------------
# Walking paths and running many files


def make_tree(root: Path) -> None:
    (root / "apps").mkdir()
    (root / "apps" / "a.yaml").write_text(POD)
    (root / "apps" / "b.yml").write_text(HARDENED_POD)
    (root / "apps" / "c.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap"}\n')
    (root / "apps" / "notes.txt").write_text("not a manifest\n")
    (root / ".git").mkdir()
    (root / ".git" / "x.yaml").write_text(POD)
    (root / "apps" / ".hidden.yaml").write_text(POD)
    (root / "vendor").mkdir()
    (root / "vendor" / "v.yaml").write_text(POD)


def test_collect_paths_walks_sorted_skips_tool_folders_and_excluded(tmp_path: Path) -> None:
    make_tree(tmp_path)
    collected = collect_paths([str(tmp_path)], exclude=["vendor"])
    rel = [os.path.relpath(p, tmp_path) for p in collected.files]
    assert rel == ["apps/.hidden.yaml", "apps/a.yaml", "apps/b.yml", "apps/c.json"]
    assert collected.missing == []
    assert collected.left_out == [
        (str(tmp_path / ".git"), "tool folder"),
        (str(tmp_path / "vendor"), "--exclude"),
    ]
    collected = collect_paths(
        [str(tmp_path / "apps" / "notes.txt"), str(tmp_path / "nope.yaml"), "-"]
    )
    assert collected.files == [str(tmp_path / "apps" / "notes.txt"), "-"]
    assert collected.missing == [(str(tmp_path / "nope.yaml"), "no such file or directory")]


def test_is_excluded_patterns() -> None:
    assert is_excluded("deploy/legacy/x.yaml", ["deploy/legacy"])
    assert is_excluded("a/b/x.generated.yaml", ["*.generated.yaml"])
    assert is_excluded("charts/app/templates/x.yaml", ["charts/**/templates"])
    assert is_excluded("./vendor/x.yaml", ["vendor"])
    assert not is_excluded("deploy/x.yaml", ["deploy/legacy", "*.json"])
    assert not is_excluded("deploy/x.yaml", [])


def test_run_files_order_is_the_same_with_processes(tmp_path: Path) -> None:
    paths = []
    for index in range(12):
        path = tmp_path / f"f{index:02}.yaml"
        path.write_text(POD if index % 3 else HARDENED_POD)
        paths.append(str(path))
    options = FixOptions(write=False)
    from hardener.fixer.run import fix_worker

    seen: list[str] = []
    serial = run_files(fix_worker(options), paths, jobs=1)
    parallel = run_files(
        fix_worker(options), paths, jobs=2, on_result=lambda r: seen.append(r.path)
    )
    assert [r.path for r in parallel] == paths == seen
    assert [r.to_json() for r in parallel] == [r.to_json() for r in serial]
    assert [r.fixed for r in parallel] == [r.fixed for r in serial]


def test_run_files_refuses_stdin() -> None:
    with pytest.raises(ValueError, match="stdin"):
        run_files(fix_file, ["-"])


NAN_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: nan
  annotations:
    ratio: .nan
spec:
  containers:
  - name: app
    image: nginx:1.27
    args: [.NaN]
"""


def test_a_nan_value_does_not_stop_the_fix() -> None:
    # same_value in the editor had no NaN case while run.same_json had one: the edited text was
    # refused ("file left alone; the file was left unchanged"). One equality serves both.
    result = fix_text(NAN_POD, "nan.yaml")
    assert result.error is None
    assert result.fixed is not None and "ratio: .nan" in result.fixed
    assert "allowPrivilegeEscalation: false" in result.fixed


def test_an_edit_error_says_once_that_the_file_was_left_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A read-back that disagrees (here forced) used to say "file left alone; the file was left
    # unchanged".
    from hardener.fixer import source

    monkeypatch.setattr(source, "load_values", lambda text: [{"apiVersion": "v1"}])
    result = fix_text(NAN_POD, "nan.yaml")
    assert result.error is not None and "does not read back" in result.error
    assert result.error.count("left unchanged") + result.error.count("left alone") == 1


TEMPLATED_VALUES = (
    """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: chat
data:
  template: |
    {% for message in messages %}
    {{ message.role }}: {{ message.content }}
    {% endfor %}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: alerts
spec:
  groups:
  - name: up
    rules:
    - alert: Down
      expr: up == 0
      annotations:
        summary: "Instance {{ $labels.instance }} is down"
---
"""
    + POD
)


def test_template_markers_inside_values_do_not_skip_the_file() -> None:
    # The Deployment next to a Jinja chat template or a PrometheusRule used to be skipped
    # with the whole file as a "Helm template".
    result = fix_text(TEMPLATED_VALUES, "app.yaml")
    assert result.skipped is None and result.error is None
    assert result.fixed is not None and "allowPrivilegeEscalation: false" in result.fixed
    assert "{{ message.role }}: {{ message.content }}" in result.fixed
    assert check_text(TEMPLATED_VALUES, "app.yaml").skipped is None


def test_the_template_skip_reason_names_the_line() -> None:
    text = POD.replace("  - name: app\n", "  {{- range .Values.containers }}\n  - name: app\n")
    result = fix_text(text, "templates/pod.yaml")
    assert result.skipped == "Helm template ({{ }}): line 9"
