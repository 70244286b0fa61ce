"""The text format and unified diffs, including CRLF and BOM files."""

from __future__ import annotations

from hardener.report import render, unified_diff
from hardener.results import DocumentResult, FileResult
from tests.report.factory import BOM, POD, POD_FIXED, pod_result


def test_text_lines_and_summary() -> None:
    files = [
        pod_result(),
        FileResult(path="bad.yaml", error="not YAML", error_line=3, error_column=5),
        FileResult(path="t.yaml", skipped="a Helm template"),
        FileResult(
            path="cm.yaml",
            documents=[DocumentResult(1, "ConfigMap", None, "c", line=4, skipped="no pod spec")],
        ),
    ]
    assert render(files, "text", command="fix", version="1").splitlines() == [
        'k8s/pod.yaml:5:1: [run-as-non-root] pod "web": set runAsNonRoot: true',
        'k8s/pod.yaml:9:5: [no-privilege-escalation] container "app": set '
        "allowPrivilegeEscalation: false",
        'k8s/pod.yaml:10:7: [privileged] container "app" runs privileged (needs a manual fix)',
        "bad.yaml:3:5: error: not YAML",
        "t.yaml: skipped: a Helm template",
        "cm.yaml:4: skipped document 2 (ConfigMap): no pod spec",
        "hardener fix: 2 changes in 1 of 4 files, 1 finding (1 need a manual fix), 1 error, "
        "1 skipped",
    ]


def test_text_with_diff_and_color() -> None:
    plain = render([pod_result()], "text", command="fix", version="1", diff=True)
    assert "+++ b/k8s/pod.yaml\n" in plain
    assert "+  securityContext:\n+    runAsNonRoot: true\n" in plain
    colored = render([pod_result()], "text", command="fix", version="1", diff=True, color=True)
    assert "\x1b[32m+    runAsNonRoot: true\x1b[0m" in colored
    assert "\x1b[33m[run-as-non-root]\x1b[0m" in colored
    assert render([pod_result()], "text", command="fix", version="1").count("@@") == 0


EXPECTED_DIFF = """\
--- a/k8s/pod.yaml
+++ b/k8s/pod.yaml
@@ -3,8 +3,11 @@
 metadata:
   name: web
 spec:
+  securityContext:
+    runAsNonRoot: true
   containers:
   - name: app
     image: nginx
     securityContext:
       privileged: true
+      allowPrivilegeEscalation: false
"""


def test_unified_diff_exact() -> None:
    assert unified_diff("k8s/pod.yaml", POD, POD_FIXED) == EXPECTED_DIFF


def test_crlf_and_bom_files_diff_like_lf_files() -> None:
    original = BOM + POD.replace("\n", "\r\n")
    fixed = BOM + POD_FIXED.replace("\n", "\r\n")
    out = unified_diff("k8s/pod.yaml", original, fixed)
    assert out == EXPECTED_DIFF
    assert "\r" not in out and BOM not in out


def test_missing_final_newline_and_changed_bom_are_shown() -> None:
    out = unified_diff("a.yaml", "a: 1\nb: 2", "a: 1\nb: 2\nc: 3\n")
    assert out.splitlines()[2:] == [
        "@@ -1,2 +1,3 @@",
        " a: 1",
        "-b: 2",
        "\\ No newline at end of file",
        "+b: 2",
        "+c: 3",
    ]
    assert "# the fix removes the byte order mark" in unified_diff("a", BOM + "x\n", "x\n")
    assert unified_diff("a", "same\n", "same\n") == ""


def test_hunks_are_separate_when_far_apart() -> None:
    original = "".join(f"line {i}\n" for i in range(1, 31))
    fixed = original.replace("line 2\n", "line 2\nnew a\n").replace("line 28\n", "line 28\nnew b\n")
    hunks = [
        line for line in unified_diff("f", original, fixed).splitlines() if line.startswith("@@")
    ]
    assert hunks == ["@@ -1,5 +1,6 @@", "@@ -26,5 +27,6 @@"]
