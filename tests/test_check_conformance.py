"""``check --after-fix`` on the PSA fixtures: what hardener fixes is clean, the rest still shows.

For every restricted ``fail`` fixture (all versions from ``../shared`` when present, the newest
from the local copy always):

- when every violation the evaluator reports is marked fixable, hardening the pod the way
  ``fix`` would leaves it clean at that level and version;
- otherwise every unfixable check still fails after the fix, and no violation the check
  called fixable remains. (``allowPrivilegeEscalation`` on a container that is privileged or
  adds ``SYS_ADMIN`` is not fixable: the API server rejects ``allowPrivilegeEscalation: false``
  next to those, so the engine leaves such a container alone.)
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hardener.cli import main
from hardener.fixer.run import CheckOptions, check_text
from hardener.pss import CHECKS, OVERRIDES
from hardener.results import LocatedFinding
from tests._shared import copy_of, shared

ROOTS = [root for root in (copy_of("fixtures/pss"), shared("fixtures/pss")) if root is not None]
IDS = {check.id.lower(): check.id for check in CHECKS}


def fail_fixtures(root: Path) -> list[tuple[Path, str]]:
    return [
        (path, path.parent.parent.name)
        for path in sorted((root / "restricted").glob("v1.*/fail/*.yaml"))
    ]


def named_check(path: Path) -> str:
    return IDS[re.sub(r"\d+$", "", path.stem).lower()]


def rejecting_checks(path: Path) -> set[str]:
    """The named check, or the restricted checks that replace it at the restricted level."""
    check = named_check(path)
    return {check} | {new for new, old in OVERRIDES.items() if check in old}


def findings(path: Path, version: str, after_fix: bool) -> list[LocatedFinding]:
    options = CheckOptions(level="restricted", version=version, after_fix=after_fix)
    result = check_text(path.read_text(encoding="utf-8"), str(path), options)
    assert result.error is None and result.skipped is None, (path, result.error, result.skipped)
    return [f for d in result.documents for f in d.findings]


@pytest.mark.parametrize("root", ROOTS, ids=[r.parent.name for r in ROOTS])
def test_after_fix_verdicts(root: Path) -> None:
    fixable = unfixable = 0
    problems: list[str] = []
    for path, version in fail_fixtures(root):
        before = findings(path, version, after_fix=False)
        if not rejecting_checks(path) & {f.check_or_rule for f in before}:
            problems.append(f"{path}: not rejected for {named_check(path)} before any fix")
            continue
        after = findings(path, version, after_fix=True)
        if all(f.fixable for f in before):
            fixable += 1
            if after:
                problems.append(f"{path}: still fails after fix: {[f.message for f in after]}")
            continue
        unfixable += 1
        lost = {f.check_or_rule for f in before if not f.fixable} - {f.check_or_rule for f in after}
        if lost:
            problems.append(f"{path}: unfixable checks {sorted(lost)} vanished after fix")
        promised = {(f.check_or_rule, f.container) for f in before if f.fixable}
        for finding in after:
            if (finding.check_or_rule, finding.container) in promised:
                problems.append(f"{path}: {finding.check_or_rule} was called fixable but is left")
    assert not problems, "\n".join(problems[:50])
    assert fixable >= 5 and unfixable >= 20, (fixable, unfixable)


def test_check_after_fix_command_on_fixtures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same verdicts through the command line, on the newest version's fixtures."""
    source = copy_of("fixtures/pss") / "restricted" / "v1.35" / "fail"
    fixable_dir = tmp_path / "fixable"
    unfixable_dir = tmp_path / "unfixable"
    fixable_dir.mkdir()
    unfixable_dir.mkdir()
    expected_checks: set[str] = set()
    for path in sorted(source.glob("*.yaml")):
        before = findings(path, "v1.35", after_fix=False)
        if all(f.fixable for f in before):
            shutil.copy(path, fixable_dir / path.name)
        else:
            shutil.copy(path, unfixable_dir / path.name)
            expected_checks |= {f.check_or_rule for f in before if not f.fixable}
    assert list(fixable_dir.iterdir()) and list(unfixable_dir.iterdir())
    argv = ["check", "--after-fix", "--level", "restricted", "--version", "v1.35"]
    assert main([*argv, "--color", "never", str(fixable_dir)]) == 0
    assert main([*argv, str(fixable_dir)]) == 0
    assert main(["check", "--version", "v1.35", str(fixable_dir)]) == 1
    capsys.readouterr()
    assert main([*argv, "--color", "never", str(unfixable_dir)]) == 1
    out = capsys.readouterr().out
    reported = set(re.findall(r"\[([\w-]+)\]", out))
    assert expected_checks <= reported
