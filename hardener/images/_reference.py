"""Image references, normalised the way the container runtimes read them.

``nginx`` is ``docker.io/library/nginx:latest``; ``k8s.gcr.io`` is ``registry.k8s.io`` (the
redirect Kubernetes made in 2023); ``index.docker.io`` is ``docker.io``. The first path
component is a registry host when it holds a ``.`` or a ``:`` or is ``localhost`` (the
distribution reference grammar); a reference with a digest is pinned to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DOCKER_HUB", "Reference", "ReferenceError", "parse_reference"]

DOCKER_HUB = "docker.io"
_ALIASES = {"index.docker.io": DOCKER_HUB, "registry.hub.docker.com": DOCKER_HUB}
_RENAMED = {"k8s.gcr.io": "registry.k8s.io"}
_API_HOSTS = {DOCKER_HUB: "registry-1.docker.io"}

# The distribution reference grammar (distribution/reference regexp.go), simplified to what
# decides validity: lower-case path components joined by separators, a tag, a digest.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")


class ReferenceError(ValueError):
    """An image string that no runtime could pull (a template variable, a typo)."""


@dataclass(frozen=True)
class Reference:
    registry: str
    """The registry host as users write it (``docker.io``, ``localhost:5000``)."""
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host that serves the registry API (Docker Hub's is ``registry-1.docker.io``)."""
        return _API_HOSTS.get(self.registry, self.registry)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(image: str) -> Reference:
    """Normalise an image string, or raise ``ReferenceError`` saying what is wrong with it."""
    text = image.strip()
    if not text or text != image:
        raise ReferenceError(f"image {image!r} is empty or has surrounding spaces")
    if any(c in text for c in "${} \t"):
        raise ReferenceError(f"image {image!r} holds a variable reference or a space")
    rest, _, digest = text.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise ReferenceError(f"image {image!r}: {digest!r} is not a digest (algorithm:hex)")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.fullmatch(first):
            raise ReferenceError(f"image {image!r}: {first!r} is not a registry host")
        registry, path = first.lower(), remainder
    else:
        registry, path = DOCKER_HUB, rest
    registry = _ALIASES.get(registry, registry)
    registry = _RENAMED.get(registry, registry)
    tag: str | None = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ReferenceError(f"image {image!r}: {tag!r} is not a valid tag")
    components = path.split("/")
    if not path or not all(_COMPONENT.fullmatch(c) for c in components):
        raise ReferenceError(
            f"image {image!r}: repository {path!r} must be lower-case letters, digits and "
            "separators (. _ -) between slashes"
        )
    if registry == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    if tag is None and not digest:
        tag = "latest"
    return Reference(registry=registry, repository=path, tag=tag, digest=digest or None)
