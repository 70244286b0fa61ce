"""``--format markdown``: a pull-request comment.

A headline with the counts, a table of files with their changes, findings and rules, the
findings that need a person, the files that could not be read, then each changed file's diff in
a collapsible ``<details>`` block. The comment stays within ``MARKDOWN_LIMIT`` bytes of UTF-8
(GitHub refuses comments over 65,536 characters): parts that do not fit are left out, and a
closing note names what was left out and how to see it.
"""

from __future__ import annotations

import html
import re
from collections import Counter

from hardener.report._diff import unified_diff
from hardener.report._style import plural
from hardener.report._summary import summarize
from hardener.results import FileResult

__all__ = ["MARKDOWN_LIMIT", "cell", "code", "render_markdown"]

MARKDOWN_LIMIT = 60_000
# Room kept for the closing note, so that it always fits.
_NOTE_RESERVE = 2_000
_MAX_NAMED = 10


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def code(text: str) -> str:
    """Inline code that is safe in a table cell and in HTML ``<summary>``."""
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def cell(text: str) -> str:
    """Text that is safe in a table cell: on one line, HTML and ``|`` escaped."""
    return html.escape(" ".join(text.split())).replace("|", "&#124;")


def _shorten(path: str) -> str:
    return path if len(path) <= 80 else "…" + path[-79:]


def _fence(body: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit - _NOTE_RESERVE
        self.parts: list[str] = []

    def add(self, text: str) -> bool:
        size = _size(text)
        if size > self.left:
            return False
        self.parts.append(text)
        self.left -= size
        return True


def _rules_cell(file: FileResult) -> str:
    counts: Counter[str] = Counter()
    for document in file.documents:
        counts.update(change.rule for change in document.changes)
        counts.update(finding.check_or_rule for finding in document.findings)
    return ", ".join(
        code(name) + (f" (x{count})" if count > 1 else "") for name, count in counts.items()
    )


def render_markdown(files: list[FileResult], *, command: str, limit: int = MARKDOWN_LIMIT) -> str:
    summary = summarize(files)
    budget = _Budget(limit)
    left_out: list[str] = []

    budget.add(
        f"## hardener {html.escape(command)}\n\n{html.escape(summary.sentence(command))}\n\n"
    )

    listed = [
        f
        for f in files
        if f.changed or f.error or any(d.changes or d.findings for d in f.documents)
    ]
    if listed:
        budget.add(
            "| File | Changes | Findings | Rules and checks |\n| --- | ---: | ---: | --- |\n"
        )
        rows_left = 0
        for file in listed:
            changes = sum(len(d.changes) for d in file.documents)
            findings = sum(len(d.findings) for d in file.documents)
            rules = _rules_cell(file) or (cell(f"error: {file.error}") if file.error else "")
            if not budget.add(f"| {code(file.path)} | {changes} | {findings} | {rules} |\n"):
                rows_left += 1
        budget.add("\n")
        if rows_left:
            left_out.append(f"{plural(rows_left, 'row')} of the table")
    elif files:
        budget.add("Nothing to change and nothing found.\n\n")

    manual = [
        (file, finding)
        for file in files
        for document in file.documents
        for finding in document.findings
        if not finding.fixable
    ]
    if manual and budget.add("### Needs a manual fix\n\n"):
        skipped = 0
        for file, finding in manual:
            level = f" ({cell(finding.level)})" if finding.level else ""
            item = (
                f"- {code(f'{file.path}:{finding.line}')} {code(finding.check_or_rule)}{level}: "
                f"{cell(finding.message)}\n"
            )
            if not budget.add(item):
                skipped += 1
        budget.add("\n")
        if skipped:
            left_out.append(plural(skipped, "finding") + " that need a manual fix")
    elif manual:
        left_out.append(plural(len(manual), "finding") + " that need a manual fix")

    errors = [f for f in files if f.error]
    if errors and budget.add("### Files that could not be processed\n\n"):
        skipped = 0
        for file in errors:
            if not budget.add(f"- {code(file.path)}: {cell(file.error or '')}\n"):
                skipped += 1
        budget.add("\n")
        if skipped:
            left_out.append(plural(skipped, "file error"))

    changed = [f for f in files if f.changed and f.original is not None and f.fixed is not None]
    diffs_left: list[str] = []
    if changed:
        heading_added = budget.add("### Diffs\n\n")
        for file in changed:
            body = unified_diff(file.path, file.original or "", file.fixed or "")
            fence = _fence(body)
            count = sum(len(d.changes) for d in file.documents)
            block = (
                f"<details>\n<summary>{code(file.path)}: {plural(count, 'change')}</summary>\n\n"
                f"{fence}diff\n{body}{fence}\n\n</details>\n\n"
            )
            if not heading_added or not budget.add(block):
                diffs_left.append(file.path)
    if diffs_left:
        named = ", ".join(code(_shorten(p)) for p in diffs_left[:_MAX_NAMED])
        more = len(diffs_left) - _MAX_NAMED
        if more > 0:
            named += f" and {more} more"
        left_out.append(f"the diffs of {plural(len(diffs_left), 'file')} ({named})")

    text = "".join(budget.parts)
    if left_out:
        note = (
            f"_Left out to keep this comment under {limit // 1000} KB: "
            + "; ".join(left_out)
            + ". Run hardener locally (`--diff` shows the diffs, `--format json` everything) "
            "to see the rest._\n"
        )
        text += note
    return text
