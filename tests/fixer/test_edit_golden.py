"""Golden files for surgical edits: input, ops and the exact expected bytes, one style each.

Each folder of ``tests/golden/edit`` holds ``input.yaml`` (or ``.json``) and ``ops.json``
(document index -> RFC 6902 ops), plus either ``expected.*`` (the output, byte for byte) or
``error.txt`` (text the EditError must contain: the edit is refused, never written).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from hardener.fixer.source import EditError, SourceFile
from hardener.model import Operation
from tests.fixer.diffcheck import comment_count, touched_lines, value_lines

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "edit"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def _read(path: Path) -> str:
    # Decode without touching line endings or the BOM: the file is compared byte for byte.
    return path.read_bytes().decode("utf-8")


def _case(name: str) -> tuple[str, dict[int, list[Operation]], Path]:
    folder = GOLDEN / name
    source = next(folder.glob("input.*"))
    raw = json.loads((folder / "ops.json").read_text())
    return _read(source), {int(k): v for k, v in raw.items()}, folder


def test_every_style_has_a_golden() -> None:
    wanted = {
        "crlf", "bom", "no-final-newline", "mixed-sequences", "four-space-indent",
        "empty-flow-mapping", "flow-collections", "comment-before-block", "anchors",
        "multi-document", "quoted-keys", "block-scalars", "yaml11-scalars", "null-values",
        "scalar-replace", "trailing-whitespace", "json-pretty", "json-compact",
    }  # fmt: skip
    assert wanted <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_golden_edit(name: str) -> None:
    text, ops, folder = _case(name)
    source = SourceFile.parse(text)
    error = folder / "error.txt"
    if error.exists():
        with pytest.raises(EditError, match=None) as caught:
            source.apply(ops)
        assert error.read_text().strip() in str(caught.value)
        return
    expected_path = next(folder.glob("expected.*"))
    output = source.apply(ops)
    assert output.encode("utf-8") == expected_path.read_bytes()
    # The output means exactly the original with the ops applied, and nothing else moved.
    again = SourceFile.parse(output)
    for document in source.documents:
        want: Any = copy.deepcopy(document.value)
        if document.index in ops:
            want = jsonpatch.apply_patch(want, [dict(op) for op in ops[document.index]])
        assert again.documents[document.index].value == want
    assert again.bom == source.bom
    assert again.newline == source.newline
    unrelated = touched_lines(text, output) - value_lines(source, ops)
    assert not unrelated, f"lines changed that the ops do not concern: {sorted(unrelated)}"
    assert comment_count(output) == comment_count(text)


@pytest.mark.parametrize("name", CASES)
def test_golden_edit_is_idempotent_with_no_ops(name: str) -> None:
    text, _, _ = _case(name)
    assert SourceFile.parse(text).apply({}) == text
    assert SourceFile.parse(text).apply({0: []}) == text


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("json")])
def test_json_goldens_stay_json(name: str) -> None:
    text, ops, _ = _case(name)
    output = SourceFile.parse(text).apply(ops)
    assert json.loads(output) == jsonpatch.apply_patch(json.loads(text), [dict(o) for o in ops[0]])
