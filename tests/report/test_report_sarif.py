"""SARIF 2.1.0: schema-valid, exact locations, and fixes that reproduce the fixed file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardener.pss import CHECKS
from hardener.report import render
from hardener.report._sarif import artifact_uri, sarif_log
from hardener.results import DocumentResult, FileResult
from hardener.rules import RULES
from tests.report.factory import (
    BOM,
    apply_by_lines,
    apply_by_offset,
    change,
    finding,
    pod_result,
    replacements_for,
    sarif_validator,
)


def _log(files: list[FileResult]) -> dict[str, Any]:
    text = render(files, "sarif", command="fix", version="1.2.3")
    log: dict[str, Any] = json.loads(text)
    errors = sorted(sarif_validator().iter_errors(log), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return log


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_fix_reproduces_the_fixed_file_byte_for_byte(eol: str, bom: bool) -> None:
    file = pod_result(eol=eol, bom=bom)
    log = _log([file])
    replacements = replacements_for(log, "k8s/pod.yaml")
    assert file.fixed is not None and file.original is not None
    assert apply_by_offset(file.original, replacements) == file.fixed
    assert apply_by_lines(file.original, replacements) == file.fixed
    assert apply_by_offset(file.original, replacements).encode() == file.fixed.encode()


def test_replacement_regions_exact_for_crlf_and_bom() -> None:
    file = pod_result(eol="\r\n", bom=True)
    replacements = replacements_for(_log([file]), "k8s/pod.yaml")
    # Line 6 ("  containers:") gets the pod securityContext before it; after line 10 the
    # container's securityContext gains a key. Offsets count code points after the BOM,
    # with CRLF terminators counted as two characters.
    line_6 = len("apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: web\r\nspec:\r\n")
    assert replacements == [
        {
            "deletedRegion": {
                "startLine": 6,
                "startColumn": 1,
                "endLine": 6,
                "endColumn": 1,
                "charOffset": line_6,
                "charLength": 0,
            },
            "insertedContent": {"text": "  securityContext:\r\n    runAsNonRoot: true\r\n"},
        },
        {
            "deletedRegion": {
                "startLine": 11,
                "startColumn": 1,
                "endLine": 11,
                "endColumn": 1,
                "charOffset": len(file.original or "") - 1,
                "charLength": 0,
            },
            "insertedContent": {"text": "      allowPrivilegeEscalation: false\r\n"},
        },
    ]


def test_each_change_carries_the_edits_after_its_line() -> None:
    results = _log([pod_result()])["runs"][0]["results"]
    first = results[0]["fixes"][0]["artifactChanges"][0]["replacements"]
    second = results[1]["fixes"][0]["artifactChanges"][0]["replacements"]
    assert [r["insertedContent"]["text"] for r in first] == [
        "  securityContext:\n    runAsNonRoot: true\n"
    ]
    assert [r["insertedContent"]["text"] for r in second] == [
        "      allowPrivilegeEscalation: false\n"
    ]
    assert results[0]["fixes"][0]["description"]["text"] == (
        "Apply run-as-non-root to k8s/pod.yaml at line 5"
    )


def test_changes_on_one_line_or_without_edits_share_a_fix() -> None:
    file = pod_result()
    doc = file.documents[0]
    doc.changes.insert(1, change("fs-group", 5, 1, "/spec/securityContext/fsGroup"))
    doc.changes.append(change("drop-all-capabilities", 30, 1))  # no edit after line 30
    results = _log([file])["runs"][0]["results"]
    fixes = [r["fixes"][0] for r in results if r["properties"]["kind"] == "change"]
    assert fixes[0] == fixes[1]
    assert fixes[0]["description"]["text"] == (
        "Apply fs-group, run-as-non-root to k8s/pod.yaml at line 5"
    )
    assert fixes[3] == fixes[2] != fixes[0]
    assert apply_by_offset(file.original or "", replacements_for(_log([file]), "k8s/pod.yaml")) == (
        file.fixed
    )


def test_results_point_at_the_recorded_lines_and_columns() -> None:
    log = _log([pod_result(eol="\r\n", bom=True)])
    results = log["runs"][0]["results"]
    got = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["region"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        )
        for r in results
    ]
    assert got == [
        ("run-as-non-root", "warning", {"startLine": 5, "startColumn": 1}, "k8s/pod.yaml"),
        ("no-privilege-escalation", "warning", {"startLine": 9, "startColumn": 5}, "k8s/pod.yaml"),
        ("pss/privileged", "error", {"startLine": 10, "startColumn": 7}, "k8s/pod.yaml"),
    ]
    assert [r["message"]["text"] for r in results] == [
        'pod "web": set runAsNonRoot: true',
        'container "app": set allowPrivilegeEscalation: false',
        'container "app" runs privileged',
    ]
    assert "fixes" in results[0] and "fixes" in results[1]
    assert "fixes" not in results[2]
    assert results[1]["properties"]["pointer"] == (
        "/spec/containers/0/securityContext/allowPrivilegeEscalation"
    )


def test_one_rule_per_hardener_rule_and_pss_check_with_help() -> None:
    log = _log([pod_result()])
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "hardener" and driver["version"] == "1.2.3"
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids))
    for rule in RULES:
        assert rule.id in ids
    for check in CHECKS:
        assert f"pss/{check.id}" in ids
    for descriptor in driver["rules"]:
        assert descriptor["help"]["text"].strip()
        assert descriptor["shortDescription"]["text"].strip()
    by_id = {d["id"]: d for d in driver["rules"]}
    titles = {rule.id: rule.title for rule in RULES}
    assert by_id["run-as-non-root"]["shortDescription"]["text"] == titles["run-as-non-root"]
    for result in log["runs"][0]["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_unknown_ids_still_get_a_descriptor() -> None:
    file = FileResult(
        path="a.yaml",
        documents=[
            DocumentResult(
                index=0,
                kind="Pod",
                namespace=None,
                name="a",
                changes=[change("future-rule", 3, 1)],
                findings=[finding("futureCheck", 4, 2, fixable=True)],
            )
        ],
    )
    log = _log([file])
    ids = [d["id"] for d in log["runs"][0]["tool"]["driver"]["rules"]]
    assert "future-rule" in ids and "pss/futureCheck" in ids
    levels = [r["level"] for r in log["runs"][0]["results"]]
    assert levels == ["warning", "warning"]


def test_multi_document_files_keep_each_documents_lines() -> None:
    original = "a: 1\n---\nkind: Pod\nspec: {}\n---\nkind: Pod\nspec: {}\n"
    fixed = "a: 1\n---\nkind: Pod\nspec: {x: 1}\n---\nkind: Pod\nspec: {x: 1}\n"
    docs = [
        DocumentResult(index=i, kind="Pod", namespace=None, name=None, line=line)
        for i, line in ((1, 3), (2, 6))
    ]
    docs[0].changes.append(change("fs-group", 4, 7))
    docs[1].changes.append(change("fs-group", 7, 7))
    file = FileResult(path="multi.yaml", original=original, fixed=fixed, documents=docs)
    log = _log([file])
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in log["runs"][0]["results"]]
    assert regions == [{"startLine": 4, "startColumn": 7}, {"startLine": 7, "startColumn": 7}]
    assert [r["properties"]["document"] for r in log["runs"][0]["results"]] == [1, 2]
    replacements = replacements_for(log, "multi.yaml")
    assert [r["deletedRegion"]["startLine"] for r in replacements] == [4, 7]
    assert apply_by_lines(original, replacements) == fixed


def test_fix_at_end_of_file_without_final_newline() -> None:
    original = "spec:\r\n  containers:\r\n  - name: app"
    fixed = "spec:\r\n  containers:\r\n  - name: app\r\n    securityContext: {}\r\n"
    file = FileResult(
        path="x.yaml",
        original=original,
        fixed=fixed,
        documents=[
            DocumentResult(0, "Pod", None, None, changes=[change("fs-group", 3, 3)]),
        ],
    )
    replacements = replacements_for(_log([file]), "x.yaml")
    assert replacements[0]["deletedRegion"] == {
        "startLine": 3,
        "startColumn": 1,
        "endLine": 3,
        "endColumn": 14,
        "charOffset": 22,  # len("spec:\r\n  containers:\r\n")
        "charLength": 13,
    }
    assert apply_by_offset(original, replacements) == fixed
    assert apply_by_lines(original, replacements) == fixed


def test_a_fix_that_changes_the_byte_order_mark_is_not_offered() -> None:
    file = pod_result(bom=False)
    file.fixed = BOM + (file.fixed or "")
    log = _log([file])
    for result in log["runs"][0]["results"]:
        assert "fixes" not in result
    assert log["runs"][0]["results"][0]["properties"]["noFix"]


def test_errors_and_skipped_files_become_notifications() -> None:
    files = [
        FileResult(
            path="broken.yaml", error="mapping values are not allowed", error_line=3, error_column=9
        ),
        FileResult(path="chart/templates/d.yaml", skipped="a Helm template"),
    ]
    log = _log(files)
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["error", "note"]
    assert notes[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3,
        "startColumn": 9,
    }
    assert "a Helm template" in notes[1]["message"]["text"]
    assert log["runs"][0]["results"] == []


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("k8s/app.yaml", "k8s/app.yaml"),
        ("./k8s/app.yaml", "k8s/app.yaml"),
        ("deploy/my app#1.yaml", "deploy/my%20app%231.yaml"),
        ("/srv/k8s/app.yaml", "file:///srv/k8s/app.yaml"),
    ],
)
def test_artifact_uris(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri


_lines = st.lists(
    st.tuples(st.text(alphabet="ab é:-\r\t", max_size=6), st.sampled_from(["\n", "\r\n"])),
    max_size=8,
)


def _join(lines: list[tuple[str, str]], tail: str) -> str:
    return "".join(a + b for a, b in lines) + tail


@settings(max_examples=150, deadline=None)
@given(
    old=_lines,
    new=_lines,
    old_tail=st.text(alphabet="ab\r", max_size=3),
    new_tail=st.text(alphabet="ab\r", max_size=3),
    bom=st.booleans(),
    anchors=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=4),
)
def test_replacements_reproduce_any_edit(
    old: list[tuple[str, str]],
    new: list[tuple[str, str]],
    old_tail: str,
    new_tail: str,
    bom: bool,
    anchors: list[int],
) -> None:
    prefix = BOM if bom else ""
    original = prefix + _join(old, old_tail)
    fixed = prefix + _join(new[:2] + old[1:] + new[2:], new_tail)
    file = FileResult(
        path="p.yaml",
        original=original,
        fixed=fixed,
        documents=[
            DocumentResult(
                0, "Pod", None, None, changes=[change("fs-group", line, 1) for line in anchors]
            )
        ],
    )
    log = sarif_log([file], command="fix", version="1")
    replacements = replacements_for(log, "p.yaml", require_fixes=original != fixed)
    if original == fixed:
        assert replacements == []
        return
    assert apply_by_offset(original, replacements) == fixed
    assert apply_by_lines(original, replacements) == fixed
