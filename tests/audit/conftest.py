"""Fixtures: a fake API server per test and a kubeconfig that points the real client at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.audit.kubeapi import FakeKubeAPI, Server, kubeconfig


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with Server() as api:
        yield api


@pytest.fixture
def config_file(kube: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig for the fake server; $KUBECONFIG and $HOME point away from the real ones."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(kube.url)), encoding="utf-8")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return path
