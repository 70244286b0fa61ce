"""The two builds: pure Python (``pip install .``) and compiled (``HARDENER_COMPILE=1``).

The suite runs on both (``.ci/run``). ``HARDENER_EXPECT_VARIANT`` (``pure`` or ``compiled``)
says which one the run is meant to test, so that a compiled run that silently imported the
Python sources fails here instead of passing as a second pure run.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import pytest

from hardener import RULES, default_config, plan
from hardener.cli import main, variant
from hardener.image_facts import ImageFacts, ImageUser
from hardener.pss import evaluate

ROOT = Path(__file__).resolve().parents[1]


def _backend() -> ModuleType:
    sys.path.insert(0, str(ROOT / "_build"))
    try:
        return importlib.import_module("hardener_build")
    finally:
        sys.path.remove(str(ROOT / "_build"))


def _module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _is_extension(module: ModuleType) -> bool:
    return (module.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))


def test_version_says_which_variant_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("hardener ")
    assert f"({variant()}, Python " in out
    engine = importlib.import_module("hardener.engine")
    assert variant() == ("compiled" if _is_extension(engine) else "pure")


def test_the_expected_variant_runs_whole() -> None:
    """Every module the build compiles is an extension module in a compiled run and Python
    source in a pure one: never half of each."""
    modules = [importlib.import_module(_module_name(p)) for p in _backend().COMPILED]
    compiled = [m.__name__ for m in modules if _is_extension(m)]
    expected = os.environ.get("HARDENER_EXPECT_VARIANT") or variant()
    assert expected in ("pure", "compiled")
    assert variant() == expected
    assert compiled == ([m.__name__ for m in modules] if expected == "compiled" else [])


def test_the_core_that_plan_runs_is_in_the_compiled_list() -> None:
    names = {_module_name(p) for p in _backend().COMPILED}
    for path in _backend().COMPILED:
        assert (ROOT / path).is_file(), path
    for rule in RULES:
        assert rule.apply.__module__ in names, rule.id
    assert {"hardener.engine", "hardener.patch", "hardener.locate", "hardener.pss"} <= names


def test_rule_docs_survive_the_compile() -> None:
    """A compiled module keeps no docstring; ``Rule.doc`` reads it from the source beside it."""
    for rule in RULES:
        path = ROOT / "hardener" / "rules" / (rule.apply.__module__.rpartition(".")[2] + ".py")
        source = path.read_text(encoding="utf-8")
        assert rule.doc, rule.id
        assert rule.doc.splitlines()[0] in source, rule.id
        assert "FAIL" in rule.doc, rule.id


def test_the_backend_asks_for_mypy_only_for_a_compiled_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = _backend()
    monkeypatch.delenv("HARDENER_COMPILE", raising=False)
    assert backend.get_requires_for_build_wheel() == []
    assert backend.get_requires_for_build_editable() == []
    for value in ("0", "", "no"):
        monkeypatch.setenv("HARDENER_COMPILE", value)
        assert backend.get_requires_for_build_wheel() == []
    monkeypatch.setenv("HARDENER_COMPILE", "1")
    requires = backend.get_requires_for_build_wheel()
    assert any(r.startswith("mypy") for r in requires)
    assert backend.get_requires_for_build_editable() == requires


def test_a_plain_build_is_a_pure_wheel_that_needs_no_compiler(tmp_path: Path) -> None:
    """``pip wheel .`` without ``HARDENER_COMPILE``, with every C compiler made to fail."""
    # A copy of what the build reads, so that the build leaves nothing in the checkout.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
    for name in ("_build", "hardener"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k != "HARDENER_COMPILE"}
    env.update(CC="/bin/false", CXX="/bin/false", LDSHARED="/bin/false")
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = wheels.glob("hardener-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hardener/engine.py" in names
    assert "hardener/rules/run_as_user.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".c"))]
    assert not [n for n in names if n.startswith(("_build/", "setup.py"))]


def test_records_cross_a_process_boundary() -> None:
    """``fix -j`` pickles the config to its workers and the plans back: a compiled frozen
    record refuses the attribute stores pickle rebuilds it with, so each is pickled through
    its constructor (``hardener.records``)."""
    config = default_config()
    assert pickle.loads(pickle.dumps(config)) == config
    pod = {
        "kind": "Pod",
        "metadata": {"name": "web", "annotations": {"hardener.dev/skip-rules": "nope"}},
        "spec": {"containers": [{"name": "app", "image": "nginx", "securityContext": {}}]},
    }
    facts = {"nginx": ImageFacts(reference="nginx", source="registry", user="0", uid=0)}
    result = plan(pod, config, images=facts)
    assert result.changes and result.findings
    copy = pickle.loads(pickle.dumps(result))
    assert (copy.ops, copy.changes, copy.findings, copy.decisions) == (
        result.ops,
        result.changes,
        result.findings,
        result.decisions,
    )
    assert pickle.loads(pickle.dumps(facts)) == facts
    user = ImageUser(uid=0, name=None)
    assert pickle.loads(pickle.dumps(user)) == user
    violations = evaluate(pod)
    assert violations and pickle.loads(pickle.dumps(violations)) == violations
    for rule in RULES:
        assert pickle.loads(pickle.dumps(rule)) == rule
