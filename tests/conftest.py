"""Shared test helpers: where the read-only shared data lives, and how to load YAML as
Kubernetes does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver import K8S, APIServer
from tests.apiserver import start as start_apiserver
from tests.apiserver import stop as stop_apiserver

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def load_all(text: str) -> list[Any]:
    """Documents as Kubernetes reads them (YAML 1.1, libyaml)."""
    return [doc for doc in yaml.load_all(text, Loader=yaml.CSafeLoader) if doc is not None]


def shared_path(*parts: str) -> Path | None:
    path = SHARED.joinpath(*parts)
    return path if path.exists() else None


@pytest.fixture
def shared() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared is not present beside the repository")
    return SHARED


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServer]:
    """The session's real kube-apiserver (tests using it carry ``@pytest.mark.apiserver``)."""
    if not K8S.is_dir():
        pytest.skip(f"{K8S} is not present beside the repository: no kube-apiserver to test with")
    server = start_apiserver(tmp_path_factory.mktemp("kube-apiserver"))
    try:
        yield server
    finally:
        stop_apiserver(server)
