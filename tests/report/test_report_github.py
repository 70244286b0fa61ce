"""GitHub workflow commands: exact lines and the runner's escaping rules."""

from __future__ import annotations

from hardener.report import render
from hardener.report._github import escape_data, escape_property
from hardener.results import DocumentResult, FileResult
from tests.report.factory import change, finding, pod_result


def test_annotations_for_changes_findings_and_errors() -> None:
    files = [
        pod_result(),
        FileResult(
            path="bad.yaml", error="mapping values are not allowed", error_line=4, error_column=12
        ),
    ]
    lines = render(files, "github", command="fix", version="1").splitlines()
    assert lines == [
        "::warning file=k8s/pod.yaml,line=5,col=1,title=hardener run-as-non-root::"
        'pod "web": set runAsNonRoot: true',
        "::warning file=k8s/pod.yaml,line=9,col=5,title=hardener no-privilege-escalation::"
        'container "app": set allowPrivilegeEscalation: false',
        "::error file=k8s/pod.yaml,line=10,col=7,title=hardener privileged [baseline]::"
        'container "app" runs privileged (needs a manual fix)',
        "::error file=bad.yaml,line=4,col=12,title=hardener%3A file error::"
        "mapping values are not allowed",
        "::notice title=hardener::hardener fix: 2 changes in 1 of 2 files, 1 finding "
        "(1 need a manual fix), 1 error",
    ]


def test_escaping_of_properties_and_messages() -> None:
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"
    doc = DocumentResult(0, "Pod", None, None)
    doc.changes.append(change("fs-group", 2, 3, message="line one\nline two: 100%"))
    doc.findings.append(finding("hostPorts", 3, 1, fixable=True, message="port 80"))
    out = render(
        [FileResult("dir,x/a:b.yaml", documents=[doc])], "github", command="check", version="1"
    )
    first, second = out.splitlines()[:2]
    assert first == (
        "::warning file=dir%2Cx/a%3Ab.yaml,line=2,col=3,title=hardener fs-group::"
        "line one%0Aline two: 100%25"
    )
    assert second.startswith("::warning file=dir%2Cx/a%3Ab.yaml,line=3,col=1,")
    assert second.endswith("::port 80")
