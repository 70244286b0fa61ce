"""Paths, tools and rendering shared by the deploy/ tests."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())

# Overlays made only for the tests: the components combined with each TLS overlay, in the
# order docs/deploy.md tells users to list them.
COMBINATIONS: dict[str, tuple[str, list[str]]] = {
    "self-managed+warn-mode": ("self-managed", ["warn-mode"]),
    "self-managed+fail-closed+pods-only": ("self-managed", ["fail-closed", "pods-only"]),
    "cert-manager+pods-only": ("cert-manager", ["pods-only"]),
    "cert-manager+registry-credentials": ("cert-manager", ["registry-credentials"]),
}
TARGETS = ["base", *OVERLAYS, *COMBINATIONS]

Obj = dict[str, Any]


def find_tool(name: str, distribution: str) -> Path:
    """The executable ``name`` installed by the PyPI package ``distribution``.

    Looks beside the running interpreter first (a venv's bin/), then in the package's own
    file list, then on PATH, so a system-wide copy is only a last resort.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == name:
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    found = shutil.which(name)
    if found:
        return Path(found)
    pytest.fail(f"{name} not found: install the test extras (pip install -e '.[test]')")


def copy_deploy(destination: Path) -> Path:
    """Copy deploy/ without any locally generated TLS files."""
    root = destination / "deploy"
    shutil.copytree(DEPLOY, root)
    tls = root / "overlays" / "self-managed" / "tls"
    for path in tls.iterdir():
        if path.name != ".gitignore":
            path.unlink()
    return root


def render(kubectl: Path, directory: Path) -> list[Obj]:
    """``kubectl kustomize directory``, parsed. Fails the test with kubectl's error."""
    result = subprocess.run(
        [str(kubectl), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


class RenderError(Exception):
    pass


def pick(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    """The one object of ``kind`` (and ``name``) in ``objects``."""
    matches = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]
