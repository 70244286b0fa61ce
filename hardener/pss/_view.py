"""The evaluator's view of a pod spec: what every check reads (``PodView``, ``ContainerView``)
and what it yields (``Problem``).

Objects are read the way the API server would decode them: ``null`` is the same as an
absent field, and what is not an object is read as empty. A ``Problem`` carries the message,
the path of the offending field (or of the container / pod spec when the problem is a field
that is absent), the container concerned, and whether the problem is only an absent field
that hardener fills in.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from hardener.locate import CONTAINER_FIELDS, PodSite, declares_windows
from hardener.model import preview
from hardener.pss._version import Version

__all__ = ["ContainerView", "Holder", "JsonPath", "PodView", "Problem", "quote"]

JsonPath = tuple[str | int, ...]


class Problem(NamedTuple):
    message: str
    path: JsonPath
    container: str | None = None
    fixable: bool = False


# The views are built for every pod evaluated: plain slotted classes, cheaper to build than
# frozen ones. Nothing changes them after ``PodView.build``.


@dataclass(slots=True, eq=False)
class ContainerView:
    name: str
    path: JsonPath
    data: Mapping[str, Any]
    sc: Mapping[str, Any]
    """The securityContext, or ``{}`` when it is absent or not an object."""
    sc_raw: Any
    sc_invalid: bool
    """A securityContext is set, and it is not an object."""

    @property
    def sc_path(self) -> JsonPath:
        return (*self.path, "securityContext")

    @property
    def label(self) -> str:
        return _container_label(self.name)

    @property
    def container(self) -> str | None:
        """The container a problem here is reported for."""
        return self.name


@dataclass(slots=True, eq=False)
class PodView:
    spec: Mapping[str, Any]
    metadata: Mapping[str, Any]
    spec_path: JsonPath
    meta_path: JsonPath
    containers: tuple[ContainerView, ...]
    sc: Mapping[str, Any]
    sc_raw: Any
    sc_invalid: bool
    version: Version
    windows: bool
    """``spec.os.name`` is ``windows``."""
    in_user_namespace: bool
    """``hostUsers: false``: the pod runs in its own user namespace."""
    sc_fields: set[Any]
    """Every field that the pod's or a container's securityContext has (even ``null``): a
    check about a field that none has is done before it looks at a container."""

    @property
    def sc_path(self) -> JsonPath:
        return (*self.spec_path, "securityContext")

    @property
    def label(self) -> str:
        return "pod"

    @property
    def container(self) -> str | None:
        return None

    @property
    def holders(self) -> tuple[PodView | ContainerView, ...]:
        """The pod and its containers: everything with a securityContext, in document order."""
        return (self, *self.containers)

    @classmethod
    def build(
        cls, spec: Any, metadata: Any, spec_path: JsonPath, meta_path: JsonPath, version: Version
    ) -> PodView:
        """The view of a pod spec of any shape: what is not an object is read as empty."""
        spec_map: Mapping[str, Any] = spec if isinstance(spec, dict) else {}
        meta_map: Mapping[str, Any] = metadata if isinstance(metadata, dict) else {}
        containers: list[ContainerView] = []
        for field in CONTAINER_FIELDS:
            items = spec_map.get(field)
            if not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                name = item.get("name")
                containers.append(
                    _container_view(
                        item,
                        name if isinstance(name, str) else f"{field}[{index}]",
                        (*spec_path, field, index),
                    )
                )
        return cls._assemble(spec_map, meta_map, spec_path, meta_path, containers, version)

    @classmethod
    def of_site(cls, site: PodSite, version: Version) -> PodView:
        """The view of a pod site: ``pod_sites`` found its containers (all objects) and named
        them the way ``build`` does."""
        containers = [_container_view(c.container, c.name, c.path) for c in site.containers]
        return cls._assemble(
            site.spec, site.metadata, site.spec_path, site.meta_path, containers, version
        )

    @classmethod
    def _assemble(
        cls,
        spec: Mapping[str, Any],
        metadata: Mapping[str, Any],
        spec_path: JsonPath,
        meta_path: JsonPath,
        containers: list[ContainerView],
        version: Version,
    ) -> PodView:
        sc_raw = spec.get("securityContext")
        sc = sc_raw if isinstance(sc_raw, dict) else _EMPTY
        sc_fields = set(sc)
        for c in containers:
            sc_fields.update(c.sc)
        return cls(
            spec=spec,
            metadata=metadata,
            spec_path=spec_path,
            meta_path=meta_path,
            containers=tuple(containers),
            sc=sc,
            sc_raw=sc_raw,
            sc_invalid=sc is _EMPTY and sc_raw is not None,
            version=version,
            windows=declares_windows(spec),
            in_user_namespace=spec.get("hostUsers") is False,
            sc_fields=sc_fields,
        )


def _container_view(data: Mapping[str, Any], name: str, path: JsonPath) -> ContainerView:
    sc_raw = data.get("securityContext")
    sc = sc_raw if isinstance(sc_raw, dict) else _EMPTY
    return ContainerView(
        name=name,
        path=path,
        data=data,
        sc=sc,
        sc_raw=sc_raw,
        sc_invalid=sc is _EMPTY and sc_raw is not None,
    )


Holder = PodView | ContainerView
"""What has a securityContext: the pod (``label`` "pod", no container) or a container."""

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


@functools.lru_cache(maxsize=1024)
def _container_label(name: str) -> str:
    # Every problem of a container names it, often several times a pod.
    return f"container {quote(name)}"


def quote(value: Any) -> str:
    """Go's ``%q`` for the strings seen in pod specs: a double-quoted string.

    An array or an object (the wrong type) that holds another one is named by type and size:
    ``str`` of one nested a thousand deep recurses past Python's limit."""
    if isinstance(value, list | dict) and any(
        isinstance(item, list | dict)
        for item in (value.values() if isinstance(value, dict) else value)
    ):
        return preview(value)
    text = value if isinstance(value, str) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
