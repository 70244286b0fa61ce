"""Shared test helpers: where the read-only shared data lives, and how to load YAML as
Kubernetes does."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

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
