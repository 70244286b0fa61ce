"""Test helpers every area uses: how to load YAML as Kubernetes does, a free port, and the
session's kube-apiserver. (``../shared`` is reached through ``tests/_shared.py``.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests._shared import need
from tests.apiserver import APIServer
from tests.apiserver import start as start_apiserver
from tests.apiserver import stop as stop_apiserver


def load_all(text: str) -> list[Any]:
    """Documents as Kubernetes reads them (YAML 1.1, libyaml)."""
    return [doc for doc in yaml.load_all(text, Loader=yaml.CSafeLoader) if doc is not None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServer]:
    """The session's real kube-apiserver (tests using it carry ``@pytest.mark.apiserver``)."""
    need("k8s")
    server = start_apiserver(tmp_path_factory.mktemp("kube-apiserver"))
    try:
        yield server
    finally:
        stop_apiserver(server)
