"""Fixtures: a kubeconfig for the fake API server (for faults the real server cannot be made to
show), and one for a port where nothing listens (for what must fail before any request)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.audit.kubeapi import FakeKubeAPI, Server, kubeconfig
from tests.conftest import free_port


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$KUBECONFIG and $HOME point away from the developer's own."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def kube(isolated: None) -> Iterator[FakeKubeAPI]:
    with Server() as api:
        yield api


@pytest.fixture
def config_file(kube: FakeKubeAPI, tmp_path: Path) -> Path:
    """A kubeconfig for the fake server."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(kube.url)), encoding="utf-8")
    return path


@pytest.fixture
def nowhere(isolated: None, tmp_path: Path) -> Path:
    """A kubeconfig for a port where nothing listens: a command that connected would fail with
    "cannot reach the API server" instead of the error a test expects."""
    path = tmp_path / "kubeconfig-nowhere"
    url = f"http://127.0.0.1:{free_port()}"
    path.write_text(yaml.safe_dump(kubeconfig(url)), encoding="utf-8")
    return path
