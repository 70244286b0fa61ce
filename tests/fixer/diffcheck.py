"""Which original lines an edit touched, and which of them it was allowed to touch."""

from __future__ import annotations

import difflib
import re

from hardener.fixer._load import YNode
from hardener.fixer.source import SourceFile
from hardener.model import Operation
from hardener.pointer import split

COMMENT = re.compile(r"(?:^|\s)#")


def touched_lines(before: str, after: str) -> set[int]:
    """1-based numbers of original lines that were changed or removed (insertions are free).

    Lines are compared without their line break, so appending after a last line that had no
    final newline does not count as touching it.
    """
    a, b = before.splitlines(), after.splitlines()
    touched: set[int] = set()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            touched.update(range(i1 + 1, i2 + 1))
    return touched


def value_lines(source: SourceFile, ops: dict[int, list[Operation]]) -> set[int]:
    """Lines holding a value the ops had to change in place: the deepest existing node of
    each op's path, when that node is a scalar or flow collection (``{}``, ``null``...)."""
    allowed: set[int] = set()
    for index, document_ops in ops.items():
        root = source.documents[index].node
        assert root is not None
        for op in document_ops:
            node: YNode = root
            key_line = node.line
            for token in split(op["path"]):
                if node.kind == "mapping" and token in node.members:
                    key, node = node.members[token]
                    key_line = key.line
                elif node.kind == "sequence" and token.isdigit() and int(token) < len(node.items):
                    node = node.items[int(token)]
                    key_line = node.line
                else:
                    break
            if node.kind == "scalar" or node.flow or node.alias:
                allowed.update(range(key_line + 1, node.end_line + 2))
    return allowed


def comment_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if COMMENT.search(line))
