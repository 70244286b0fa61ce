"""A rendered stream of manifests handed over by another tool, hardened in memory.

This is what ``hardener post-render`` works on: the manifests ``helm install|upgrade|template``
renders, read on stdin and written back on stdout. The stream goes through ``fix_text``, the
same text-preserving edit as ``hardener fix``, so the ``---`` separators, Helm's
``# Source:`` comments and every other byte outside a changed line stay as they were.

Before anything is changed the whole stream is checked, so that bad input gives one clear
error and no output at all (``StreamError``): text that is not YAML, a document that is not a
Kubernetes object, an object without a name, two objects with the same identity.

Two kinds of objects pass through untouched (``leave_alone``): Helm hooks, whose lifecycle
Helm manages apart from the release, and CustomResourceDefinitions. The identity and the
validation are shared with the KRM function (``resourcelist``) and the Kustomize emitter
(``kustomize``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hardener.config import Config
from hardener.fixer.documents import is_kubernetes_object, object_label
from hardener.fixer.fastload import FastLoadError, load_fast
from hardener.fixer.run import FixOptions, fix_text
from hardener.fixer.source import SourceError, SourceFile
from hardener.image_facts import ImageFacts
from hardener.model import HardenerError
from hardener.results import FileResult

__all__ = [
    "HOOK_ANNOTATION",
    "Identity",
    "StreamError",
    "StreamObject",
    "StreamResult",
    "expand",
    "harden_stream",
    "identity",
    "is_local_config",
    "leave_alone",
    "read_objects",
    "template_names",
    "validate_objects",
]

HOOK_ANNOTATION = "helm.sh/hook"
FILENAME_ANNOTATION = "postrenderer.helm.sh/postrender-filename"
_SOURCE_COMMENT = re.compile(r"^# Source: (.+?)\s*$")
LOCAL_CONFIG_ANNOTATION = "config.kubernetes.io/local-config"
_KUSTOMIZE_GROUP = "kustomize.config.k8s.io/"


class StreamError(HardenerError):
    """Input that cannot be hardened as a whole; ``where`` is ``source:line`` or ``source``."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class Identity:
    """What makes an object unique in a stream, as Helm and Kustomize see it."""

    group: str
    version: str
    kind: str
    namespace: str | None
    name: str

    def label(self) -> str:
        api = f"{self.group}/{self.version}" if self.group else self.version
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({api})"


@dataclass(frozen=True)
class StreamObject:
    """One object of a stream: its value, the line it starts on and a pointer to it within
    its document (``""`` for a whole document, ``/items/3`` inside a list)."""

    value: Any
    line: int
    pointer: str = ""


def _is_hook(value: dict[str, Any]) -> bool:
    metadata = value.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return isinstance(annotations, dict) and HOOK_ANNOTATION in annotations


def leave_alone(value: Any) -> str | None:
    """Why an object passes through a stream untouched (a Helm hook, a CRD), or ``None``."""
    if not isinstance(value, dict):
        return None
    if value.get("kind") == "CustomResourceDefinition":
        return "CustomResourceDefinition: passed through untouched"
    if _is_hook(value):
        hook = value["metadata"]["annotations"][HOOK_ANNOTATION]
        return f"Helm hook ({hook}): passed through untouched"
    return None


def is_local_config(value: dict[str, Any]) -> bool:
    """Configuration that is never deployed: a Kustomization or Component, or an object
    annotated ``config.kubernetes.io/local-config: "true"`` (a Kptfile, a function config)."""
    if str(value.get("apiVersion", "")).startswith(_KUSTOMIZE_GROUP):
        return True
    metadata = value.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return isinstance(annotations, dict) and str(annotations.get(LOCAL_CONFIG_ANNOTATION)) == "true"


def identity(value: dict[str, Any]) -> Identity:
    """The identity of a Kubernetes object (``is_kubernetes_object`` holds, the name is set)."""
    api_version: str = value["apiVersion"]
    group, _, version = api_version.rpartition("/")
    metadata = value.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    namespace = metadata.get("namespace")
    return Identity(
        group=group,
        version=version,
        kind=value["kind"],
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        name=str(metadata.get("name")),
    )


