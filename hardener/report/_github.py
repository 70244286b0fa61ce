"""``--format github``: GitHub Actions workflow commands that annotate a pull request's lines.

``::warning file=k8s/app.yaml,line=12,col=7,title=hardener run-as-non-root::message`` per change,
``::error`` for a finding that needs a person (``::warning`` when hardener can fix it), an
``::error`` per file that could not be read, and a closing ``::notice`` with the summary.
Values are escaped as the Actions runner expects: ``%``, CR and LF everywhere, and also ``:``
and ``,`` inside properties.
"""

from __future__ import annotations

from hardener.report._summary import summarize
from hardener.results import FileResult

__all__ = ["escape_data", "escape_property", "render_github"]


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _command(name: str, message: str, **properties: str | int) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    head = f"{name} {props}" if props else name
    return f"::{head}::{escape_data(message)}"


def render_github(files: list[FileResult], *, command: str) -> str:
    out: list[str] = []
    for file in files:
        if file.error:
            place: dict[str, str | int] = {"file": file.path}
            if file.error_line is not None:
                place["line"] = file.error_line
                if file.error_column is not None:
                    place["col"] = file.error_column
            out.append(_command("error", file.error, **place, title="hardener: file error"))
        if file.skipped:
            out.append(
                _command("notice", f"skipped: {file.skipped}", file=file.path, title="hardener")
            )
        for document in file.documents:
            for change in document.changes:
                out.append(
                    _command(
                        "warning",
                        change.message,
                        file=file.path,
                        line=change.line,
                        col=change.column,
                        title=f"hardener {change.rule}",
                    )
                )
            for finding in document.findings:
                level = f" [{finding.level}]" if finding.level else ""
                note = "" if finding.fixable else " (needs a manual fix)"
                out.append(
                    _command(
                        "warning" if finding.fixable else "error",
                        f"{finding.message}{note}",
                        file=file.path,
                        line=finding.line,
                        col=finding.column,
                        title=f"hardener {finding.check_or_rule}{level}",
                    )
                )
    out.append(_command("notice", summarize(files).sentence(command), title="hardener"))
    return "\n".join(out) + "\n"
