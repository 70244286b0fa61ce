"""Conformance with the Pod Security Admission fixtures: every pass pod admitted, every fail pod
rejected, and rejected by the check its file name names.

The fixtures come from ``../shared/fixtures/pss`` (every version) when that folder exists,
and always from the copy of the newest version in ``tests/data/pss``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from hardener.pss import CHECKS, LEVELS, OVERRIDES, active_checks, evaluate
from tests._shared import copy_of, missing, shared

SHARED = shared("fixtures/pss")
COPY = copy_of("fixtures/pss")
SOURCES = [root for root in (SHARED, COPY) if root is not None]

_IDS = {check.id.lower(): check.id for check in CHECKS}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _groups(root: Path) -> list[tuple[Path, str, str]]:
    return sorted(
        (version_dir, level, version_dir.name)
        for level in LEVELS
        for version_dir in (root / level).glob("v1.*")
        if version_dir.is_dir()
    )


def _check_of(path: Path) -> str:
    """``capabilities_restricted2.yaml`` -> ``capabilities_restricted``."""
    stem = re.sub(r"\d+$", "", path.stem).lower()
    if stem not in _IDS:
        raise AssertionError(f"{path}: file name names no known check ({stem!r})")
    return _IDS[stem]


def _expected_checks(check_id: str, level: str, version: str) -> set[str]:
    """The checks that may reject a pod failing ``check_id``.

    At the restricted level a baseline check can be replaced by the restricted check that
    overrides it (``hostPathVolumes`` by ``restrictedVolumes``, ...), as PSA does.
    """
    running = {c.id for c in active_checks(level, version)}
    if check_id in running:
        return {check_id}
    return {new for new, old in OVERRIDES.items() if check_id in old and new in running}


def _verdicts(version_dir: Path, level: str, version: str) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    wrong: list[str] = []
    for path in sorted(version_dir.glob("*/*.yaml")):
        kind = path.parent.name
        pod = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        found = evaluate(pod, level=level, version=version)
        if kind == "pass":
            if found:
                wrong.append(f"{path}: pass pod rejected: {[v.message for v in found]}")
        elif kind == "fail":
            expected = _expected_checks(_check_of(path), level, version)
            if not expected:
                wrong.append(f"{path}: {_check_of(path)} does not run at {level} {version}")
            elif not expected & {v.check for v in found}:
                got = [f"{v.check}: {v.message}" for v in found] or "admitted"
                wrong.append(f"{path}: expected a {sorted(expected)} violation, got {got}")
        else:
            continue
        counts[kind] += 1
    return counts, wrong


GROUPS = [
    pytest.param(version_dir, level, version, id=f"{root.parent.name}-{level}-{version}")
    for root in SOURCES
    for version_dir, level, version in _groups(root)
]


def test_fixtures_are_there() -> None:
    assert COPY.is_dir(), "the local copy tests/data/pss is missing"
    for level in LEVELS:
        assert list((COPY / level / "v1.35" / "fail").glob("*.yaml")), level
        assert list((COPY / level / "v1.35" / "pass").glob("*.yaml")), level


@pytest.mark.parametrize(("version_dir", "level", "version"), GROUPS)
def test_fixtures_conform(version_dir: Path, level: str, version: str) -> None:
    counts, wrong = _verdicts(version_dir, level, version)
    assert counts["pass"] and counts["fail"], f"{version_dir}: no fixtures"
    assert not wrong, "\n".join(wrong)


def test_conformance_totals() -> None:
    """Every fixture counted once per source, with the totals printed (``pytest -s``)."""
    for root in SOURCES:
        totals: Counter[tuple[str, str]] = Counter()
        mismatches = 0
        for version_dir, level, version in _groups(root):
            counts, wrong = _verdicts(version_dir, level, version)
            mismatches += len(wrong)
            for kind, n in counts.items():
                totals[(level, kind)] += n
        on_disk = len(list(root.glob("*/v1.*/*/*.yaml")))
        print(
            f"PSS conformance ({root.resolve()}): "
            + ", ".join(
                f"{lv} {kind} {totals[(lv, kind)]}" for lv in LEVELS for kind in ("pass", "fail")
            )
            + f"; {sum(totals.values()) - mismatches}/{on_disk} conform"
        )
        assert sum(totals.values()) == on_disk
        assert mismatches == 0


def test_local_copy_matches_shared() -> None:
    copies = sorted(COPY.glob("*/*/*/*.yaml"))
    assert copies
    if SHARED is None:
        pytest.skip(missing("fixtures/pss"))  # the copy itself is exercised above
    for copy in copies:
        original = SHARED / copy.relative_to(COPY)
        assert original.read_bytes() == copy.read_bytes(), f"{copy} differs from {original}"