def read_objects(text: str, source: str) -> list[StreamObject]:
    """The non-empty documents of ``text``, with their first line. Raises ``StreamError``
    for text that is not YAML (libyaml first, the round-trip parser for what it declines)."""
    try:
        return [StreamObject(d.value, d.line) for d in load_fast(text) if d.value is not None]
    except FastLoadError as exc:
        if exc.final:
            raise StreamError(f"{source}:{exc.line}", exc.message) from None
    try:
        documents = SourceFile.parse(text).documents
    except SourceError as exc:
        raise StreamError(f"{source}:{exc.line}", f"not valid YAML: {exc.message}") from None
    return [StreamObject(d.value, d.line) for d in documents if d.value is not None]


def expand(objects: Iterable[StreamObject]) -> Iterator[StreamObject]:
    """The objects, with the items of a ``List`` in place of the list."""
    for obj in objects:
        value = obj.value
        kind = value.get("kind") if isinstance(value, dict) else None
        items = value.get("items") if isinstance(value, dict) else None
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            for index, item in enumerate(items):
                yield StreamObject(item, obj.line, f"{obj.pointer}/items/{index}")
        else:
            yield obj


def validate_objects(objects: Iterable[StreamObject], source: str) -> list[Identity]:
    """Check that every object is a named Kubernetes object and that no identity repeats;
    the identities in order. Raises ``StreamError`` naming the object and what to do.

    A Helm hook may share its identity with a regular object: Helm creates hooks apart from
    the release (Helm 3.21 and 4 hand both to the post-renderer).
    """
    seen: dict[tuple[Identity, bool], int] = {}
    identities = []
    for obj in expand(objects):
        where = f"{source}:{obj.line}"
        item = f" (item {obj.pointer})" if obj.pointer else ""
        if not is_kubernetes_object(obj.value):
            raise StreamError(
                where,
                f"object{item} is not a Kubernetes object (it needs apiVersion and kind); "
                "remove it or fix the template that renders it",
            )
        metadata = obj.value.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or not name:
            raise StreamError(
                where,
                f"{object_label(obj.value)}{item} has no metadata.name; every object needs "
                "a name to be applied or patched",
            )
        ident = identity(obj.value)
        key = (ident, _is_hook(obj.value))
        if key in seen:
            raise StreamError(
                where,
                f"{ident.label()}{item} appears twice (first at line {seen[key]}); the API "
                "server would keep only one of them, so remove or rename one",
            )
        seen[key] = obj.line
        identities.append(ident)
    return identities


@dataclass
class StreamResult:
    """A hardened stream: ``result.fixed`` is the new text (``None`` when nothing changes),
    ``result.documents`` the changes and findings, ``templates`` the Helm template each
    document came from, by the line it starts on."""

    result: FileResult
    templates: dict[int, str] = field(default_factory=dict)


def template_names(text: str, objects: Sequence[StreamObject]) -> dict[int, str]:
    """The Helm template of each document, by its first line: the
    ``postrenderer.helm.sh/postrender-filename`` annotation (Helm 3.21 and 4), else the
    ``# Source:`` comment before the document (Helm 3)."""
    lines = text.splitlines()
    names: dict[int, str] = {}
    previous = 0
    for obj in objects:
        metadata = obj.value.get("metadata") if isinstance(obj.value, dict) else None
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        name = annotations.get(FILENAME_ANNOTATION) if isinstance(annotations, dict) else None
        if not isinstance(name, str):
            for line in lines[previous : obj.line - 1]:
                match = _SOURCE_COMMENT.match(line)
                if match is not None:
                    name = match.group(1)
        if isinstance(name, str):
            names[obj.line] = name
        previous = obj.line
    return names


def harden_stream(
    text: str,
    config: Config,
    source: str = "<stdin>",
    images: Mapping[str, ImageFacts] | None = None,
) -> StreamResult:
    """Harden every object of a rendered stream, leaving hooks and CRDs alone; ``images``
    holds the facts of the images it names, as for ``fix``.

    Raises ``StreamError`` for bad input or when the stream cannot be edited safely; nothing
    is half done.
    """
    objects = read_objects(text, source)
    validate_objects(objects, source)
    options = FixOptions(
        config=config, write=False, rendered=True, leave_alone=leave_alone, images=images
    )
    result = fix_text(text, source, options)
    if result.error:
        where = f"{source}:{result.error_line}" if result.error_line is not None else source
        raise StreamError(where, result.error)
    return StreamResult(result, template_names(text, objects))
