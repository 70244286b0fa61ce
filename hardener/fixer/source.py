"""A manifest file as text plus documents: parse it, locate nodes, apply RFC 6902 ops surgically.

``SourceFile.parse`` takes the decoded text of a YAML or JSON file, including a leading BOM
(``"\\ufeff"``) if the file has one, and ``SourceFile.apply`` returns the new full text in the
same form: BOM, line endings (``"\\n"``, ``"\\r\\n"`` or a lone ``"\\r"``, as the first line
break of the file) and the final newline (or its absence) are kept. Lines and columns are
1-based and count characters; the BOM is not part of line 1.

Values are read with YAML 1.1 rules, as Kubernetes reads them (``0644`` is 420, ``yes`` is
true), and made plain JSON-like data: timestamps and ``!!binary`` stay strings, non-string keys
become JSON strings (``1`` -> ``"1"``, ``true`` -> ``"true"``), aliases and ``<<`` merges are
expanded. Every document of the stream is kept, empty ones as ``None``, so ``index`` matches the
file's own order.

``apply`` never re-dumps a document: it inserts or replaces only the lines a change needs (see
``hardener.fixer.yamledit``), then parses its own output again and checks that every document
equals the original with the ops applied (``jsonpatch``). Anything it cannot do that way raises
``EditError``, and the caller leaves the file untouched.
"""

from __future__ import annotations

import copy
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from hardener.fixer._errors import EditError, SourceError
from hardener.fixer._load import YNode, load_documents, load_values, same_json
from hardener.fixer._reading import TextLines, line_column, line_starts
from hardener.fixer.yamledit import TextEditor
from hardener.model import Operation
from hardener.pointer import split

__all__ = ["Document", "EditError", "SourceError", "SourceFile", "file_skip_reason"]

BOM = "\ufeff"


@dataclass
class Document:
    """One document of a file: its JSON-like value and where its nodes are written.

    ``node`` is the document's node tree and ``text`` the file text it points into (without
    BOM); both are the fixer's own business.
    """

    index: int
    value: Any
    line: int
    node: YNode | None = field(default=None, repr=False, compare=False)
    text: str = field(default="", repr=False, compare=False)
    _lines: TextLines | None = field(default=None, init=False, repr=False, compare=False)

    def position(self, pointer: str) -> tuple[int, int]:
        """1-based (line, column) of the node at ``pointer`` (RFC 6901).

        A mapping member gives its key's position, a sequence item the position of its ``-``
        (or of the item itself in a flow sequence). A pointer that does not exist (yet) gives
        the position of its deepest existing ancestor.
        """
        node = self.node
        if node is None:
            return (self.line, 1)
        line, column = node.line, node.column
        for token in split(pointer):
            if node.alias:
                break
            if node.kind == "mapping":
                member = node.members.get(token)
                if member is None:
                    break
                key, node = member
                line, column = key.line, key.column
            elif node.kind == "sequence":
                if not token.isdigit() or int(token) >= len(node.items):
                    break
                node = node.items[int(token)]
                line, column = self._item_position(node)
            else:
                break
        return (line + 1, column + 1)

    def _item_position(self, item: YNode) -> tuple[int, int]:
        """Where a sequence item is written: its ``-`` in a block sequence."""
        parent = item.parent
        if parent is None or parent.flow:
            return (item.line, item.column)
        if self._lines is None:
            self._lines = TextLines(self.text)
        return self._lines.item_position(item.start, item.line, item.column)


