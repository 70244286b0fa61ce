"""The engine against the Pod Security Admission fixtures.

For every restricted ``fail`` fixture (every version in ``../shared`` when present, else the
newest version's copy in ``tests/data/pss``):
- when the fixture fails only because fields are absent (every violation of its check is
  fixable), the hardened pod passes that check;
- otherwise the offending fields are left exactly as they were, and the engine reports the
  check as a finding.

The fixtures run ``registry.k8s.io/pause``; the engine is given its facts (``USER
65535:65535`` since pause 3.5), as a lookup would give them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from hardener import parse_config, plan
from hardener.image_facts import ImageFacts
from hardener.model import PointerError
from hardener.pointer import resolve
from hardener.pss import CHECKS, evaluate
from tests._shared import shared_or_copy

ROOT = shared_or_copy("fixtures/pss") / "restricted"
_IDS = {check.id.lower(): check.id for check in CHECKS}


def _fixtures() -> list[Path]:
    return sorted(ROOT.glob("v1.*/fail/*.yaml"))


def _check_of(path: Path) -> str:
    return _IDS[re.sub(r"\d+$", "", path.stem).lower()]


def _value(obj: Any, pointer: str) -> Any:
    try:
        return resolve(obj, pointer)
    except PointerError:
        return "<absent>"


FIXTURES = _fixtures()
IMAGES = {
    "registry.k8s.io/pause": ImageFacts(
        reference="registry.k8s.io/pause:latest", source="table", user="65535:65535"
    )
}


def test_fixtures_are_found() -> None:
    assert len(FIXTURES) >= 70


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_restricted_fail_fixture(path: Path) -> None:
    version = path.parents[1].name
    check = _check_of(path)
    pod = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    config = parse_config({"level": "restricted", "version": version})
    before = [v for v in evaluate(pod, level="restricted", version=version) if v.check == check]
    result = plan(pod, config, images=IMAGES)
    patched = jsonpatch.apply_patch(pod, result.ops)
    after = [v for v in evaluate(patched, level="restricted", version=version) if v.check == check]
    if before and all(v.fixable for v in before):
        assert after == [], f"{check} still violated after hardening: {after}"
        return
    for violation in before:
        # An explicit value the user set: a field, not the container or pod a violation about
        # an absent field points at.
        if not violation.fixable and not isinstance(_value(pod, violation.pointer), dict | list):
            assert _value(patched, violation.pointer) == _value(pod, violation.pointer), (
                f"the engine changed {violation.pointer}, which the user set explicitly"
            )
    if after:
        assert any(f.check == check for f in result.findings), (
            f"{check} is still violated but the engine reports no finding for it"
        )
