"""The default, human format: one ``path:line:col: [id] message`` line per change or finding,
optional unified diffs, and a closing summary line."""

from __future__ import annotations

from hardener.report._diff import unified_diff
from hardener.report._style import BOLD, MAGENTA, RED, YELLOW
from hardener.report._style import paint as _paint
from hardener.report._summary import summarize
from hardener.results import FileResult

__all__ = ["render_text"]


def render_text(
    files: list[FileResult], *, command: str, diff: bool = False, color: bool = False
) -> str:
    def paint(code: str, text: str) -> str:
        return _paint(color, code, text)

    out: list[str] = []
    for file in files:
        path = paint(BOLD, file.path)
        if file.error:
            where = path
            if file.error_line is not None:
                where += f":{file.error_line}"
                if file.error_column is not None:
                    where += f":{file.error_column}"
            out.append(f"{where}: {paint(RED, 'error')}: {file.error}")
        if file.skipped:
            out.append(f"{path}: skipped: {file.skipped}")
        for document in file.documents:
            if document.skipped:
                out.append(
                    f"{path}:{document.line}: skipped document {document.index + 1} "
                    f"({document.kind}): {document.skipped}"
                )
            for change in document.changes:
                tag = paint(YELLOW, f"[{change.rule}]")
                out.append(f"{path}:{change.line}:{change.column}: {tag} {change.message}")
            for finding in document.findings:
                tag = paint(RED if not finding.fixable else MAGENTA, f"[{finding.check_or_rule}]")
                note = "" if finding.fixable else " (needs a manual fix)"
                out.append(f"{path}:{finding.line}:{finding.column}: {tag} {finding.message}{note}")
        if diff and file.changed and file.original is not None and file.fixed is not None:
            out.append(unified_diff(file.path, file.original, file.fixed, color=color).rstrip("\n"))
    out.append(summarize(files).sentence(command))
    return "\n".join(out) + "\n"
