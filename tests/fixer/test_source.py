"""SourceFile.parse: values as Kubernetes reads them, exact positions, clear errors."""

from __future__ import annotations

import pytest

from hardener.fixer.source import Document, SourceError, SourceFile, file_skip_reason
from hardener.model import HardenerError

MULTI = """\
# leading comment
---
apiVersion: v1
kind: Pod
metadata:
  name: one
spec:
  containers:
  - name: app
    image: nginx
    ports:
      - containerPort: 80
  -
    name: second
    image: busybox
---

# a comment before the second document
kind: ConfigMap
data: {a: "1", b: [x, y]}
...
"""


def _doc(text: str, index: int = 0) -> Document:
    return SourceFile.parse(text).documents[index]


def test_documents_have_index_value_and_first_content_line() -> None:
    source = SourceFile.parse(MULTI)
    assert [d.index for d in source.documents] == [0, 1]
    assert [d.line for d in source.documents] == [3, 19]
    assert source.documents[1].value == {"kind": "ConfigMap", "data": {"a": "1", "b": ["x", "y"]}}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", (3, 1)),
        ("/kind", (4, 1)),
        ("/metadata/name", (6, 3)),
        ("/spec/containers", (8, 3)),
        ("/spec/containers/0", (9, 3)),  # the `-` of `- name: app`
        ("/spec/containers/0/image", (10, 5)),
        ("/spec/containers/0/ports/0", (12, 7)),  # an indented sequence
        ("/spec/containers/0/ports/0/containerPort", (12, 9)),
        ("/spec/containers/1", (13, 3)),  # a `-` alone on its line
        ("/spec/containers/1/name", (14, 5)),
        # Missing members: the deepest existing ancestor.
        ("/spec/containers/0/securityContext/runAsNonRoot", (9, 3)),
        ("/spec/securityContext", (7, 1)),
        ("/spec/containers/7/image", (8, 3)),
        ("/spec/containers/0/image/x", (10, 5)),
    ],
)
def test_position_in_a_multi_document_file(pointer: str, expected: tuple[int, int]) -> None:
    assert _doc(MULTI).position(pointer) == expected


def test_position_in_flow_collections_and_second_document() -> None:
    document = _doc(MULTI, 1)
    assert document.position("/data") == (20, 1)
    assert document.position("/data/b") == (20, 16)
    assert document.position("/data/b/1") == (20, 23)


def test_position_with_crlf_and_bom() -> None:
    text = "\ufeffkind: Pod\r\nspec:\r\n  containers:\r\n  - name: app\r\n    image: x\r\n"
    source = SourceFile.parse(text)
    assert source.bom is True
    assert source.newline == "\r\n"
    document = source.documents[0]
    assert document.line == 1
    # Columns do not count the BOM.
    assert document.position("/kind") == (1, 1)
    assert document.position("/spec/containers/0") == (4, 3)
    assert document.position("/spec/containers/0/image") == (5, 5)


def test_position_in_a_json_file() -> None:
    text = (
        '{\n  "kind": "Pod",\n  "spec": {\n    "containers": [\n      {"name": "a"}\n'
        "    ]\n  }\n}\n"
    )
    document = _doc(text)
    assert document.value == {"kind": "Pod", "spec": {"containers": [{"name": "a"}]}}
    assert document.position("/kind") == (2, 3)
    assert document.position("/spec/containers") == (4, 5)
    assert document.position("/spec/containers/0") == (5, 7)
    assert document.position("/spec/containers/0/name") == (5, 8)


def test_position_of_non_ascii_content_counts_characters() -> None:
    text = 'metadata:\n  annotations: {note: "é→ü", other: x}\n'
    assert _doc(text).position("/metadata/annotations/other") == (2, 30)


def test_values_follow_yaml_1_1_like_kubernetes() -> None:
    text = """\
a: 0644
b: yes
c: on
d: off
g: ~
h: "0644"
i: 2024-01-02
j: 0x1F
k:
l: 1_000
"""
    value = _doc(text).value
    assert value == {
        "a": 420,
        "b": True,
        "c": True,
        "d": False,
        "g": None,
        "h": "0644",
        "i": "2024-01-02",
        "j": 31,
        "k": None,
        "l": 1000,
    }


