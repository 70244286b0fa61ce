"""Test helpers every area uses: how to load YAML as Kubernetes does, a free port, and the
session's kube-apiserver. (``../shared`` is reached through ``tests/_shared.py``.)

No test reaches a registry on the network: every test runs with ``HARDENER_IMAGES_OFFLINE=1``
(``fix``, ``check`` and ``audit`` use the image cache and the offline table only) and with
``XDG_CACHE_HOME`` in the session's temporary folder, so no cache outside it is read or written.
A test that looks images up in a loopback registry asks for ``images_online``."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
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


@pytest.fixture(scope="session", autouse=True)
def _images_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Lookups off for the whole session, and the default image cache in its temporary
    folder."""
    saved = {name: os.environ.get(name) for name in ("HARDENER_IMAGES_OFFLINE", "XDG_CACHE_HOME")}
    os.environ["HARDENER_IMAGES_OFFLINE"] = "1"
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def images_online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Lookups on for one test (it must reach only a loopback registry), with an empty image
    cache of its own: the ``XDG_CACHE_HOME`` it returns."""
    monkeypatch.delenv("HARDENER_IMAGES_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServer]:
    """The session's real kube-apiserver (tests using it carry ``@pytest.mark.apiserver``)."""
    need("k8s")
    server = start_apiserver(tmp_path_factory.mktemp("kube-apiserver"))
    try:
        yield server
    finally:
        stop_apiserver(server)
