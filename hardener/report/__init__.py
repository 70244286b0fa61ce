"""Reports: what ``hardener fix`` and ``hardener check`` found, in the format a reader needs.

Formats (``--format``):

- ``text``: one ``path:line:col: [id] message`` line per change or finding and a closing
  summary; with ``diff=True`` a unified diff per changed file. The lines and summaries that
  ``fix`` and ``check`` print in their default output (``fix_lines``, ``check_lines``,
  ``error_line``, ``fix_summary``, ``check_summary``) live beside it, in ``_text``.
- ``json``: ``hardener.results.to_json`` plus ``command``, ``summary`` and ``images``,
  described by the JSON Schema ``hardener/data/hardener-report.schema.json``
  (see ``json_schema()``).
- ``sarif``: SARIF 2.1.0 with one rule per hardener rule and PSS check, one result per change or
  finding, and for changes a fix whose replacements turn the original file into the fixed one.
- ``github``: GitHub Actions workflow commands that annotate the pull request's lines.
- ``markdown``: a pull-request comment with a table and collapsible diffs, within ~60 KB.
- ``html``: one self-contained page (``render_html`` of a ``Posture``): summary figures, a heat
  map of folder or namespace by PSS check, and per workload its changes, findings and diff.

``hardener audit`` reports through the same stack: its records (``AuditReport`` and what it
holds, filled in by ``hardener.audit``) and ``render_audit`` in ``AUDIT_FORMATS`` (``text``,
``json``, ``markdown``, ``diff``: kubectl commands, ``html``: the page of its ``Posture``).

Every location is the line and column the records carry, which point into the original file.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from hardener.report._audit import AUDIT_FORMATS, kubectl_command, render_audit
from hardener.report._audit_results import (
    AuditReport,
    Denied,
    NamespaceAudit,
    Policy,
    RootWorkload,
    UserNamespaceAudit,
    WorkloadAudit,
)
from hardener.report._diff import unified_diff
from hardener.report._github import render_github
from hardener.report._html import render_html
from hardener.report._images import ImageReport, facts_json
from hardener.report._json import render_json
from hardener.report._markdown import MARKDOWN_LIMIT, render_markdown
from hardener.report._posture import (
    ChangeLine,
    FindingLine,
    Posture,
    WorkloadPosture,
    posture_from_files,
)
from hardener.report._sarif import render_sarif
from hardener.report._style import BOLD, CYAN, GREEN, MAGENTA, RED, RESET, YELLOW, paint, plural
from hardener.report._text import (
    LeftOut,
    check_lines,
    check_summary,
    error_line,
    fix_lines,
    fix_summary,
    render_text,
    user_namespaces_line,
)
from hardener.results import FileResult

__all__ = [
    "AUDIT_FORMATS",
    "BOLD",
    "CYAN",
    "FORMATS",
    "GREEN",
    "MAGENTA",
    "MARKDOWN_LIMIT",
    "RED",
    "RESET",
    "YELLOW",
    "AuditReport",
    "ChangeLine",
    "Denied",
    "FindingLine",
    "ImageReport",
    "LeftOut",
    "NamespaceAudit",
    "Policy",
    "Posture",
    "RootWorkload",
    "UserNamespaceAudit",
    "WorkloadAudit",
    "WorkloadPosture",
    "check_lines",
    "check_summary",
    "error_line",
    "facts_json",
    "fix_lines",
    "fix_summary",
    "json_schema",
    "kubectl_command",
    "paint",
    "plural",
    "posture_from_files",
    "render",
    "render_audit",
    "render_html",
    "unified_diff",
    "user_namespaces_line",
]

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "github", "markdown", "html")


def render(
    files: list[FileResult],
    fmt: str,
    *,
    command: str,
    version: str,
    diff: bool = False,
    color: bool = False,
    level: str = "restricted",
    after_fix: bool = False,
    images: ImageReport | None = None,
) -> str:
    """The report of ``files`` in format ``fmt`` (one of ``FORMATS``), ending with a newline.

    ``command`` is the sub-command that produced the results (``fix`` or ``check``), ``version``
    hardener's version. ``diff`` and ``color`` only affect the ``text`` format (markdown always
    shows diffs; no machine format is ever colored). ``level`` and ``after_fix`` tell the
    ``html`` page what the findings mean (see ``posture_from_files``). ``images`` (what the
    run learnt about its images) becomes the ``images`` object of the ``json`` format. Raises
    ``ValueError``
    for an unknown format.
    """
    if fmt == "text":
        return render_text(files, command=command, diff=diff, color=color)
    if fmt == "json":
        return render_json(files, command=command, version=version, images=images)
    if fmt == "sarif":
        return render_sarif(files, command=command, version=version)
    if fmt == "github":
        return render_github(files, command=command)
    if fmt == "markdown":
        return render_markdown(files, command=command)
    if fmt == "html":
        posture = posture_from_files(files, command=command, level=level, after_fix=after_fix)
        return render_html(posture, version=version)
    raise ValueError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``json`` format, as shipped in the package."""
    text = (
        resources.files("hardener")
        .joinpath("data/hardener-report.schema.json")
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema
