"""The human format of fix and check: one line per change, finding or error, the closing
summaries with their reasons, and the ``text`` format of ``render`` (the same lines plus
optional unified diffs and a one-sentence summary).

Result lines go to stdout; the summaries and errors go to stderr, so that
``--diff > changes.patch`` holds only the diff.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from hardener.report._diff import unified_diff
from hardener.report._style import BOLD, MAGENTA, RED, YELLOW, paint, plural
from hardener.report._summary import summarize
from hardener.results import FileResult, LocatedChange

__all__ = [
    "LeftOut",
    "check_lines",
    "check_summary",
    "error_line",
    "fix_lines",
    "fix_summary",
    "render_text",
    "user_namespaces_line",
]

_SHOWN_PER_REASON = 5


class LeftOut(Protocol):
    """What a file walk left out (``hardener.fixer.files.Collected``): the paths with their
    reason, and the stale temporary files found (``removed`` says whether they were deleted)."""

    left_out: list[tuple[str, str]]
    stale: list[str]
    removed: bool


def _where(result: FileResult, path: str) -> str:
    if result.error_line is not None:
        path += f":{result.error_line}"
        if result.error_column is not None:
            path += f":{result.error_column}"
    return path


def error_line(result: FileResult, color: bool = False, *, path: str | None = None) -> str:
    """``path:line:column: error: message`` (line and column when the error has a place);
    ``path`` replaces the result's own path (the text format paints it)."""
    where = _where(result, result.path if path is None else path)
    return f"{where}: {paint(color, RED, 'error')}: {result.error}"


def _change_line(path: str, change: LocatedChange, color: bool) -> str:
    tag = paint(color, YELLOW, f"[{change.rule}]")
    return f"{path}:{change.line}:{change.column}: {tag} {change.message}"


def fix_lines(result: FileResult, *, check: bool, color: bool = False) -> list[str]:
    """The stdout lines for one file of a ``fix`` run (errors are printed separately).

    With ``check``, every change that would be made, ``path:line:col: [rule] message``; when
    writing, one ``fixed path (N changes)`` line per rewritten file.
    """
    if result.error or not result.changed:
        return []
    changes = [c for d in result.documents for c in d.changes]
    if not check:
        return [f"fixed {result.path} ({plural(len(changes), 'change')})"]
    return [_change_line(result.path, c, color) for c in changes]


def _unchanged(results: list[FileResult]) -> int:
    return sum(1 for r in results if not r.error and not r.skipped and not r.changed)


