"""Real manifests (CRLF, comments, multi-document files): SARIF fixes reproduce edited text.

The edits are made here, line-aligned like the fixer's (a key inserted under each ``- name:``
line, a value replaced), so the test needs only the files. It runs over the copies in
``tests/report/data`` and, when it is there, the whole ``../shared/corpus``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hardener.report import render, unified_diff
from hardener.results import DocumentResult, FileResult
from tests.report.factory import (
    DATA,
    apply_by_lines,
    apply_by_offset,
    change,
    corpus_paths,
    replacements_for,
    sarif_validator,
)

_NAME = re.compile(r"^(\s*)- name:.*(\r?\n)$")


def _paths() -> list[Path]:
    return sorted(DATA.glob("*.yaml")) + corpus_paths()


def _edit(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The text with a line inserted under every ``- name:`` line and ``privileged: true``
    made false, and the (line, column) of each ``- name:`` it touched."""
    out: list[str] = []
    places: list[tuple[int, int]] = []
    for number, full in enumerate(text.splitlines(keepends=True), start=1):
        match = _NAME.match(full)
        out.append(full.replace("privileged: true", "privileged: false"))
        if match:
            indent, eol = match.group(1), match.group(2)
            out.append(f"{indent}  securityContext: {{}}{eol}")
            places.append((number, len(indent) + 1))
    return "".join(out), places


def test_corpus_copies_have_crlf() -> None:
    for path in DATA.glob("*.yaml"):
        assert b"\r\n" in path.read_bytes()


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.name)
def test_sarif_fix_reproduces_edit(path: Path) -> None:
    original = path.read_bytes().decode("utf-8")
    fixed, places = _edit(original)
    if fixed == original:
        assert not places
        return
    doc = DocumentResult(0, "Pod", None, None)
    # A file edited only by the value replacement gets one change on its first line.
    doc.changes.extend(change("fs-group", line, column) for line, column in places or [(1, 1)])
    file = FileResult(path="m.yaml", original=original, fixed=fixed, documents=[doc])
    log = json.loads(render([file], "sarif", command="fix", version="1"))
    if path.parent == DATA:
        assert not list(sarif_validator().iter_errors(log))
    replacements = replacements_for(log, "m.yaml")
    assert apply_by_offset(original, replacements) == fixed
    assert apply_by_lines(original, replacements) == fixed
    # Every result sits on its "- name:" line, and that line really is one.
    lines = original.split("\n")
    results = log["runs"][0]["results"] if places else []
    for result, (line, column) in zip(results, places, strict=True):
        region = result["locations"][0]["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) == (line, column)
        assert lines[line - 1][column - 1 :].startswith("- name:")
    diff = unified_diff("m.yaml", original, fixed)
    assert "\r" not in diff
    added = [d for d in diff.splitlines() if d.startswith("+") and not d.startswith("+++")]
    assert sum(1 for d in added if d.strip() == "+" or "securityContext: {}" in d) >= len(places)
