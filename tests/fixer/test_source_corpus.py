"""Property test over real manifests: surgical edits keep every unrelated line and comment.

For every document with a pod spec in ``../shared/corpus`` and ``../shared/fixtures/pss`` (its
copy in ``tests/data/pss`` when ``../shared`` is not there), ops are built the way the engine
builds them (securityContext members at pod and container level, ``ALL`` appended to an
existing ``capabilities.drop``, a volume and a mount appended or created), and once more with
the engine itself. Then, per file:

1. the edited text parses back to exactly ``jsonpatch.apply_patch(value, ops)`` per document
   (``SourceFile.apply`` checks this itself and raises EditError otherwise);
2. no original line is changed or removed, except lines holding a value the ops had to change
   in place (``{}``, ``null``, a flow collection);
3. the number of comment lines is unchanged.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from hardener.engine import plan
from hardener.fixer.source import EditError, SourceError, SourceFile, file_skip_reason
from hardener.locate import pod_sites
from hardener.model import HardenerError, Operation
from hardener.pointer import join
from tests._shared import need, needs, shared, shared_or_copy
from tests.fixer.diffcheck import comment_count, touched_lines, value_lines

# The 4,000 PSS fixtures of ../shared are small variations of one another: every 4th one keeps
# the suite quick while still covering each check and level. (The copy in tests/data, one
# version, runs whole.)
PSS_EVERY = 4

POD_WANTS = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_WANTS = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def _op(op: str, path: tuple[Any, ...], value: Any) -> Operation:
    return {"op": "add" if op == "add" else "replace", "path": join(path), "value": value}


def _security_context_ops(
    path: tuple[Any, ...], holder: dict[str, Any], wanted: dict[str, Any]
) -> list[Operation]:
    base = (*path, "securityContext")
    if "securityContext" not in holder:
        return [_op("add", base, wanted)]
    current = holder["securityContext"]
    if current is None:
        return [_op("replace", base, wanted)]
    if not isinstance(current, dict):
        return []
    ops: list[Operation] = []
    for key, value in wanted.items():
        caps = current.get(key)
        if key == "capabilities" and isinstance(caps, dict):
            drop = caps.get("drop")
            if isinstance(drop, list) and "ALL" not in drop:
                ops.append(_op("add", (*base, key, "drop", "-"), "ALL"))
            elif "drop" not in caps:
                ops.append(_op("add", (*base, key, "drop"), ["ALL"]))
        elif key not in current:
            ops.append(_op("add", (*base, key), value))
        elif current[key] is None:
            ops.append(_op("replace", (*base, key), value))
    return ops


def _append_or_create(
    path: tuple[Any, ...], holder: dict[str, Any], key: str, item: Any
) -> list[Operation]:
    current = holder.get(key)
    if isinstance(current, list):
        return [_op("add", (*path, key, "-"), item)]
    if current is None:
        return [_op("replace" if key in holder else "add", (*path, key), [item])]
    return []


def engine_like_ops(obj: Any) -> list[Operation]:
    try:
        sites = list(pod_sites(obj))
    except HardenerError:
        return []
    ops: list[Operation] = []
    for site in sites:
        ops += _security_context_ops(site.spec_path, site.spec, POD_WANTS)
        for container in site.containers:
            ops += _security_context_ops(container.path, container.container, CONTAINER_WANTS)
            mount = {"name": "hardener-tmp", "mountPath": "/tmp"}
            ops += _append_or_create(container.path, container.container, "volumeMounts", mount)
        volume = {"name": "hardener-tmp", "emptyDir": {}}
        ops += _append_or_create(site.spec_path, site.spec, "volumes", volume)
    return ops


def engine_ops(obj: Any) -> list[Operation]:
    try:
        return list(plan(obj).ops)
    except HardenerError:
        return []


def _files(root: Path, every: int = 1) -> list[Path]:
    if not root.is_dir():
        return []
    found = sorted(
        p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()
    )
    return found[::every]


def corpus_figures(
    make_ops: Callable[[Any], list[Operation]], files: list[Path]
) -> tuple[Counter[str], list[str]]:
    """Edit every file in memory; the figures and the problems found."""
    figures: Counter[str] = Counter()
    problems: list[str] = []
    for path in files:
        figures["files"] += 1
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            figures["not utf-8"] += 1
            continue
        if file_skip_reason(text) is not None:
            figures["skipped (template)"] += 1
            continue
        try:
            source = SourceFile.parse(text)
        except SourceError:
            figures["not parsed (duplicate keys, invalid YAML...)"] += 1
            continue
        ops = {d.index: o for d in source.documents if (o := make_ops(copy.deepcopy(d.value)))}
        if not ops:
            continue
        try:
            output = source.apply(ops)
        except EditError as exc:
            figures["edit refused"] += 1
            problems.append(f"{path}: {exc}")
            continue
        # Read back with PyYAML's own C loader, independently of the fixer's reader.
        before = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
        after = list(yaml.load_all(output, Loader=yaml.CSafeLoader))
        for index, document_ops in ops.items():
            want = jsonpatch.apply_patch(before[index], [dict(o) for o in document_ops])
            if after[index] != want:
                problems.append(f"{path}: document {index} does not read back as expected")
        if [v for i, v in enumerate(after) if i not in ops] != [
            v for i, v in enumerate(before) if i not in ops
        ]:
            problems.append(f"{path}: a document without ops changed")
        figures["files edited"] += 1
        figures["documents edited"] += len(ops)
        figures["ops"] += sum(len(o) for o in ops.values())
        touched = touched_lines(text, output)
        allowed = value_lines(source, ops)
        figures["lines added"] += len(output.splitlines()) - len(text.splitlines()) + len(touched)
        figures["value lines changed in place"] += len(touched & allowed)
        figures["unrelated lines touched"] += len(touched - allowed)
        for line in sorted(touched - allowed):
            problems.append(f"{path}:{line}: unrelated line touched")
        if comment_count(output) != comment_count(text):
            problems.append(
                f"{path}: comment lines {comment_count(text)} -> {comment_count(output)}"
            )
        if output.endswith(("\n", "\r")) != text.endswith(("\n", "\r")):
            problems.append(f"{path}: final newline changed")
        if source.newline == "\n" and "\r\n" in output and "\r\n" not in text:
            problems.append(f"{path}: CRLF introduced")
    return figures, problems


@needs("corpus")
@pytest.mark.parametrize("make_ops", [engine_like_ops, engine_ops], ids=["engine-like", "engine"])
def test_corpus_edits_touch_only_what_they_must(make_ops: Callable[[Any], list[Operation]]) -> None:
    figures, problems = corpus_figures(make_ops, _files(need("corpus")))
    assert figures["files edited"] > 100, figures
    assert not problems, "\n".join(problems[:40])
    assert figures["unrelated lines touched"] == 0


def test_pss_fixture_edits_touch_only_what_they_must() -> None:
    every = PSS_EVERY if shared("fixtures/pss") is not None else 1
    figures, problems = corpus_figures(engine_ops, _files(shared_or_copy("fixtures/pss"), every))
    assert figures["files edited"] > 100, figures
    assert not problems, "\n".join(problems[:40])
    assert figures["unrelated lines touched"] == 0


if __name__ == "__main__":
    for label, make_ops in (("engine-like", engine_like_ops), ("engine", engine_ops)):
        for name, files in (
            ("corpus", _files(need("corpus"))),
            ("pss fixtures", _files(need("fixtures/pss"))),
        ):
            found, trouble = corpus_figures(make_ops, files)
            print(f"{label} ops on {name}: {dict(found)}; problems: {len(trouble)}")
            for problem in trouble[:20]:
                print("  ", problem)
