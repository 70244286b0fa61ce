"""The default, human format: one ``path:line:col: [id] message`` line per change or finding,
optional unified diffs, and a closing summary line."""

from __future__ import annotations

from hardener.report._diff import unified_diff
from hardener.report._summary import summarize
from hardener.results import FileResult

__all__ = ["render_text"]

_BOLD = "\x1b[1m"
_YELLOW = "\x1b[33m"
_RED = "\x1b[31m"
_MAGENTA = "\x1b[35m"
_RESET = "\x1b[0m"


def render_text(
    files: list[FileResult], *, command: str, diff: bool = False, color: bool = False
) -> str:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    out: list[str] = []
    for file in files:
        path = paint(_BOLD, file.path)
        if file.error:
            where = path
            if file.error_line is not None:
                where += f":{file.error_line}"
                if file.error_column is not None:
                    where += f":{file.error_column}"
            out.append(f"{where}: {paint(_RED, 'error')}: {file.error}")
        if file.skipped:
            out.append(f"{path}: skipped: {file.skipped}")
        for document in file.documents:
            if document.skipped:
                out.append(
                    f"{path}:{document.line}: skipped document {document.index + 1} "
                    f"({document.kind}): {document.skipped}"
                )
            for change in document.changes:
                tag = paint(_YELLOW, f"[{change.rule}]")
                out.append(f"{path}:{change.line}:{change.column}: {tag} {change.message}")
            for finding in document.findings:
                tag = paint(_RED if not finding.fixable else _MAGENTA, f"[{finding.check}]")
                note = "" if finding.fixable else " (needs a manual fix)"
                out.append(f"{path}:{finding.line}:{finding.column}: {tag} {finding.message}{note}")
        if diff and file.changed and file.original is not None and file.fixed is not None:
            out.append(unified_diff(file.path, file.original, file.fixed, color=color).rstrip("\n"))
    out.append(summarize(files).sentence(command))
    return "\n".join(out) + "\n"