def test_non_string_keys_become_json_strings() -> None:
    assert _doc("1: a\ntrue: b\n~: c\n").value == {"1": "a", "true": "b", "null": "c"}


def test_aliases_and_merge_keys_are_resolved() -> None:
    text = "base: &b {x: 1}\nuse:\n  <<: *b\n  y: 2\ncopy: *b\n"
    assert _doc(text).value == {"base": {"x": 1}, "use": {"x": 1, "y": 2}, "copy": {"x": 1}}


def test_empty_documents_are_kept_in_order() -> None:
    source = SourceFile.parse("a: 1\n---\n---\nb: 2\n")
    assert [d.value for d in source.documents] == [{"a": 1}, None, {"b": 2}]
    assert SourceFile.parse("").documents == []
    assert SourceFile.parse("# only a comment\n").documents == []


def test_newline_defaults_and_detection() -> None:
    assert SourceFile.parse("a: 1").newline == "\n"
    assert SourceFile.parse("a: 1\r\nb: 2\r\n").newline == "\r\n"
    assert SourceFile.parse("a: 1\n").bom is False


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", "3:1", "duplicate key 'a' (first at line 1)"),
        ("spec:\n  x: 1\n  'x': 2\n", "3:3", "duplicate key 'x'"),
        ("a:\n\tb: 1\n", "2:1", "tab in indentation"),
        ("a:\n  b: 1\n \tc: 2\n", "3:2", "tab in indentation"),
        ("a: [1, 2\n", "2:1", ""),
        ("a: b: c\n", "1:5", "mapping values are not allowed"),
        ("a: !custom 1\n", "1:4", "could not determine a constructor"),
        ("a: *nope\n", "1:4", "undefined alias"),
        ("? [a]\n: 1\n", "1:3", "a mapping key must be a scalar"),
    ],
)
def test_errors_carry_line_and_column(text: str, where: str, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        SourceFile.parse(text)
    error = caught.value
    assert isinstance(error, HardenerError)
    assert str(error).startswith(where + ": "), str(error)
    assert message in error.message
    assert str(error) == f"{error.line}:{error.column}: {error.message}"


def test_tabs_inside_block_scalars_and_values_are_fine() -> None:
    text = "a: |\n\tindented with a tab inside the scalar\nb: x\tz\n"
    # A tab-led line inside a block scalar is invalid YAML anyway; a tab in a value is not.
    with pytest.raises(SourceError):
        SourceFile.parse(text)
    assert _doc("a: |\n  line\n  \tmore\nb: x\tz\n").value == {"a": "line\n\tmore\n", "b": "x\tz"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("image: {{ .Values.image }}\n", "Helm template ({{ }}): line 1"),
        ('a: 1\n# x\nb:\n{{- include "x" . | nindent 2 }}\n', "Helm template ({{ }}): line 4"),
        ("{% if x %}\na: 1\n{% endif %}\n", "Jinja template ({% %}): line 1"),
        ("a: 1\n'{{ .Values.key }}': x\n", "Helm template ({{ }}): line 2"),
        ("a: 1\nb: [x, {% raw %}]\n", "Jinja template ({% %}): line 2"),
        ("a: 1\nb: x {{ y }}\nc: x\n  {{ z }}\n", "Helm template ({{ }}): line 4"),
        ("a: 1\nb: x {{ y }}\nc: {{ z }}\n", "Helm template ({{ }}): line 2"),  # no parse
        # Markers inside values are what the API server receives: not templates.
        ('name: "{{ include \\"x\\" . }}"\n', None),
        ("summary: Instance {{ $labels.instance }} is down  # {{ x }}\n", None),
        (
            "data:\n  chat: |\n    {% for m in messages %}\n    {{ m.content }}\n"
            "    {% endfor %}\n",
            None,
        ),
        ('{"expr": "sum(up{job=\\"{{job}}\\"})"}\n', None),
        ("a: 1\x00\n", "binary file (NUL bytes)"),
        ("# uses {{ }} only in a comment\na: 1\n", None),
        ("a: 1\n", None),
        ("data: {a: {b: 1}}\n", None),
    ],
)
def test_file_skip_reason(text: str, reason: str | None) -> None:
    assert file_skip_reason(text) == reason