def _skip_groups(results: Iterable[FileResult]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for result in results:
        if result.skipped and not result.error:
            category = result.skipped.split(": ", 1)[0]
            groups.setdefault(category, []).append(f"{result.path}: {result.skipped}")
    return _grouped(groups, "skipped", "file")


def _grouped(groups: dict[str, list[str]], verb: str, noun: str) -> list[str]:
    """One line per reason, the largest group first, each with its first few entries."""
    lines = []
    for reason, entries in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        lines.append(f"  {verb} {plural(len(entries), noun)}: {reason}")
        lines.extend(_first_few(entries))
    return lines


def _first_few(entries: list[str]) -> list[str]:
    lines = [f"    {entry}" for entry in entries[:_SHOWN_PER_REASON]]
    if len(entries) > _SHOWN_PER_REASON:
        lines.append(f"    ... and {len(entries) - _SHOWN_PER_REASON} more")
    return lines


def _left_out_lines(collected: LeftOut | None) -> tuple[str, list[str]]:
    """What the walk left out and the stale temporary files: a note for the head line and
    the lines that say why, grouped by reason with the first few paths."""
    if collected is None:
        return "", []
    groups: dict[str, list[str]] = {}
    for path, reason in collected.left_out:
        groups.setdefault(reason, []).append(path)
    lines = _grouped(groups, "left out", "path")
    if collected.stale:
        what = plural(len(collected.stale), "stale temporary file")
        if collected.removed:
            lines.append(f"  removed {what} of an interrupted hardener run:")
        else:
            lines.append(f"  found {what} of an interrupted hardener run (plain fix removes them):")
        lines.extend(_first_few(collected.stale))
    note = f", {plural(len(collected.left_out), 'path')} left out" if collected.left_out else ""
    return note, lines


def _summary(
    head: str, results: list[FileResult], collected: LeftOut | None, by: str, counts: Counter[str]
) -> str:
    """A closing summary: ``head`` with the files skipped, the errors and the paths the walk
    left out, the lines that give their reasons, and the ``counts`` by rule or check."""
    skipped = sum(1 for r in results if r.skipped and not r.error)
    errors = sum(1 for r in results if r.error)
    note, left_out = _left_out_lines(collected)
    head += f", {skipped} skipped, {plural(errors, 'error')}{note}"
    lines = [head, *_skip_groups(results), *left_out]
    if counts:
        lines.append(f"  {by}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    return "\n".join(lines) + "\n"


def fix_summary(results: list[FileResult], *, check: bool, collected: LeftOut | None = None) -> str:
    """The closing summary of ``fix``: files scanned, changed, unchanged, skipped (with the
    reasons), errors, the paths the walk left out (with the reasons), and the changes by
    rule."""
    changed = sum(1 for r in results if r.changed and not r.error)
    verb = "would change" if check else "changed"
    head = (
        f"hardener fix: {plural(len(results), 'file')} scanned, {changed} {verb}, "
        f"{_unchanged(results)} unchanged"
    )
    by_rule: Counter[str] = Counter(
        c.rule for r in results if r.changed and not r.error for d in r.documents for c in d.changes
    )
    return _summary(head, results, collected, "changes by rule", by_rule)


def user_namespaces_line(mode: str, results: list[FileResult]) -> str:
    """Said once at the end of ``fix`` and ``check`` when ``user-namespaces: auto`` had no
    cluster to ask and the files hold pods: the rule was off, and how to turn it on."""
    if mode != "auto" or not any(d.holds_pods for r in results for d in r.documents):
        return ""
    return (
        "  user namespaces: off (user-namespaces: auto, and no cluster to ask); set "
        "user-namespaces: always in the config when every node supports them (Kubernetes "
        "1.33+, containerd 2.0+ or CRI-O 1.25+, runc 1.2+ or crun 1.9+, Linux 6.3+)\n"
    )


def check_lines(result: FileResult, color: bool = False) -> list[str]:
    """``path:line: Kind namespace/name: container "c": [check] message`` per violation."""
    lines = []
    for document in result.documents:
        if document.namespace and document.name:
            label = f"{document.kind} {document.namespace}/{document.name}"
        else:
            label = f"{document.kind} {document.name or '(unnamed)'}"
        for finding in document.findings:
            container = ""
            if finding.container and f'"{finding.container}"' not in finding.message:
                container = f'container "{finding.container}": '
            check = paint(
                color, RED if not finding.fixable else YELLOW, f"[{finding.check_or_rule}]"
            )
            note = " (hardener fix sets this)" if finding.fixable else ""
            lines.append(
                f"{result.path}:{finding.line}: {label}: {container}{check} {finding.message}{note}"
            )
    return lines


def check_summary(
    results: list[FileResult],
    *,
    level: str,
    version: str,
    after_fix: bool,
    collected: LeftOut | None = None,
) -> str:
    """The closing summary of ``check``: what was checked, the violations by check, and the
    paths the walk left out."""
    objects = sum(
        1 for r in results if not r.error for d in r.documents if not d.skipped and d.kind
    )
    findings = [f for r in results if not r.error for d in r.documents for f in d.findings]
    violating = sum(1 for r in results if not r.error for d in r.documents if d.findings)
    fixable = sum(1 for f in findings if f.fixable)
    when = " after fix" if after_fix else ""
    head = (
        f"hardener check ({level}, {version}{when}): {plural(len(results), 'file')}, "
        f"{plural(objects, 'object')} checked: {plural(len(findings), 'violation')} in "
        f"{plural(violating, 'object')}"
    )
    if findings:
        head += f" ({fixable} fixable by hardener fix)"
    by_check: Counter[str] = Counter(f.check_or_rule for f in findings)
    return _summary(head, results, collected, "violations by check", by_check)


def render_text(
    files: list[FileResult], *, command: str, diff: bool = False, color: bool = False
) -> str:
    """The ``text`` format: every change and finding of ``files``, optional unified diffs,
    and the one-sentence summary of ``command``."""
    out: list[str] = []
    for file in files:
        path = paint(color, BOLD, file.path)
        if file.error:
            out.append(error_line(file, color, path=path))
        if file.skipped:
            out.append(f"{path}: skipped: {file.skipped}")
        for document in file.documents:
            if document.skipped:
                out.append(
                    f"{path}:{document.line}: skipped document {document.index + 1} "
                    f"({document.kind}): {document.skipped}"
                )
            out.extend(_change_line(path, change, color) for change in document.changes)
            for finding in document.findings:
                tag = paint(
                    color, RED if not finding.fixable else MAGENTA, f"[{finding.check_or_rule}]"
                )
                note = "" if finding.fixable else " (needs a manual fix)"
                out.append(f"{path}:{finding.line}:{finding.column}: {tag} {finding.message}{note}")
        if diff and file.changed and file.original is not None and file.fixed is not None:
            out.append(unified_diff(file.path, file.original, file.fixed, color=color).rstrip("\n"))
    out.append(summarize(files).sentence(command))
    return "\n".join(out) + "\n"
