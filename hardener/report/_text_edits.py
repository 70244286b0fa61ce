"""Line-level comparison of an original text with its fixed version.

Two consumers share it: the unified diff shown to people, and the SARIF replacements that
editors apply. Both work on *lines* split after each ``\\n`` only, so a ``\\r\\n`` line keeps its
``\\r`` as part of the line's terminator and a lone ``\\r`` stays ordinary text (the line-end
sequences SARIF assumes by default are exactly ``\\r\\n`` and ``\\n``).

A UTF-8 byte order mark is an encoding marker, not text: it is taken off both texts before they
are compared, and positions (lines, columns and character offsets) are counted after it, the way
editors and YAML parsers count them. When only one of the two texts has a mark, the difference
cannot be described as a text edit and ``text_edits`` says so by returning ``None``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

__all__ = ["BOM", "TextEdit", "position", "split_lines", "strip_bom", "text_edits"]

BOM = "\ufeff"


def strip_bom(text: str) -> tuple[bool, str]:
    """Whether ``text`` starts with a byte order mark, and the text without it."""
    if text.startswith(BOM):
        return True, text[len(BOM) :]
    return False, text


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, each with its terminator; splits after ``\\n`` only.

    ``str.splitlines`` is not used on purpose: it also splits at form feeds, vertical tabs,
    U+2028 and friends, which YAML treats as content.
    """
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``text`` (no BOM; columns count code
    points). The offset just past a final ``\\n`` is (last line + 1, 1)."""
    line = text.count("\n", 0, offset) + 1
    line_start = text.rfind("\n", 0, offset) + 1
    return line, offset - line_start + 1


@dataclass(frozen=True)
class TextEdit:
    """Replace ``length`` characters at ``offset`` of the original (BOM-less) text with
    ``inserted``. ``start``/``end`` are the same span as 1-based (line, column) pairs, ``end``
    being the position just after the span."""

    offset: int
    length: int
    start: tuple[int, int]
    end: tuple[int, int]
    inserted: str


def text_edits(original: str, fixed: str) -> list[TextEdit] | None:
    """Whole-line edits that turn ``original`` into ``fixed``, in file order.

    Returns ``None`` when the two texts differ in their byte order mark only a byte-level edit
    could express. Applying the edits from last to first (or adjusting offsets as one goes)
    reproduces ``fixed`` exactly.
    """
    original_bom, original_text = strip_bom(original)
    fixed_bom, fixed_text = strip_bom(fixed)
    if original_bom != fixed_bom:
        return None
    old = split_lines(original_text)
    new = split_lines(fixed_text)
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line))
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    edits: list[TextEdit] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        offset = starts[i1]
        length = starts[i2] - starts[i1]
        edits.append(
            TextEdit(
                offset=offset,
                length=length,
                start=position(original_text, offset),
                end=position(original_text, offset + length),
                inserted="".join(new[j1:j2]),
            )
        )
    return edits
