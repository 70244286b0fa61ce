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

from collections.abc import Iterator
from typing import Any

from hardener.locate import CONTAINER_FIELDS
from hardener.pointer import join

__all__ = ["describe", "holds_pods", "is_kubernetes_object", "object_label", "skip_reason"]

_WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
)

Path = tuple[str | int, ...]


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


def skip_reason(value: Any) -> str | None:
    """Why a document is left alone, or ``None`` when hardener should work on it.

    Empty documents (``None``) are not skipped here: they simply have nothing to harden.
    """
    if value is None:
        return None
    if not is_kubernetes_object(value):
        return "not a Kubernetes object (no apiVersion and kind)"
    for pointer, spec in _pod_specs(value, ()):
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
    return any(True for _ in _pod_specs(value, ()))


def _pod_specs(obj: Any, path: Path) -> Iterator[tuple[str, Any]]:
    """The pod specs where ``hardener.locate`` looks for them, without judging their shape."""
    if not isinstance(obj, dict):
        return
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) else ""
    items = obj.get("items")
    if kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            yield from _pod_specs(item, (*path, "items", index))
        return
    spec = obj.get("spec")
    if kind == "Pod":
        if spec is not None:
            yield join((*path, "spec")), spec
        return
    if kind == "PodTemplate":
        template = obj.get("template")
        if isinstance(template, dict) and template.get("spec") is not None:
            yield join((*path, "template", "spec")), template["spec"]
        return
    if not isinstance(spec, dict):
        return
    if kind == "CronJob":
        job = spec.get("jobTemplate")
        job_spec = job.get("spec") if isinstance(job, dict) else None
        template = job_spec.get("template") if isinstance(job_spec, dict) else None
        pointer = join((*path, "spec", "jobTemplate", "spec", "template", "spec"))
        if isinstance(template, dict) and template.get("spec") is not None:
            yield pointer, template["spec"]
        elif (
            isinstance(job, dict)
            and (job_spec is None or isinstance(job_spec, dict))
            and (template is None or isinstance(template, dict))
        ):
            yield pointer, {}  # a job template without a pod spec: reported as partial
        return
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    template_spec = template.get("spec")
    if template_spec is None:
        return
    if kind in _WORKLOAD_KINDS or (
        isinstance(template_spec, dict) and "containers" in template_spec
    ):
        yield join((*path, "spec", "template", "spec")), template_spec
