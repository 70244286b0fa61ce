"""A KRM function's input and output: a ``ResourceList`` hardened in place, with ``results``.

This is what ``hardener krm`` works on, following the KRM Functions Specification
(``config.kubernetes.io/v1``, and ``v1beta1`` as older orchestrators send it): Kustomize runs
it as an exec transformer, kpt with ``fn eval --exec`` or in a Kptfile pipeline, Argo CD
through a config management plugin.

- ``items`` are planned one by one with the engine; the operations, moved under
  ``/items/N``, are applied to the ResourceList's own text with the fixer's surgical editor,
  so comments and layout survive, as the specification asks. Helm hooks, CRDs and partial
  objects pass through untouched (``stream.leave_alone``, ``documents.object_skip_reason``),
  and so do the package files orchestrators hand over with the objects: a Kustomization, a
  Kptfile, anything marked ``config.kubernetes.io/local-config``, YAML without apiVersion and kind.
- ``functionConfig`` carries the hardener config (``function_config``): the ``spec`` of a
  ``HardenerConfig`` (group ``hardener.dev``), or the ``data`` of a ``ConfigMap`` (what
  ``kpt fn eval -- profile=baseline`` builds), each value read as YAML. Any other kind was
  meant for another function (the specification's own example passes a
  ``FulfillmentCenter``): the defaults apply and a ``warning`` result says so.
- Every change becomes an ``info`` result and every finding a ``warning`` result, each with
  ``resourceRef``, ``field.path`` and, where the orchestrator annotated the item, ``file``.
  Results already in the input are kept; ours are appended (unless the input holds the old
  ``v1beta1`` mapping form, which is left as it is).

Bad input raises ``StreamError`` before anything is written: not YAML, not a list, no
``items``, an item that is not a named Kubernetes object, two items with the same identity,
a config that does not validate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from hardener.config import Config, default_config, parse_config
from hardener.engine import plan
from hardener.fixer.documents import is_kubernetes_object, object_label, object_skip_reason
from hardener.fixer.source import EditError, SourceError, SourceFile
from hardener.fixer.stream import (
    StreamError,
    StreamObject,
    identity,
    is_local_config,
    leave_alone,
    validate_objects,
)
from hardener.image_facts import ImageFacts
from hardener.locate import image_references
from hardener.model import ConfigError, InvalidObjectError, Operation
from hardener.pointer import split

__all__ = ["ImageLookup", "KrmOutcome", "field_path", "function_config", "harden_resource_list"]

PATH_ANNOTATIONS = ("internal.config.kubernetes.io/path", "config.kubernetes.io/path")
INDEX_ANNOTATIONS = ("internal.config.kubernetes.io/index", "config.kubernetes.io/index")
CONFIG_GROUP = "hardener.dev"
CONFIG_KIND = "HardenerConfig"


@dataclass
class KrmOutcome:
    """The ResourceList text to write and the results it carries."""

    text: str
    results: list[dict[str, Any]] = field(default_factory=list)
    changed_items: int = 0


def function_config(value: Any, where: str) -> tuple[Config, str | None]:
    """The hardener config a ``functionConfig`` carries (the default config when absent), and
    a note when the functionConfig is not a hardener config at all."""
    if value is None:
        return default_config(), None
    if not isinstance(value, dict):
        raise StreamError(where, "functionConfig must be a mapping (a Kubernetes object)")
    label = object_label(value)
    source = f"functionConfig {label}"
    api_version = str(value.get("apiVersion", ""))
    if value.get("kind") != "ConfigMap" and not (
        value.get("kind") == CONFIG_KIND and api_version.startswith(CONFIG_GROUP + "/")
    ):
        return default_config(), (
            f"{source} is not a hardener config (kind {CONFIG_KIND}, apiVersion "
            f"{CONFIG_GROUP}/v1alpha1, or a ConfigMap); the default config applies"
        )
    settings: Any
    if value.get("kind") == "ConfigMap":
        data = value.get("data") or {}
        if not isinstance(data, dict):
            raise StreamError(where, f"{source}: data must be a mapping of strings")
        try:
            settings = {
                key: yaml.load(text, Loader=yaml.CSafeLoader) if isinstance(text, str) else text
                for key, text in data.items()
            }
        except yaml.YAMLError as exc:
            raise StreamError(where, f"{source}: a data value is not YAML: {exc}") from None
    else:
        settings = value.get("spec") or {}
    try:
        return parse_config(settings, source), None
    except ConfigError as exc:
        raise StreamError(where, str(exc)) from None


def field_path(pointer: str) -> str:
    """``/spec/containers/0/securityContext`` as ``spec.containers[0].securityContext``."""
    path = ""
    for token in split(pointer):
        if token.isdigit():
            path += f"[{token}]"
        elif "." in token or "/" in token:
            path += f'["{token}"]'
        else:
            path += f".{token}" if path else token
    return path


def _file_ref(item: dict[str, Any]) -> dict[str, Any] | None:
    metadata = item.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return None
    path = next((annotations[k] for k in PATH_ANNOTATIONS if k in annotations), None)
    if not isinstance(path, str):
        return None
    ref: dict[str, Any] = {"path": path}
    index = next((annotations[k] for k in INDEX_ANNOTATIONS if k in annotations), None)
    if isinstance(index, int) and not isinstance(index, bool):
        ref["index"] = index
    elif isinstance(index, str) and index.isdigit():
        ref["index"] = int(index)
    return ref


def _result(
    item: dict[str, Any], severity: str, message: str, pointer: str, tags: dict[str, str]
) -> dict[str, Any]:
    ident = identity(item)
    ref: dict[str, Any] = {"apiVersion": item["apiVersion"], "kind": ident.kind, "name": ident.name}
    if ident.namespace:
        ref["namespace"] = ident.namespace
    result: dict[str, Any] = {"message": message, "severity": severity, "resourceRef": ref}
    if pointer:
        result["field"] = {"path": field_path(pointer)}
    file_ref = _file_ref(item)
    if file_ref is not None:
        result["file"] = file_ref
    result["tags"] = tags
    return result


def _moved(ops: list[Operation], prefix: str) -> list[Operation]:
    return [Operation(op=op["op"], path=prefix + op["path"], value=op["value"]) for op in ops]


def _passes_through(item: Any) -> bool:
    """Local configuration, or a mapping without apiVersion and kind (orchestrators add their
    path annotations to every file, so ``metadata`` alone does not make an object)."""
    if not isinstance(item, dict):
        return False
    return not is_kubernetes_object(item) or is_local_config(item)


ImageLookup = Callable[[list[str], Config], Mapping[str, ImageFacts]]
"""Facts for the image strings the items name, under the function's config."""


