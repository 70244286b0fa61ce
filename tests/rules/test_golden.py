"""Golden files per rule, driven by the registry.

``tests/rules/<rule id>/`` holds pass, fail and fixed YAML on a bare Pod and on a controller;
what a rule decides beyond them is tested in ``tests/rules/test_<rule>.py``.
For each rule, run alone:
- a pass case produces no ops;
- fixing a fail case gives the fixed file byte for byte, comments kept;
- fixing the fixed file produces no ops;
- the webhook's patch (the ops) applied with jsonpatch to the fail case equals the fixed case.

A folder's optional ``images.yaml`` gives the facts of the images its cases name (image string
to ``user``, ``uid``, ``volumes``); without it the cases run with no facts, under the config's
``images.unknown`` policy. An optional ``config.yaml`` adds top-level config keys (such as
``user-namespaces: always``, which ``user-namespace`` needs to act in a face without a cluster).
"""

from __future__ import annotations

from pathlib import Path

import jsonpatch
import pytest

from hardener.config import Config, parse_config
from hardener.engine import plan as engine_plan
from hardener.image_facts import ImageFacts
from hardener.model import Plan
from hardener.rules import RULES
from tests.conftest import load_all

GOLDEN = Path(__file__).parent
SHAPES = ("pod", "controller")
FILES = ("fail", "fixed", "pass")


def only(rule_id: str) -> Config:
    extra: dict[str, object] = {}
    path = GOLDEN / rule_id / "config.yaml"
    if path.is_file():
        (extra,) = load_all(path.read_text(encoding="utf-8"))
    return parse_config(
        {**extra, "rules": {rule.id: {"enabled": rule.id == rule_id} for rule in RULES}}
    )


def facts(rule_id: str) -> dict[str, ImageFacts]:
    path = GOLDEN / rule_id / "images.yaml"
    if not path.is_file():
        return {}
    (table,) = load_all(path.read_text(encoding="utf-8"))
    return {
        image: ImageFacts(
            reference=image,
            source="table",
            user=entry["user"],
            uid=entry.get("uid"),
            volumes=tuple(entry.get("volumes", ())),
        )
        for image, entry in table.items()
    }


def plan(doc: object, config: Config) -> Plan:
    rule_id = next(rule.id for rule in RULES if config.rule(rule.id).enabled)
    return engine_plan(doc, config, images=facts(rule_id))


def read(rule_id: str, shape: str, name: str) -> str:
    return (GOLDEN / rule_id / f"{shape}-{name}.yaml").read_text(encoding="utf-8")


CASES = [(rule.id, shape) for rule in RULES for shape in SHAPES]


def test_every_rule_has_golden_files() -> None:
    missing = [
        f"{rule.id}/{shape}-{name}.yaml"
        for rule in RULES
        for shape in SHAPES
        for name in FILES
        if not (GOLDEN / rule.id / f"{shape}-{name}.yaml").is_file()
    ]
    assert not missing, f"rules without golden files: {missing}"
    folders = {p.name for p in GOLDEN.iterdir() if p.is_dir() and not p.name.startswith("_")}
    unknown = folders - {rule.id for rule in RULES}
    assert not unknown, f"golden folders for rules that do not exist: {unknown}"


def test_every_rule_has_a_behaviour_test_file() -> None:
    """Golden files show one fix each; what else a rule decides is tested in its own file."""
    missing = [
        name
        for name in (f"test_{rule.id.replace('-', '_')}.py" for rule in RULES)
        if not (GOLDEN / name).is_file()
    ]
    assert not missing, f"rules without tests/rules/test_<rule>.py: {missing}"


@pytest.mark.parametrize(("rule_id", "shape"), CASES)
def test_pass_case_produces_no_ops(rule_id: str, shape: str) -> None:
    (doc,) = load_all(read(rule_id, shape, "pass"))
    assert plan(doc, only(rule_id)).ops == []


@pytest.mark.parametrize(("rule_id", "shape"), CASES)
def test_fixed_case_produces_no_ops(rule_id: str, shape: str) -> None:
    (doc,) = load_all(read(rule_id, shape, "fixed"))
    assert plan(doc, only(rule_id)).ops == []


@pytest.mark.parametrize(("rule_id", "shape"), CASES)
def test_patch_turns_fail_into_fixed(rule_id: str, shape: str) -> None:
    (failing,) = load_all(read(rule_id, shape, "fail"))
    (fixed,) = load_all(read(rule_id, shape, "fixed"))
    result = plan(failing, only(rule_id))
    assert result.ops, "a fail case must produce ops"
    assert all(change.rule == rule_id for change in result.changes)
    assert jsonpatch.apply_patch(failing, result.ops) == fixed


@pytest.mark.parametrize(("rule_id", "shape"), CASES)
def test_fixer_turns_fail_into_fixed_byte_for_byte(rule_id: str, shape: str) -> None:
    from hardener.fixer.source import SourceFile

    text = read(rule_id, shape, "fail")
    source = SourceFile.parse(text)
    ops = {doc.index: plan(doc.value, only(rule_id)).ops for doc in source.documents}
    assert source.apply(ops) == read(rule_id, shape, "fixed")
