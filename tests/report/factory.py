"""Hand-made results for the report tests, the SARIF schema, and two independent appliers of
SARIF replacements (one by character offset, one by line and column)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from hardener.results import DocumentResult, FileResult, LocatedChange, LocatedFinding
from tests._shared import shared

DATA = Path(__file__).parent / "data"
SARIF_SCHEMA = Path(__file__).parents[1] / "data" / "sarif-2.1.0.json"
BOM = "\ufeff"


def corpus_paths() -> list[Path]:
    """Every YAML and JSON file of ``../shared/corpus`` (none when it is not there)."""
    corpus = shared("corpus")
    if corpus is None:
        return []
    return sorted(p for p in corpus.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: nginx
    securityContext:
      privileged: true
"""

POD_FIXED = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  securityContext:
    runAsNonRoot: true
  containers:
  - name: app
    image: nginx
    securityContext:
      privileged: true
      allowPrivilegeEscalation: false
"""


def change(rule: str, line: int, column: int, pointer: str = "/spec", **kw: Any) -> LocatedChange:
    return LocatedChange(
        rule=rule,
        pointer=pointer,
        line=line,
        column=column,
        message=kw.pop("message", f"{rule} applied"),
        **kw,
    )


def finding(
    check: str, line: int, column: int, *, fixable: bool = False, **kw: Any
) -> LocatedFinding:
    return LocatedFinding(
        check_or_rule=check,
        level=kw.pop("level", "baseline"),
        container=kw.pop("container", "app"),
        line=line,
        column=column,
        message=kw.pop("message", f"{check} violated"),
        fixable=fixable,
        pointer=kw.pop("pointer", "/spec/containers/0/securityContext/privileged"),
        **kw,
    )


def pod_result(path: str = "k8s/pod.yaml", *, eol: str = "\n", bom: bool = False) -> FileResult:
    """The POD manifest fixed into POD_FIXED, with the given line ends and BOM, and records
    that point where a fixer points: the pod's ``spec:`` key and the container's ``- name:``."""
    prefix = BOM if bom else ""
    return FileResult(
        path=path,
        original=prefix + POD.replace("\n", eol),
        fixed=prefix + POD_FIXED.replace("\n", eol),
        documents=[
            DocumentResult(
                index=0,
                kind="Pod",
                namespace=None,
                name="web",
                line=1,
                changes=[
                    change(
                        "run-as-non-root",
                        5,
                        1,
                        "/spec/securityContext",
                        message='pod "web": set runAsNonRoot: true',
                        after={"runAsNonRoot": True},
                    ),
                    change(
                        "no-privilege-escalation",
                        9,
                        5,
                        "/spec/containers/0/securityContext/allowPrivilegeEscalation",
                        message='container "app": set allowPrivilegeEscalation: false',
                        after=False,
                        container="app",
                    ),
                ],
                findings=[
                    finding(
                        "privileged",
                        10,
                        7,
                        message='container "app" runs privileged',
                    )
                ],
            )
        ],
    )


@cache
def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def _split_bom(text: str) -> tuple[str, str]:
    return (BOM, text[1:]) if text.startswith(BOM) else ("", text)


def apply_by_offset(original: str, replacements: list[dict[str, Any]]) -> str:
    """Apply SARIF replacements by charOffset/charLength (BOM not counted)."""
    bom, text = _split_bom(original)
    spans = sorted(
        (
            (
                r["deletedRegion"]["charOffset"],
                r["deletedRegion"]["charLength"],
                r.get("insertedContent", {}).get("text", ""),
            )
            for r in replacements
        ),
        reverse=True,
    )
    end = len(text) + 1
    for offset, length, inserted in spans:
        assert offset >= 0 and offset + length <= len(text)
        assert offset + length <= end, "replacements overlap"
        text = text[:offset] + inserted + text[offset + length :]
        end = offset
    return bom + text


def apply_by_lines(original: str, replacements: list[dict[str, Any]]) -> str:
    """Apply SARIF replacements by startLine/startColumn/endLine/endColumn, with the SARIF
    default line ends (CRLF and LF) and columns in code points after any BOM."""
    bom, text = _split_bom(original)
    starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]

    def offset(line: int, column: int) -> int:
        assert 1 <= line <= len(starts), f"line {line} is not in the file"
        line_end = starts[line] if line < len(starts) else len(text)
        assert 1 <= column <= line_end - starts[line - 1] + 1, f"column {column} on line {line}"
        return starts[line - 1] + column - 1

    spans = []
    for r in replacements:
        region = r["deletedRegion"]
        start = offset(region["startLine"], region["startColumn"])
        stop = offset(region["endLine"], region["endColumn"])
        assert start <= stop
        spans.append((start, stop, r.get("insertedContent", {}).get("text", "")))
    for start, stop, inserted in sorted(spans, reverse=True):
        text = text[:start] + inserted + text[stop:]
    return bom + text


def replacements_for(
    log: dict[str, Any], uri: str, *, require_fixes: bool = True
) -> list[dict[str, Any]]:
    """The replacements of every distinct fix the log gives for one artifact, in file order;
    checks that every change result has a fix and that distinct fixes never share an edit."""
    fixes: list[dict[str, Any]] = []
    for result in log["runs"][0]["results"]:
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        if location != uri:
            continue
        properties = result["properties"]
        if require_fixes and properties["kind"] == "change" and "noFix" not in properties:
            assert len(result.get("fixes", [])) == 1, "a change without a fix"
        for fix in result.get("fixes", []):
            if fix not in fixes:
                fixes.append(fix)
    found: list[dict[str, Any]] = []
    for fix in fixes:
        [artifact_change] = fix["artifactChanges"]
        assert artifact_change["artifactLocation"]["uri"] == uri
        for replacement in artifact_change["replacements"]:
            assert replacement not in found, "two fixes share an edit"
            found.append(replacement)
    return sorted(found, key=lambda r: int(r["deletedRegion"]["charOffset"]))