def harden_resource_list(
    text: str, source: str = "<stdin>", look_up: ImageLookup | None = None
) -> KrmOutcome:
    """Harden the items of a ResourceList; the new text, with ``results`` added.

    ``look_up`` learns the facts of the images the items name (all at once, with the config
    of ``functionConfig``), for the engine; without it every image is unknown."""
    try:
        parsed = SourceFile.parse(text)
    except SourceError as exc:
        raise StreamError(f"{source}:{exc.line}", f"not valid YAML: {exc.message}") from None
    documents = [d for d in parsed.documents if d.value is not None]
    if len(documents) != 1:
        raise StreamError(
            source,
            f"expected one ResourceList, found {len(documents)} YAML documents; "
            "a KRM function reads a single ResourceList on stdin",
        )
    document = documents[0]
    where = f"{source}:{document.line}"
    value = document.value
    kind = value.get("kind") if isinstance(value, dict) else None
    if not isinstance(kind, str) or not kind.endswith("List"):
        raise StreamError(
            where,
            "expected a ResourceList (kind: ResourceList, apiVersion: config.kubernetes.io/v1)",
        )
    items = value.get("items")
    if not isinstance(items, list):
        raise StreamError(
            where,
            f"the {kind} has no items list; send 'items: []' when there are no resources",
        )
    # Orchestrators hand over every YAML file of a package: a kustomization.yaml without
    # apiVersion, a Kptfile. Those are not deployed and pass through as they are.
    objects = [
        StreamObject(item, document.position(f"/items/{index}")[0], f"/items/{index}")
        for index, item in enumerate(items)
        if not _passes_through(item)
    ]
    validate_objects(objects, source)
    config, note = function_config(value.get("functionConfig"), where)

    ops: list[Operation] = []
    results: list[dict[str, Any]] = []
    if note is not None:
        results.append({"message": note, "severity": "warning", "tags": {"rule": "config"}})
    changed = 0
    hardened = [
        obj
        for obj in objects
        if object_skip_reason(obj.value) is None and leave_alone(obj.value) is None
    ]
    images: Mapping[str, ImageFacts] | None = None
    if look_up is not None:
        names: dict[str, None] = {}
        for obj in hardened:
            try:
                names.update(dict.fromkeys(image_references(obj.value)))
            except Exception:  # planning the object reports the error with its place
                continue
        images = look_up(list(names), config)
    for obj in hardened:
        item = obj.value
        try:
            planned = plan(item, config, images=images)
        except InvalidObjectError as exc:
            raise StreamError(
                f"{source}:{obj.line}",
                f"{object_label(item)}: {exc.pointer or '/'}: {exc.message}",
            ) from None
        if planned.ops:
            changed += 1
            ops.extend(_moved(planned.ops, obj.pointer))
        for change in planned.changes:
            results.append(
                _result(item, "info", change.message, change.pointer, {"rule": change.rule})
            )
        for finding in planned.findings:
            tags = {"rule": finding.rule}
            if finding.check:
                tags["check"] = finding.check
            results.append(_result(item, "warning", finding.message, finding.pointer, tags))

    if results and kind == "ResourceList":
        existing = value.get("results")
        if isinstance(existing, list):
            ops.extend(Operation(op="add", path="/results/-", value=r) for r in results)
        elif existing is None:
            verb: Literal["add", "replace"] = "replace" if "results" in value else "add"
            ops.append(Operation(op=verb, path="/results", value=results))
    if not ops:
        return KrmOutcome(text=text, results=results, changed_items=changed)
    try:
        new_text = parsed.apply({document.index: ops})
    except EditError as exc:
        raise StreamError(
            where,
            f"internal error: cannot edit the ResourceList safely ({exc}); please report this",
        ) from None
    return KrmOutcome(text=new_text, results=results, changed_items=changed)
