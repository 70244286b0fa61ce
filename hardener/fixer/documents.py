"""Which documents of a file hardener works on, and why it leaves the others alone.

A document is worked on when it is a Kubernetes object (a mapping with ``apiVersion`` and
``kind``) that is complete enough to harden. Two kinds of documents are left alone, each with
a reason a person can act on:

- YAML that is not a Kubernetes object (Helm values, CI configs, ...);
- partial objects such as Kustomize patches: a pod spec without ``containers``, or containers
  without an ``image``. Hardening a patch would add fields that the patch then forces onto
  the base, which is not what its author asked for.
"""

from __future__ import annotations

from typing import Any

from hardener.locate import CONTAINER_FIELDS, pod_spec_places
from hardener.pointer import join

__all__ = ["describe", "holds_pods", "is_kubernetes_object", "object_label", "object_skip_reason"]


def is_kubernetes_object(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("apiVersion"), str)
        and bool(value.get("apiVersion"))
        and isinstance(value.get("kind"), str)
        and bool(value.get("kind"))
    )


def describe(value: Any) -> tuple[str, str | None, str | None]:
    """``(kind, namespace, name)`` of a document; empty kind when it is not an object."""
    if not isinstance(value, dict):
        return "", None, None
    kind = value.get("kind")
    metadata = value.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    return (
        kind if isinstance(kind, str) else "",
        namespace if isinstance(namespace, str) else None,
        name if isinstance(name, str) else None,
    )


def object_label(value: Any) -> str:
    """``Deployment default/web``: how messages name an object."""
    kind, namespace, name = describe(value)
    where = f"{namespace}/{name}" if namespace and name else (name or "(unnamed)")
    return f"{kind or 'object'} {where}"


def object_skip_reason(value: Any) -> str | None:
    """Why a document is left alone, or ``None`` when hardener should work on it.

    Empty documents (``None``) are not skipped here: they simply have nothing to harden.
    """
    if value is None:
        return None
    if not is_kubernetes_object(value):
        return "not a Kubernetes object (no apiVersion and kind)"
    for path, spec in pod_spec_places(value):
        pointer = join(path)
        if not isinstance(spec, dict):
            continue  # a wrong type is the engine's to report, with the field
        containers = spec.get("containers")
        if containers is None:
            return (
                f"partial object, e.g. a Kustomize patch: the pod spec at {pointer or '/'} "
                "has no containers"
            )
        for field in CONTAINER_FIELDS:
            items = spec.get(field)
            if not isinstance(items, list):
                continue
            for index, container in enumerate(items):
                if isinstance(container, dict) and not container.get("image"):
                    name = container.get("name")
                    label = f'"{name}"' if isinstance(name, str) else f"{field}[{index}]"
                    return (
                        f"partial object, e.g. a Kustomize patch: container {label} at "
                        f"{pointer}/{field}/{index} has no image"
                    )
    return None


def holds_pods(value: Any) -> bool:
    """Whether the document has a pod spec where ``hardener.locate`` looks for one."""
    return any(True for _ in pod_spec_places(value))