class SourceFile:
    """A parsed manifest file. Build it with ``SourceFile.parse(text)``."""

    def __init__(self, text: str, bom: bool, documents: list[Document]) -> None:
        self.text = text
        self.bom = bom
        self.documents = documents
        match = re.search(r"\r\n|\n|\r", text)
        self.newline = match.group() if match is not None else "\n"

    @classmethod
    def parse(cls, text: str) -> SourceFile:
        """Parse decoded file text (a leading BOM allowed). Raises SourceError."""
        bom = text.startswith(BOM)
        body = text[1:] if bom else text
        loaded = load_documents(body)
        documents = [
            Document(index=i, value=value, line=root.line + 1, node=root, text=body)
            for i, (root, value) in enumerate(loaded)
        ]
        return cls(body, bom, documents)

    def apply(self, ops_by_document: dict[int, list[Operation]]) -> str:
        """The new full text with the ops applied (BOM, line endings, final newline kept).

        Raises EditError when an op cannot be applied surgically and safely.
        """
        prefix = BOM if self.bom else ""
        work = {index: ops for index, ops in ops_by_document.items() if ops}
        if not work:
            return prefix + self.text
        expected: dict[int, Any] = {}
        editor = TextEditor(self.text, self.newline, [d.node for d in self.documents])
        for index, ops in sorted(work.items()):
            if not 0 <= index < len(self.documents):
                raise EditError(
                    f"document index {index} is out of range: "
                    f"the file has {len(self.documents)} documents"
                )
            document = self.documents[index]
            try:
                expected[index] = jsonpatch.apply_patch(
                    copy.deepcopy(document.value), [dict(op) for op in ops]
                )
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise EditError(f"document {index + 1}: the ops do not apply: {exc}") from None
            if document.node is None:
                raise EditError(f"document {index + 1} has no content to edit")
            editor.record_ops(document.node, document.value, ops)
        new_text = editor.result()
        try:
            again = load_values(new_text)
        except SourceError as exc:
            raise EditError(f"the edited text does not parse ({exc})") from None
        if len(again) != len(self.documents):
            raise EditError("the edit changed the number of documents")
        for document, value in zip(self.documents, again, strict=True):
            want = expected.get(document.index, document.value)
            if not same_json(value, want):
                raise EditError(
                    f"document {document.index + 1} (line {document.line}): the edited text does "
                    "not read back as the expected object"
                )
        return prefix + new_text


_TEMPLATE_MARKERS = (
    (re.compile(r"\{\{.*?\}\}"), "Helm template ({{ }})"),
    (re.compile(r"\{%.*?%\}"), "Jinja template ({% %})"),
)
_COMMENT = re.compile(r"(?:^|\s)#")


def file_skip_reason(text: str) -> str | None:
    """Why a file must not be processed (a template, binary data), or None if it looks usable.

    Template markers make a file a template only when they make it something else than the
    YAML the API server would receive: the file does not parse, or a marker stands where
    structure is (in a key, as a whole plain scalar, outside any scalar: a line of its own, a
    flow collection). Markers inside values (a ConfigMap holding a Jinja template, alert
    annotations with ``{{ $labels.instance }}``, dashboards) are data, and in comments nothing.
    The reason names the line of the first marker that decides.
    """
    if "\x00" in text:
        return "binary file (NUL bytes)"
    if "{{" not in text and "{%" not in text:
        return None
    body = text[1:] if text.startswith(BOM) else text
    markers = sorted(
        (match.start(), match.end(), reason)
        for pattern, reason in _TEMPLATE_MARKERS
        for match in pattern.finditer(body)
    )
    if not markers:
        return None
    starts = line_starts(body)
    try:
        roots = [root for root, _ in load_documents(body)]
    except SourceError:
        roots = None
    scalars = _scalar_spans(roots or [])
    begins = [span[0] for span in scalars]
    for start, end, reason in markers:
        line, _ = line_column(starts, start)
        line_text = body[starts[line] : start]
        at = bisect_right(begins, start) - 1
        inside = at >= 0 and scalars[at][1] >= end
        if not inside and _COMMENT.search(line_text):
            # Past a "#" that no scalar holds: a comment (a "#" inside a value is in a scalar).
            hashes = [starts[line] + m.end() - 1 for m in _COMMENT.finditer(line_text)]
            if any(not _in_scalar(scalars, begins, h) for h in hashes):
                continue
        if roots is None:
            return f"{reason}: line {line + 1}"
        if not inside:
            return f"{reason}: line {line + 1}"
        _, _, is_key, plain = scalars[at]
        marker = body[start:end]
        line_end = starts[line + 1] if line + 1 < len(starts) else len(body)
        # A plain scalar's line is structure to a template engine (a block scalar's is not).
        alone = plain and body[starts[line] : line_end].strip() in (marker, f"- {marker}")
        if is_key or alone:
            return f"{reason}: line {line + 1}"
    return None


def _in_scalar(scalars: list[tuple[int, int, bool, bool]], begins: list[int], at: int) -> bool:
    index = bisect_right(begins, at) - 1
    return index >= 0 and scalars[index][1] > at


def _scalar_spans(roots: list[YNode]) -> list[tuple[int, int, bool, bool]]:
    """``(start, end, is_key, plain)`` of every scalar written in the documents, in text order
    (scalars never overlap)."""
    spans: list[tuple[int, int, bool, bool]] = []
    stack: list[tuple[YNode, bool]] = [(root, False) for root in roots]
    while stack:
        node, is_key = stack.pop()
        if node.alias:
            continue
        if node.kind == "scalar":
            spans.append((node.start, node.end, is_key, node.style == ""))
            continue
        for key, value in node.pairs:
            stack.append((key, True))
            stack.append((value, False))
        stack.extend((item, False) for item in node.items)
    spans.sort()
    return spans
