"""``--format sarif``: a SARIF 2.1.0 log for code-scanning tools and editors.

- ``tool.driver.rules`` holds one descriptor per hardener rule and per Pod Security Standards
  check (ids: the rule id, ``pss/<check>``), each with a help text.
- One result per change (level ``warning``) and per finding (``error`` when it needs a person,
  ``warning`` when hardener can fix it), located at the line and column the records give.
- Every change result carries a ``fixes`` entry. The edits come from a line comparison of the
  original and fixed texts; each edit goes to the fix of the change line nearest before it, so
  a change's fix holds the lines it adds. Fixes never overlap, and applying every distinct fix
  once (results that share a line share one fix object) turns the original file into the fixed
  one exactly.

Regions (``run.columnKind`` is ``unicodeCodePoints``; line ends are ``\\r\\n`` and ``\\n``, the
SARIF defaults): a replacement's ``deletedRegion`` gives both ``charOffset``/``charLength`` and
the same span as ``startLine``/``startColumn``/``endLine``/``endColumn``, where the end is the
position just after the span (a span that ends with a line's terminator ends at column 1 of the
next line; past a final newline, that is the line after the last). A UTF-8 byte order mark is an
encoding marker and is not counted; a fix keeps it. Files whose fix would add or remove a mark
get no ``fixes`` (a note in the result's properties says why).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from hardener.report._catalog import PSS_URI, Catalog, Descriptor, load_catalog
from hardener.report._summary import summarize
from hardener.report._text_edits import TextEdit, text_edits
from hardener.results import FileResult

__all__ = ["SARIF_SCHEMA_URI", "artifact_uri", "render_sarif", "sarif_log"]

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


def artifact_uri(path: str) -> str:
    """A URI reference for a file path: relative paths stay relative (code scanning resolves
    them against the repository root), absolute ones become ``file://`` URIs."""
    pure = PurePath(path)
    posix = pure.as_posix()
    if pure.is_absolute():
        if not posix.startswith("/"):  # a Windows drive path
            posix = "/" + posix
        return "file://" + quote(posix, safe="/:")
    while posix.startswith("./"):
        posix = posix[2:]
    return quote(posix, safe="/")


def _descriptor(descriptor: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": descriptor.sarif_id,
        "name": descriptor.id,
        "shortDescription": {"text": descriptor.title},
        "fullDescription": {"text": descriptor.help},
        "help": {
            "text": descriptor.help,
            "markdown": f"**{descriptor.title}**\n\n{descriptor.help}",
        },
        "properties": {"kind": descriptor.kind, "tags": ["security", "kubernetes"]},
    }
    if descriptor.kind == "check":
        out["helpUri"] = PSS_URI
        out["defaultConfiguration"] = {"level": "error"}
        if descriptor.level:
            out["properties"]["level"] = descriptor.level
    else:
        out["defaultConfiguration"] = {"level": "warning"}
    return out


def _region(line: int, column: int) -> dict[str, int]:
    return {"startLine": max(1, line), "startColumn": max(1, column)}


def _replacement(edit: TextEdit) -> dict[str, Any]:
    return {
        "deletedRegion": {
            "startLine": edit.start[0],
            "startColumn": edit.start[1],
            "endLine": edit.end[0],
            "endColumn": edit.end[1],
            "charOffset": edit.offset,
            "charLength": edit.length,
        },
        "insertedContent": {"text": edit.inserted},
    }


def _fixes_by_line(
    file: FileResult, location: dict[str, Any], edits: list[TextEdit]
) -> dict[int, dict[str, Any]]:
    """The fix for each line that changes are located on.

    An edit belongs to the nearest change line at or before it (changes sit on the key or the
    ``- name:`` line that the inserted lines complete), or to the first one when it comes before
    them all. A line that gets no edit of its own shares the fix of the nearest line before it
    (else after it); the shared fix is the same object, so applying each distinct fix once
    applies every edit exactly once.
    """
    rules: dict[int, set[str]] = {}
    for document in file.documents:
        for change in document.changes:
            rules.setdefault(change.line, set()).add(change.rule)
    lines = sorted(rules)
    if not lines or not edits:
        return {}
    owned: dict[int, list[TextEdit]] = {}
    for edit in edits:
        at = bisect_right(lines, edit.start[0]) - 1
        owned.setdefault(lines[max(at, 0)], []).append(edit)
    fixes: dict[int, dict[str, Any]] = {}
    for line, line_edits in owned.items():
        fixes[line] = {
            "description": {
                "text": f"Apply {', '.join(sorted(rules[line]))} to {file.path} at line {line}"
            },
            "artifactChanges": [
                {
                    "artifactLocation": location,
                    "replacements": [_replacement(e) for e in line_edits],
                }
            ],
        }
    with_fix = sorted(fixes)
    for line in lines:
        if line not in fixes:
            at = bisect_right(with_fix, line) - 1
            fixes[line] = fixes[with_fix[at] if at >= 0 else with_fix[0]]
    return fixes


