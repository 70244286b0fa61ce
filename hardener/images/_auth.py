"""Registry credentials and ``Www-Authenticate`` challenges.

Credentials come from one Docker-format auth file, the first that exists of
``$REGISTRY_AUTH_FILE`` (the containers tools' ``auth.json``), ``$DOCKER_CONFIG/config.json``
and ``~/.docker/config.json``. Only ``auths`` entries are read (``auth`` as base64
``user:password``, or ``username`` and ``password``); credential helpers (``credsStore``,
``credHelpers``) run programs and are not used. The webhook mounts its own file; it never reads
the cluster's Secrets.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Challenge",
    "Credentials",
    "auth_file_path",
    "basic_header",
    "load_credentials",
    "parse_challenge",
]

_HUB_KEYS = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


@dataclass(frozen=True)
class Challenge:
    scheme: str
    """``bearer`` or ``basic`` (lower case)."""
    params: dict[str, str]


_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="...",service="...",scope="..."`` or ``Basic realm="..."``."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace(
            '\\"', '"'
        )
        for m in _PARAM.finditer(rest)
    }
    return Challenge(scheme=scheme.lower(), params=params)


@dataclass(frozen=True)
class Credentials:
    """User and password per registry host, from one auth file."""

    by_host: dict[str, tuple[str, str]]
    source: str | None = None

    def for_host(self, *hosts: str) -> tuple[str, str] | None:
        for host in hosts:
            found = self.by_host.get(_host_key(host))
            if found is not None:
                return found
        return None


def _host_key(text: str) -> str:
    host = text.split("://", 1)[-1].split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_KEYS else host


def basic_header(creds: tuple[str, str]) -> str:
    """RFC 7617 ``Basic`` credentials (UTF-8, as registries and token servers expect)."""
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode("ascii")


def auth_file_path() -> Path | None:
    candidates = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("DOCKER_CONFIG"):
        candidates.append(Path(os.environ["DOCKER_CONFIG"]) / "config.json")
    candidates.append(Path.home() / ".docker" / "config.json")
    return next((path for path in candidates if path.is_file()), None)


def load_credentials(path: Path | None) -> Credentials:
    """The ``auths`` of a Docker config file; an unreadable file gives no credentials (and
    the registry's 401 then says which are missing)."""
    if path is None:
        return Credentials(by_host={})
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Credentials(by_host={}, source=str(path))
    auths = data.get("auths") if isinstance(data, dict) else None
    by_host: dict[str, tuple[str, str]] = {}
    for key, entry in (auths or {}).items():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if isinstance(entry.get("auth"), str) and entry["auth"]:
            try:
                decoded = base64.b64decode(entry["auth"]).decode("utf-8")
            except ValueError:
                continue
            user, _, password = decoded.partition(":")
        if isinstance(user, str) and isinstance(password, str) and user:
            by_host[_host_key(str(key))] = (user, password)
    return Credentials(by_host=by_host, source=str(path))
