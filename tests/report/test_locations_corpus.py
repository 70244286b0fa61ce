"""Every location the fixer reports points at the right place of the original file.

A change's line and column must be those of the deepest part of its pointer that the original
document has: the existing key it completes (``securityContext:``, ``spec:``), or the sequence
item it goes into (a container's ``- name:`` line). Checked on the small files in
``tests/report/data`` and, when present, on every file of ``../shared/corpus``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.fixer.run import fix_text
from hardener.pointer import split
from tests.report.factory import DATA, corpus_paths


def _paths() -> list[Path]:
    return sorted(DATA.glob("*.yaml")) + corpus_paths()


def _deepest(value: Any, pointer: str) -> str | int | None:
    """The last token of ``pointer`` that ``value`` has (``None``: not even the first)."""
    last: str | int | None = None
    node = value
    for token in split(pointer):
        if isinstance(node, dict) and token in node:
            node, last = node[token], token
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node, last = node[int(token)], int(token)
        else:
            break
    return last


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.name)
def test_change_locations(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    result = fix_text(text, str(path))
    if result.fixed is None:
        return
    body = text.removeprefix("\ufeff")
    lines = [line.rstrip("\r") for line in body.split("\n")]
    values = [d for d in yaml.load_all(body, Loader=yaml.CSafeLoader)]
    by_index = dict(enumerate(values))
    checked = 0
    for document in result.documents:
        value = by_index.get(document.index)
        for change in document.changes:
            token = _deepest(value, change.pointer)
            at = lines[change.line - 1][change.column - 1 :]
            if token is None:
                continue  # a member of the document root: placed at the document
            if isinstance(token, int):
                assert at.startswith(("-", "{")), (change, at)
            else:
                assert at.startswith((token, f'"{token}"', f"'{token}'")), (change, at)
            checked += 1
    assert checked, "a changed file must have located changes"
