"""The pull-request comment: table, collapsible diffs, and the size limit."""

from __future__ import annotations

import re

from hardener.report import MARKDOWN_LIMIT, render
from hardener.report._markdown import render_markdown
from hardener.results import DocumentResult, FileResult
from tests.report.factory import change, pod_result


def test_table_findings_and_diffs() -> None:
    files = [
        pod_result(),
        FileResult(path="a|b.yaml", error="not YAML"),
        FileResult(path="clean.yaml", original="kind: Pod\n"),
    ]
    out = render(files, "markdown", command="fix", version="1")
    assert out.startswith("## hardener fix\n\nhardener fix: 2 changes in 1 of 3 files")
    assert (
        "| <code>k8s/pod.yaml</code> | 2 | 1 | <code>run-as-non-root</code>, "
        "<code>no-privilege-escalation</code>, <code>privileged</code> |"
    ) in out
    assert "| <code>a&#124;b.yaml</code> | 0 | 0 | error: not YAML |" in out
    assert "clean.yaml" not in out
    assert "- <code>k8s/pod.yaml:10</code> <code>privileged</code> (baseline): " in out
    assert out.count("<details>") == 1 and out.count("</details>") == 1
    assert "<summary><code>k8s/pod.yaml</code>: 2 changes</summary>" in out
    assert "```diff\n--- a/k8s/pod.yaml\n" in out
    assert "Left out" not in out


def test_diff_fence_outgrows_backticks_in_the_file() -> None:
    file = FileResult(
        path="x.yaml",
        original="a: 1\n",
        fixed="a: 1\n# ```` code\n",
        documents=[DocumentResult(0, "Pod", None, None, changes=[change("fs-group", 1, 1)])],
    )
    out = render([file], "markdown", command="fix", version="1")
    assert "`````diff\n" in out and "\n`````\n" in out


def _big(i: int) -> FileResult:
    original = "".join(f"key{n}: value\n" for n in range(200))
    fixed = "".join(f"key{n}: changed value {i}\n" for n in range(200))
    doc = DocumentResult(0, "Deployment", None, f"d{i}", changes=[change("fs-group", 1, 1)])
    return FileResult(path=f"apps/app-{i:03}.yaml", original=original, fixed=fixed, documents=[doc])


def test_size_limit_says_what_it_left_out() -> None:
    files = [_big(i) for i in range(120)]
    out = render(files, "markdown", command="fix", version="1")
    assert len(out.encode("utf-8")) <= MARKDOWN_LIMIT
    shown = out.count("<details>")
    assert 0 < shown < 120
    note = re.search(r"_Left out to keep this comment under 60 KB: (.*)_\n\Z", out)
    assert note is not None
    assert f"the diffs of {120 - shown} files (" in note.group(1)
    assert "<code>apps/app-119.yaml</code>" not in note.group(1)  # only the first ten named
    assert f"and {120 - shown - 10} more" in note.group(1)
    assert out.count("<details>") == out.count("</details>")


def test_size_limit_also_cuts_the_table() -> None:
    files = [_big(i) for i in range(40)]
    out = render_markdown(files, command="check", limit=4_000)
    assert len(out.encode("utf-8")) <= 4_000
    assert "rows of the table" in out and "the diffs of 40 files" in out
