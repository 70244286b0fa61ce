"""Parity: what ``fix`` writes, read back, is what the webhook's patch gives.

For every document of every file in the manifest corpus and every pod of the PSA fixtures, the
fixed text parsed with PyYAML's libyaml loader (not the fixer's own readers) must equal the
original document with the engine's operations applied by ``jsonpatch``, which is exactly what
the admission webhook returns. The local copies in ``tests`` run always; the full sets in
``../shared`` run when that folder is present.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from hardener.config import default_config
from hardener.engine import plan
from hardener.fixer.run import FixOptions, fix_text
from tests._shared import copy_of, shared

CORPORA = [
    root
    for root in (Path(__file__).parent / "data" / "run-corpus", shared("corpus"))
    if root is not None
]
FIXTURES = [root for root in (copy_of("fixtures/pss"), shared("fixtures/pss")) if root is not None]
CONFIG = default_config()
# The only reason a corpus file may fail: it is ambiguous, so it is reported and left alone.
ALLOWED_ERRORS = ("duplicate key",)


def canonical(value: Any) -> str:
    """JSON text that tells true from 1 and 1 from 1.0 (timestamps stay whatever libyaml made)."""
    return json.dumps(value, sort_keys=True, default=repr)


def documents(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=yaml.CSafeLoader))


def parity_problems(path: Path) -> tuple[str, list[str]]:
    """The outcome for one file (changed, unchanged, skipped, error) and what is wrong."""
    text = path.read_bytes().decode("utf-8")
    result = fix_text(text, str(path), FixOptions(write=False))
    if result.error is not None:
        if any(reason in result.error for reason in ALLOWED_ERRORS):
            return "error", []
        return "error", [f"{path}: unexpected error: {result.error}"]
    if result.skipped is not None and not result.documents:
        return "skipped", []  # a template, never parsed
    skipped = {d.index for d in result.documents if d.skipped}
    originals = documents(text)
    expected = []
    for index, original in enumerate(originals):
        if index in skipped or not isinstance(original, dict) or "kind" not in original:
            expected.append(original)
        else:
            expected.append(jsonpatch.apply_patch(original, plan(original, CONFIG).ops))
    if not result.changed:
        if [canonical(v) for v in expected] != [canonical(v) for v in originals]:
            return "unchanged", [f"{path}: left unchanged although the engine plans operations"]
        return "skipped" if result.skipped else "unchanged", []
    assert result.fixed is not None
    got = documents(result.fixed)
    if len(got) != len(expected):
        return "changed", [f"{path}: {len(got)} documents after the fix, {len(expected)} expected"]
    problems = [
        f"{path}: document {index + 1} differs from the webhook's result"
        for index, (a, b) in enumerate(zip(got, expected, strict=True))
        if canonical(a) != canonical(b)
    ]
    return "changed", problems


def corpus_groups() -> list[Any]:
    return [
        pytest.param(group, id=f"{root.parent.name}-{group.name}")
        for root in CORPORA
        for group in sorted(root.iterdir())
        if group.is_dir()
    ]


def manifest_files(group: Path) -> list[Path]:
    return sorted(p for p in group.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


@pytest.mark.parametrize("group", corpus_groups())
def test_corpus_parity_with_the_webhook(group: Path) -> None:
    problems: list[str] = []
    for path in manifest_files(group):
        problems.extend(parity_problems(path)[1])
    assert not problems, "\n".join(problems)


def test_local_corpus_outcomes() -> None:
    """The local copy covers each outcome, so the parity test above cannot pass vacuously."""
    root = Path(__file__).parent / "data" / "run-corpus"
    outcomes = {
        str(path.relative_to(root)): parity_problems(path)[0]
        for group in sorted(root.iterdir())
        if group.is_dir()
        for path in manifest_files(group)
    }
    assert len(outcomes) == 11
    assert outcomes["kubernetes__examples/_archived/volumes/scaleio/sc-pvc.yaml"] == "error"
    partial = "zegl__kube-score/score/testdata/security-inherit-pod-security-context.yaml"
    assert outcomes[partial] == "skipped"
    changed = [name for name, outcome in outcomes.items() if outcome == "changed"]
    assert len(changed) == 9


def unique_fixture_pods() -> list[Path]:
    seen: dict[str, Path] = {}
    for root in FIXTURES:
        for path in sorted(root.glob("*/v1.*/*/*.yaml")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            seen.setdefault(digest, path)
    return list(seen.values())


def test_pss_fixture_parity_with_the_webhook() -> None:
    pods = unique_fixture_pods()
    assert len(pods) > 100
    problems: list[str] = []
    outcomes: dict[str, int] = {}
    for path in pods:
        outcome, found = parity_problems(path)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        problems.extend(found)
    assert not problems, "\n".join(problems)
    assert outcomes.get("changed", 0) > 100, outcomes
    assert "error" not in outcomes, outcomes
