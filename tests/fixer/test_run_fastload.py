"""The fast reader must read exactly what ``SourceFile`` reads, and place pointers the same way.

If it did not, ``fix`` could call a file clean that the full path would change, or ``check``
could name other lines than ``fix``. Compared on crafted texts and on every corpus file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardener.fixer.fastload import FastLoadError, load_fast
from hardener.fixer.run import same_json
from hardener.fixer.source import SourceError, SourceFile
from hardener.pointer import join
from tests._shared import shared

CORPORA = [
    root
    for root in (Path(__file__).parent / "data" / "run-corpus", shared("corpus"))
    if root is not None
]


def pointers(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[str]:
    yield join(path)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from pointers(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from pointers(item, (*path, index))


def assert_same_reading(text: str, positions: bool = True) -> int:
    """Values (and positions) agree; returns the number of pointers compared."""
    fast = load_fast(text)
    slow = SourceFile.parse(text).documents
    assert [d.index for d in fast] == [d.index for d in slow]
    compared = 0
    for a, b in zip(fast, slow, strict=True):
        assert same_json(a.value, b.value)
        assert a.line == b.line or a.value is None
        if not positions:
            continue
        for pointer in [*pointers(a.value), "/spec/nothing/0/x", "/-"]:
            assert a.position(pointer) == b.position(pointer), pointer
            compared += 1
    return compared


YAML11 = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: m
  annotations: {created: 2024-01-02, "quoted": "yes"}
data:
  octal: 0644
  flag: yes
  switch: off
  hex: 0x1F
  float: 1e3
  sexagesimal: 1:20
  nothing: ~
  empty:
  1: one
  true: bool-key
  null: null-key
  text: |
    tab\tinside a block scalar
base: &base {a: 1, b: 2}
merged:
  <<: *base
  b: 3
"""


def test_yaml_1_1_values_and_keys_as_kubernetes_reads_them() -> None:
    [document] = load_fast(YAML11)
    value = document.value
    assert value["data"]["octal"] == 420
    assert value["data"]["flag"] is True and value["data"]["switch"] is False
    assert value["data"]["hex"] == 31 and value["data"]["sexagesimal"] == 80
    assert value["metadata"]["annotations"] == {"created": "2024-01-02", "quoted": "yes"}
    assert {"1", "true", "null"} <= value["data"].keys()
    assert value["merged"] == {"a": 1, "b": 3}
    assert_same_reading(YAML11)


@pytest.mark.parametrize(
    "text",
    [
        "- name: a\n  image: x\n-\n  name: b\n- # note\n  name: c\n- - nested\n  - more\n",
        "items:\n- &x {a: 1}\n- *x\n- [1, 2]\n",
        "\ufeffapiVersion: v1\r\nkind: Pod\r\nspec:\r\n  containers:\r\n  - name: a\r\n",
        "---\n# only a comment\n---\na: 1\n...\n---\n",
        '{"apiVersion": "v1", "kind": "Pod",\n "spec": {"containers": [{"name": "a"}]}}\n',
    ],
)
def test_odd_layouts_read_and_place_the_same(text: str) -> None:
    assert assert_same_reading(text) > 0


@pytest.mark.parametrize(
    ("text", "duplicate"),
    [
        ("a: 1\nb: 2\na: 3\n", True),
        ("a: 1\n'a': 2\n", True),
        ("1: x\n'1': y\n", True),  # the same JSON key
        ("a:\n\t- b\n", False),
        ("a: !!binary aGVsbG8=\n", False),
        ("a: !Ref x\n", False),
        ("[a]: 1\n", False),
        ("a: [\n", False),
    ],
)
def test_declines_what_the_full_parser_must_judge(text: str, duplicate: bool) -> None:
    with pytest.raises(FastLoadError) as caught:
        load_fast(text)
    assert caught.value.final is duplicate
    if duplicate:
        with pytest.raises(SourceError, match="duplicate key"):
            SourceFile.parse(text)


def test_duplicate_key_position() -> None:
    with pytest.raises(FastLoadError) as caught:
        load_fast("kind: Pod\nspec:\n  a: 1\n  a: 2\n")
    assert (caught.value.line, caught.value.column) == (4, 3)
    assert "first at line 3" in caught.value.message


@pytest.mark.parametrize("root", CORPORA, ids=[r.parent.name for r in CORPORA])
def test_corpus_reads_the_same(root: Path) -> None:
    compared = declined = 0
    for path in sorted(root.rglob("*.y*ml")):
        text = path.read_bytes().decode("utf-8")
        try:
            load_fast(text)
        except FastLoadError as exc:
            declined += 1
            assert exc.final, f"{path}: declined: {exc}"
            continue
        # Every pointer of every document, except in the few huge dashboards and configs.
        compared += assert_same_reading(text, positions=len(text) < 50_000)
    assert compared > 1000
    assert declined >= 1  # each corpus has a file with a duplicate key


def test_an_item_below_a_nested_dash_is_placed_at_that_dash() -> None:
    # "- -" then the item on the next line: both readers name the second "-" (line 4,
    # column 3). The fast reader once looked only for a "-" alone on its line.
    text = "a:\n- - x\n  - y\n- -\n    z\n"
    assert assert_same_reading(text) > 0
    [document] = load_fast(text)
    assert document.position("/a/1/0") == (4, 3)
