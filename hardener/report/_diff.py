"""Unified diffs of a file before and after ``hardener fix``, for people to review.

Lines are compared with their terminators, so a line whose ending changed is shown as changed,
but terminators are not printed: a CRLF file diffs as cleanly as an LF one, with no stray
carriage returns in a terminal or a pull-request comment. A last line without a terminator gets
the usual ``\\ No newline at end of file`` marker. A byte order mark kept by the fix is left out
of the comparison; a mark added or removed is reported on a line of its own.
"""

from __future__ import annotations

import difflib

from hardener.report._style import BOLD, CYAN, GREEN, RED
from hardener.report._style import paint as _paint
from hardener.report._text_edits import split_lines, strip_bom

__all__ = ["unified_diff"]

_NO_NEWLINE = "\\ No newline at end of file"
_CONTEXT = 3


def _shown(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith("\n"):
        return line[:-1]
    return line


def _range(start: int, count: int) -> str:
    # GNU diff's convention: an empty range names the line before it.
    if count == 1:
        return str(start + 1)
    if count == 0:
        return f"{start},0"
    return f"{start + 1},{count}"


def unified_diff(path: str, original: str, fixed: str, *, color: bool = False) -> str:
    """A unified diff (``--- a/path``, ``+++ b/path``, hunks with 3 lines of context) turning
    ``original`` into ``fixed``; the empty string when they are equal."""
    if original == fixed:
        return ""

    def paint(code: str, text: str) -> str:
        return _paint(color, code, text)

    original_bom, original_text = strip_bom(original)
    fixed_bom, fixed_text = strip_bom(fixed)
    old = split_lines(original_text)
    new = split_lines(fixed_text)
    out = [paint(BOLD, f"--- a/{path}"), paint(BOLD, f"+++ b/{path}")]
    if original_bom != fixed_bom:
        note = "adds a UTF-8 byte order mark" if fixed_bom else "removes the byte order mark"
        out.append(paint(CYAN, f"# the fix {note}"))
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(_CONTEXT):
        first, last = group[0], group[-1]
        i1, i2, j1, j2 = first[1], last[2], first[3], last[4]
        out.append(paint(CYAN, f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@"))
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                for line in old[a1:a2]:
                    out.append(" " + _shown(line))
                    if not line.endswith("\n"):
                        out.append(_NO_NEWLINE)
                continue
            for line in old[a1:a2]:
                out.append(paint(RED, "-" + _shown(line)))
                if not line.endswith("\n"):
                    out.append(_NO_NEWLINE)
            for line in new[b1:b2]:
                out.append(paint(GREEN, "+" + _shown(line)))
                if not line.endswith("\n"):
                    out.append(_NO_NEWLINE)
    return "\n".join(out) + "\n"