def sarif_log(files: list[FileResult], *, command: str, version: str) -> dict[str, Any]:
    catalog: Catalog = load_catalog()
    artifacts: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    # Results first, so that ids only the results name get descriptors before indexing.
    pending: list[tuple[dict[str, Any], Descriptor]] = []

    for file in files:
        uri = artifact_uri(file.path)
        index = len(artifacts)
        artifacts.append({"location": {"uri": uri}, "roles": ["analysisTarget"]})
        location = {"uri": uri, "index": index}
        if file.error:
            physical: dict[str, Any] = {"artifactLocation": location}
            if file.error_line is not None:
                physical["region"] = _region(file.error_line, file.error_column or 1)
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"{file.path}: {file.error}"},
                    "locations": [{"physicalLocation": physical}],
                }
            )
        if file.skipped:
            notifications.append(
                {
                    "level": "note",
                    "message": {"text": f"{file.path}: skipped: {file.skipped}"},
                    "locations": [{"physicalLocation": {"artifactLocation": location}}],
                }
            )
        fixes: dict[int, dict[str, Any]] = {}
        no_fix_reason: str | None = None
        if file.changed and file.original is not None and file.fixed is not None:
            edits = text_edits(file.original, file.fixed)
            if edits is None:
                no_fix_reason = "the fix adds or removes a byte order mark"
            else:
                fixes = _fixes_by_line(file, location, edits)
        for document in file.documents:
            if document.skipped:
                notifications.append(
                    {
                        "level": "note",
                        "message": {
                            "text": f"{file.path}: document {document.index + 1} "
                            f"({document.kind}) skipped: {document.skipped}"
                        },
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": location,
                                    "region": _region(document.line, 1),
                                }
                            }
                        ],
                    }
                )
            for change in document.changes:
                properties: dict[str, Any] = {
                    "kind": "change",
                    "pointer": change.pointer,
                    "before": change.before,
                    "after": change.after,
                    "container": change.container,
                    "document": document.index,
                }
                if no_fix_reason:
                    properties["noFix"] = no_fix_reason
                result: dict[str, Any] = {
                    "level": "warning",
                    "message": {"text": change.message},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": location,
                                "region": _region(change.line, change.column),
                            }
                        }
                    ],
                    "properties": properties,
                }
                if change.line in fixes:
                    result["fixes"] = [fixes[change.line]]
                pending.append((result, catalog.rule(change.rule)))
            for finding in document.findings:
                result = {
                    "level": "warning" if finding.fixable else "error",
                    "message": {"text": finding.message},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": location,
                                "region": _region(finding.line, finding.column),
                            }
                        }
                    ],
                    "properties": {
                        "kind": "finding",
                        "check": finding.check_or_rule,
                        "level": finding.level,
                        "fixable": finding.fixable,
                        "pointer": finding.pointer,
                        "rule": finding.rule,
                        "container": finding.container,
                        "document": document.index,
                    },
                }
                pending.append((result, catalog.finding(finding.check_or_rule, finding.level)))

    descriptors = catalog.all()
    indexes = {d.sarif_id: i for i, d in enumerate(descriptors)}
    for result, descriptor in pending:
        results.append(
            {"ruleId": descriptor.sarif_id, "ruleIndex": indexes[descriptor.sarif_id], **result}
        )

    summary = summarize(files)
    invocation: dict[str, Any] = {
        "executionSuccessful": True,
        "toolExecutionNotifications": notifications,
        "properties": {"command": command, "summary": summary.sentence(command)},
    }
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hardener",
                        "version": version,
                        "rules": [_descriptor(d) for d in descriptors],
                    }
                },
                "invocations": [invocation],
                "artifacts": artifacts,
                "results": results,
                "columnKind": "unicodeCodePoints",
                "newlineSequences": ["\r\n", "\n"],
                "properties": {"summary": summary.to_json()},
            }
        ],
    }


def render_sarif(files: list[FileResult], *, command: str, version: str) -> str:
    return json.dumps(sarif_log(files, command=command, version=version), indent=2) + "\n"
