"""Surgical edits: emitted values mean exactly the JSON value, ops compose, refusals are safe."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardener.fixer._emit import block_lines, flow_text, scalar_text
from hardener.fixer.source import EditError, SourceFile
from hardener.model import Operation

POD = """\
kind: Pod
spec:
  containers:
  - name: app
    image: nginx
"""


def _apply(text: str, *ops: Operation, index: int = 0) -> str:
    return SourceFile.parse(text).apply({index: list(ops)})


def _value(text: str, index: int = 0) -> Any:
    return SourceFile.parse(text).documents[index].value


def _add(path: str, value: Any) -> Operation:
    return {"op": "add", "path": path, "value": value}


def _replace(path: str, value: Any) -> Operation:
    return {"op": "replace", "path": path, "value": value}


# --------------------------------------------------------------------------- emitted scalars
TRICKY = [
    "yes", "no", "on", "off", "y", "n", "Y", "true", "False", "null", "Null", "~", "",
    "0644", "0o14", "0x1F", "0b101", "1e3", "1.5e3", ".inf", "-.Inf", ".nan", "1_000", "1:30",
    "2024-01-02", "=", "<<", "- a", "-a", "? x", ":x", "a: b", "a #b", "a#b", "#x", "x:",
    "&a", "*a", "!tag", "|", ">", "'q'", '"q"', "%x", "@x", "`x", "[a]", "{a}", "a, b",
    " lead", "trail ", "two\nlines", "tab\there", "\x07bell", "é→ü", "---", "...", "\ufeffbom",
]  # fmt: skip


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_read_back_as_strings(text: str) -> None:
    for quote in ('"', "'"):
        block = f"key: {scalar_text(text, quote)}\n"
        assert _value(block) == {"key": text}, block
        flow = f"key: [{scalar_text(text, quote, flow=True)}, {flow_text({text: text}, quote)}]\n"
        assert _value(flow) == {"key": [text, {text: text}]}, flow


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (420, "420"),
        (-3, "-3"),
        (0.5, "0.5"),
        (1e20, "1.0e+20"),
        (1e-7, "1.0e-07"),
        (float("inf"), ".inf"),
        ({}, "{}"),
        ([], "[]"),
        ("nginx:1.25", "nginx:1.25"),
        ("RuntimeDefault", "RuntimeDefault"),
        ("0644", '"0644"'),
    ],
)
def test_scalars_are_written_plainly_when_safe(value: Any, text: str) -> None:
    assert scalar_text(value) == text
    assert _value(f"k: {text}\n") == {"k": value}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(value=json_values)
def test_any_json_value_round_trips_as_block_and_flow(value: Any) -> None:
    for quote in ('"', "'"):
        lines = block_lines("key", value, 2, map_indent=2, seq_indent=0, item_indent=2, quote=quote)
        text = "root:\n" + "\n".join(lines) + "\n"
        assert _value(text) == {"root": {"key": value}}, text
        flow = f"root: {flow_text(value, quote)}\n"
        assert _value(flow) == {"root": value}, flow


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(value=json_values, name=st.text(min_size=1, max_size=8))
def test_any_added_member_reads_back_in_every_layout(value: Any, name: str) -> None:
    layouts = [
        POD,
        POD.replace("  - name", "    - name").replace("    image", "      image"),
        '{"kind": "Pod", "spec": {"containers": [{"name": "app", "image": "nginx"}]}}\n',
        '{\n  "spec": {\n    "containers": [\n      {\n        "name": "app"\n'
        "      }\n    ]\n  }\n}\n",
        "spec: {containers: [{name: app}]}\n",
    ]
    for text in layouts:
        source = SourceFile.parse(text)
        expected = source.documents[0].value
        expected["spec"]["containers"][0][name] = value
        pointer = "/spec/containers/0/" + name.replace("~", "~0").replace("/", "~1")
        if name in source.documents[0].value["spec"]["containers"][0]:
            continue
        output = source.apply({0: [_add(pointer, value)]})
        assert SourceFile.parse(output).documents[0].value == expected
        if text.startswith("{"):
            assert json.loads(output) == expected


# --------------------------------------------------------------------------- composing ops
def test_ops_into_a_value_added_by_an_earlier_op_are_merged() -> None:
    output = _apply(
        POD,
        _add("/spec/securityContext", {"runAsNonRoot": True}),
        _add("/spec/securityContext/seccompProfile", {"type": "RuntimeDefault"}),
        _add("/spec/containers/0/volumeMounts", []),
        _add("/spec/containers/0/volumeMounts/-", {"name": "tmp", "mountPath": "/tmp"}),
    )
    assert output == POD + (
        "    volumeMounts:\n"
        "    - name: tmp\n"
        "      mountPath: /tmp\n"
        "  securityContext:\n"
        "    runAsNonRoot: true\n"
        "    seccompProfile:\n"
        "      type: RuntimeDefault\n"
    )


def test_appending_twice_keeps_the_order_of_the_ops() -> None:
    output = _apply(
        POD, _add("/spec/containers/-", {"name": "b"}), _add("/spec/containers/-", {"name": "c"})
    )
    assert output == POD + "  - name: b\n  - name: c\n"


def test_add_at_the_end_index_appends() -> None:
    output = _apply(POD, _add("/spec/containers/1", {"name": "b"}))
    assert output == POD + "  - name: b\n"


def test_replacing_a_mapping_only_writes_the_differences() -> None:
    text = "spec:\n  securityContext: # kept\n    runAsUser: 1000 # kept too\n"
    output = _apply(
        text,
        _replace("/spec/securityContext", {"runAsUser": 1000, "runAsNonRoot": True}),
    )
    assert output == text + "    runAsNonRoot: true\n"


def test_replacing_with_the_same_value_changes_nothing() -> None:
    text = "spec:\n  replicas: 0x10 # hex\n"
    assert _apply(text, _replace("/spec/replicas", 16)) == text


def test_a_scalar_is_replaced_in_place_keeping_its_comment() -> None:
    text = "spec:\n  hostNetwork: yes   # why?\n  x: 1\n"
    assert _apply(text, _replace("/spec/hostNetwork", False)) == (
        "spec:\n  hostNetwork: false   # why?\n  x: 1\n"
    )


def test_a_block_scalar_replaced_by_a_scalar_keeps_the_lines_after_it() -> None:
    text = "a: |\n  one\n  two\n\nb: 1\n"
    assert _apply(text, _replace("/a", "x")) == "a: x\n\nb: 1\n"


def test_an_alias_value_can_be_replaced() -> None:
    text = "base: &b 1\nspec:\n  x: *b\n"
    assert _apply(text, _replace("/spec/x", 2)) == "base: &b 1\nspec:\n  x: 2\n"


def test_an_anchor_nobody_uses_does_not_block_edits() -> None:
    text = "spec: &s\n  a: 1\n"
    assert _apply(text, _add("/spec/b", 2)) == text + "  b: 2\n"


def test_merge_keys_allow_new_keys_but_not_merged_ones() -> None:
    text = "base: &b {x: 1}\nspec:\n  <<: *b\n  y: 2\n"
    assert _apply(text, _add("/spec/z", 3)) == text + "  z: 3\n"
    with pytest.raises(EditError, match="'<<' merge"):
        _apply(text, _replace("/spec/x", 5))


def test_flow_collections_with_a_trailing_comma() -> None:
    assert _apply("a: [x, y,]\n", _add("/a/-", "z")) == "a: [x, y, z,]\n"
    text = "a: {\n  b: 1,\n}\n"
    assert _apply(text, _add("/a/c", 2)) == "a: {\n  b: 1,\n  c: 2,\n}\n"


def test_second_document_edit_leaves_the_first_alone() -> None:
    text = "a: 1\n---\nb: 2\n"
    assert _apply(text, _add("/c", 3), index=1) == "a: 1\n---\nb: 2\nc: 3\n"


def test_json_members_use_the_file_indentation_and_separator() -> None:
    text = '{\n\t"a": 1\n}\n'.replace("\t", "   ")
    assert _apply(text, _add("/b", {"c": [1]})) == (
        '{\n   "a": 1,\n   "b": {\n      "c": [\n         1\n      ]\n   }\n}\n'
    )


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("text", "op", "message"),
    [
        (POD, _replace("", {}), "whole document"),
        (POD, _add("/spec/containers/0", {"name": "x"}), "middle of a sequence"),
        (POD, _add("/spec/nope/x", 1), "do not apply"),
        (POD, {"op": "remove", "path": "/kind"}, "do not apply|unsupported op"),
        ("spec:\n  a:\n    b: 1\n", _replace("/spec/a", 5), "block collection"),
        ("spec:\n  a:\n    b: 1\n    c: 2\n", _replace("/spec/a", {"b": 1}), "removing 'c'"),
        ("a: [x, y # note\n  ]\n", _add("/a/-", "z"), "comment at the end of a flow"),
    ],
)
def test_unsafe_edits_are_refused(text: str, op: Any, message: str) -> None:
    with pytest.raises(EditError, match=message):
        _apply(text, op)


def test_an_unknown_document_index_is_refused() -> None:
    with pytest.raises(EditError, match="document index 3 is out of range"):
        SourceFile.parse(POD).apply({3: [_add("/x", 1)]})


def test_tab_indented_json_keeps_its_tabs() -> None:
    text = '{\n\t"a": 1,\n\t"b": [\n\t\t1\n\t],\n\t"c": {}\n}\n'
    output = _apply(
        text,
        _add("/b/-", 2),
        _add("/c/k", "v"),
        _add("/d", {"x": [1]}),
    )
    assert output == (
        '{\n\t"a": 1,\n\t"b": [\n\t\t1,\n\t\t2\n\t],\n\t"c": {\n\t\t"k": "v"\n\t},\n'
        '\t"d": {\n\t\t"x": [\n\t\t\t1\n\t\t]\n\t}\n}\n'
    )
    assert json.loads(output) == {"a": 1, "b": [1, 2], "c": {"k": "v"}, "d": {"x": [1]}}


def test_old_mac_line_endings_are_kept() -> None:
    text = "a:\r  b: 1\r"
    source = SourceFile.parse(text)
    assert source.newline == "\r"
    assert source.apply({0: [_add("/a/c", 2)]}) == "a:\r  b: 1\r  c: 2\r"


def test_a_flow_document_in_a_yaml_file_gets_yaml_not_json() -> None:
    assert _apply("--- {a: 1}\n", _add("/b", {"c": "yes"})) == '--- {a: 1, b: {c: "yes"}}\n'


@pytest.mark.parametrize("text", ["0:?", "a?b", "?x"])
def test_a_question_mark_in_flow_is_quoted(text: str) -> None:
    """PyYAML cannot read ``0:?`` as a plain scalar inside a flow collection (found by the
    property test above): ``?`` is quoted there."""
    for quote in ('"', "'"):
        assert _value(f"root: {flow_text({text: [text]}, quote)}\n") == {"root": {text: [text]}}
