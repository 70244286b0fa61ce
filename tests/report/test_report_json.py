"""The JSON report: results.to_json plus command and summary, valid against the shipped schema."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from hardener.report import FORMATS, json_schema, render
from hardener.results import DocumentResult, FileResult, to_json
from tests.report.factory import change, finding, pod_result


def _validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def _files() -> list[FileResult]:
    return [
        pod_result(),
        FileResult(path="bad.yaml", error="not YAML", error_line=2, error_column=1),
        FileResult(path="chart/t.yaml", skipped="a Helm template"),
        FileResult(
            path="cm.yaml",
            original="kind: ConfigMap\n",
            documents=[
                DocumentResult(0, "ConfigMap", "ns", "cm", skipped="no pod spec"),
            ],
        ),
    ]


def test_json_is_results_to_json_plus_command_and_summary() -> None:
    files = _files()
    report: dict[str, Any] = json.loads(render(files, "json", command="check", version="9.9"))
    base = to_json(files, "9.9")
    assert {k: report[k] for k in base} == json.loads(json.dumps(base))
    assert report["command"] == "check"
    assert report["summary"] == {
        "files": 4,
        "changed_files": 1,
        "changes": 2,
        "findings": 1,
        "unfixable_findings": 1,
        "errors": 1,
        "skipped": 1,
        "rules": {"no-privilege-escalation": 1, "run-as-non-root": 1},
        "checks": {"privileged": 1},
    }
    change_record = report["files"][0]["documents"][0]["changes"][1]
    assert (change_record["line"], change_record["column"]) == (9, 5)
    assert change_record["after"] is False


def test_json_report_validates_against_the_schema() -> None:
    report = json.loads(render(_files(), "json", command="fix", version="0.1.0"))
    _validator().validate(report)


@pytest.mark.parametrize(
    ("where", "field", "value"),
    [
        (("files", 0, "documents", 0, "changes", 0), "line", None),
        (("files", 0, "documents", 0, "changes", 0), "line", 0),
        (("files", 0, "documents", 0, "findings", 0), "fixable", "no"),
        (("files", 0, "documents", 0, "changes", 0), "pointer", "spec/x"),
        (
            (
                "files",
                0,
            ),
            "documents",
            None,
        ),
    ],
)
def test_schema_rejects_broken_reports(where: tuple[Any, ...], field: str, value: Any) -> None:
    report = json.loads(render(_files(), "json", command="fix", version="0.1.0"))
    broken = copy.deepcopy(report)
    node = broken
    for key in where:
        node = node[key]
    if value is None:
        del node[field]
    else:
        node[field] = value
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(broken)


def test_every_format_renders_and_unknown_formats_are_refused() -> None:
    files = [pod_result(), FileResult(path="e.yaml", error="boom")]
    for fmt in FORMATS:
        out = render(files, fmt, command="fix", version="0.1.0")
        assert out.endswith("\n") and "\x1b[" not in out
    with pytest.raises(ValueError, match="unknown report format 'xml'"):
        render(files, "xml", command="fix", version="0.1.0")


def test_findings_and_changes_keep_their_fields() -> None:
    doc = DocumentResult(0, "Pod", None, "p")
    doc.changes.append(change("fs-group", 3, 2, before=None, after=65532, container=None))
    doc.findings.append(finding("hostPorts", 7, 9, fixable=True, rule=None, level="baseline"))
    report = json.loads(
        render([FileResult("a.yaml", documents=[doc])], "json", command="check", version="1")
    )
    _validator().validate(report)
    f = report["files"][0]["documents"][0]["findings"][0]
    assert (f["check"], f["line"], f["column"], f["fixable"]) == ("hostPorts", 7, 9, True)
