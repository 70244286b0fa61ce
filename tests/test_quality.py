"""The house rules, checked: lint, formatting, strict typing, the layer contract, the public
surface."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import hardener

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; install the test extras: pip install -e '.[test]'")
    return path


def _run(*args: str) -> None:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def test_ruff_finds_nothing() -> None:
    _run(_tool("ruff"), "check", "hardener", "tests")


def test_ruff_format_changes_nothing() -> None:
    _run(_tool("ruff"), "format", "--check", "--diff", "hardener", "tests")


def test_mypy_strict_passes() -> None:
    _run(_tool("mypy"), "--cache-dir=/tmp/hardener-mypy-cache")


def test_layer_contracts_hold() -> None:
    _run(_tool("lint-imports"), "--no-cache")


PUBLIC = {
    "RULES",
    "Change",
    "Config",
    "ConfigError",
    "ContainerSite",
    "Finding",
    "HardenerError",
    "InvalidObjectError",
    "Operation",
    "Plan",
    "PodSite",
    "PointerError",
    "Rule",
    "Scope",
    "__version__",
    "default_config",
    "load_config",
    "parse_config",
    "plan",
    "pod_sites",
}


def test_public_surface_is_exactly_all() -> None:
    assert set(hardener.__all__) == PUBLIC
    for name in hardener.__all__:
        assert hasattr(hardener, name), name
    # Submodules become attributes when imported; everything else public must be in __all__.
    exported = {
        name
        for name, value in vars(hardener).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exported <= PUBLIC | {"annotations"}, exported - PUBLIC


def test_rules_doc_is_generated_from_the_registry() -> None:
    from hardener.cli.rules import render_markdown

    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == render_markdown(), (
        "docs/rules.md is stale: run `hardener rules --format markdown > docs/rules.md`"
    )


def test_every_rule_documents_fail_and_fixed() -> None:
    for rule in hardener.RULES:
        assert "FAIL::" in rule.doc and "FIXED::" in rule.doc, rule.id
        assert rule.title and rule.rationale, rule.id
