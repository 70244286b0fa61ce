"""What the ``html`` page says, read from its markup (the browser tests are in
``test_report_html.py``): the posture of fix and check runs, the heat map, the kubelet
findings and the escaping."""

from __future__ import annotations

import html
import re

from hardener.report import FORMATS, posture_from_files, render
from hardener.results import DocumentResult, FileResult
from tests.report.factory import finding, pod_result


def _page(files: list[FileResult], command: str = "check", after_fix: bool = False) -> str:
    return render(files, "html", command=command, version="t", after_fix=after_fix)


def test_html_is_a_format() -> None:
    assert "html" in FORMATS


def test_check_now_and_after_come_from_fixable() -> None:
    result = FileResult(
        path="k8s/a.yaml",
        original="",
        documents=[
            DocumentResult(
                0,
                "Pod",
                None,
                "a",
                findings=[
                    finding("runAsNonRoot", 1, 1, fixable=True, level="restricted"),
                    finding("privileged", 2, 1, fixable=False),
                ],
            ),
            DocumentResult(1, "Pod", None, "b"),
        ],
    )
    posture = posture_from_files([result], command="check")
    a, b = posture.workloads
    assert (a.before, a.after) == (["runAsNonRoot", "privileged"], ["privileged"])
    assert a.needs_person and not a.passes_now and not a.passes_after
    assert b.passes_now and b.passes_after and not b.needs_person
    page = _page([result])
    assert re.search(r'id="fig-workloads">2<', page)
    assert re.search(r'id="fig-pass-now">1<', page)
    assert re.search(r'id="fig-pass-after">1<', page)
    assert re.search(r'id="fig-need-person">1<', page)
    assert re.search(r'data-check="runAsNonRoot"[^>]*>1 → 0<br><small>fixed<', page)
    assert re.search(r'data-check="privileged"[^>]*>1 → 1<br><small>still violated<', page)


def test_fix_now_adds_the_checks_its_changes_answer() -> None:
    """In the fixture, run-as-non-root answers runAsNonRoot and no-privilege-escalation
    answers allowPrivilegeEscalation; privileged stays."""
    result = pod_result()
    posture = posture_from_files([result], command="fix")
    [pod] = posture.workloads
    assert sorted(pod.before) == ["allowPrivilegeEscalation", "privileged", "runAsNonRoot"]
    assert pod.after == ["privileged"]
    page = _page([result], command="fix")
    assert "<details><summary>Diff of k8s/pod.yaml</summary>" in page
    assert '<span class="add">+    runAsNonRoot: true</span>' in page


def test_diff_of_a_file_is_shown_once() -> None:
    result = pod_result()
    second = DocumentResult(1, "Pod", None, "other", changes=result.documents[0].changes)
    result.documents.append(second)
    page = _page([result], command="fix")
    assert page.count("<details>") == 1
    assert "The diff of k8s/pod.yaml is shown with its first workload." in page


def test_kubelet_findings_have_their_section() -> None:
    plain = pod_result()
    assert "Kubelet findings" not in _page([plain], command="fix")
    kubelet = finding(
        "kubelet-run-as-non-root",
        6,
        3,
        level=None,
        message='container "app": image nginx runs as root; the kubelet refuses runAsNonRoot',
    )
    plain.documents[0].findings.append(kubelet)
    page = _page([plain], command="fix")
    assert '<h2 id="kubelet">Kubelet findings</h2>' in page
    assert "<code>kubelet-run-as-non-root</code>" in page
    assert "image nginx runs as root" in page


def test_errors_and_skips_are_listed() -> None:
    files = [
        FileResult(path="bad.yaml", error="invalid YAML", error_line=3),
        FileResult(path="chart/t.yaml", skipped="Helm template ({{ }})"),
    ]
    page = _page(files)
    assert "<strong>Error:</strong> bad.yaml:3: invalid YAML" in page
    assert "Skipped: chart/t.yaml: Helm template ({{ }})" in page
    assert re.search(r'id="fig-workloads">0<', page)


def test_every_manifest_value_is_escaped() -> None:
    hostile = "</script><img src=x onerror=alert(1)>&\"'"
    result = FileResult(
        path=f"{hostile}/a.yaml",
        original="",
        skipped=hostile,
        documents=[
            DocumentResult(
                0,
                hostile,
                hostile,
                hostile,
                findings=[finding("privileged", 1, 1, container=hostile, message=hostile)],
            )
        ],
    )
    page = _page([result])
    assert "<img" not in page and "</script>" not in page
    assert html.escape(hostile) in page.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")
