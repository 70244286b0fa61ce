"""``hardener fix --emit-kustomize DIR``: the engine's operations as a Kustomize Component.

For bases a team does not own (vendored upstream manifests, remote bases) editing the files
is the wrong answer: the next update overwrites it. Instead the operations ``fix`` would apply
are written, untouched, as one JSON6902 patch per object, and a ``Component`` lists them with
a full target (group, version, kind, name, and namespace when the object has one). An overlay
that adds the component renders to the objects ``fix`` would have written.

JSON6902 ``add`` fails in Kustomize when the parent of the path is missing; the engine's
operations never rely on that (``hardener.patch`` creates missing parents in the value of
the first ``add``), so they are written as the engine made them.

The sources are only read. Everything is built in memory first: a file that cannot be read
or parsed, an object without a name or two objects with the same identity stop the run
before anything is written (``StreamError``). ``DIR`` is then replaced as a whole, and only
when it is new, empty, or a component this command wrote before.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from hardener.config import Config
from hardener.engine import plan
from hardener.fixer.documents import is_kubernetes_object, object_label, object_skip_reason
from hardener.fixer.files import FileReadError, display_path, read_text
from hardener.fixer.source import file_skip_reason
from hardener.fixer.stream import (
    Identity,
    StreamError,
    expand,
    is_local_config,
    read_objects,
    validate_objects,
)
from hardener.image_facts import ImageFacts
from hardener.model import InvalidObjectError, Operation

__all__ = ["Emission", "Patch", "build_component", "write_component"]

KUSTOMIZATION = "kustomization.yaml"
PATCHES = "patches"
MARKER = "# Written by hardener fix --emit-kustomize."


@dataclass(frozen=True)
class Patch:
    """One object's operations and where they came from."""

    identity: Identity
    source: str
    line: int
    ops: list[Operation]
    filename: str


@dataclass
class Emission:
    """What ``build_component`` decided: the patches and the files it skipped, with why."""

    patches: list[Patch] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def files(self) -> dict[str, str]:
        """The files to write, relative to DIR, and their text."""
        entries = []
        for patch in self.patches:
            target: dict[str, str] = {}
            if patch.identity.group:
                target["group"] = patch.identity.group
            target["version"] = patch.identity.version
            target["kind"] = patch.identity.kind
            target["name"] = patch.identity.name
            if patch.identity.namespace:
                target["namespace"] = patch.identity.namespace
            entries.append({"path": f"{PATCHES}/{patch.filename}", "target": target})
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1alpha1",
            "kind": "Component",
            "patches": entries,
        }
        files = {
            KUSTOMIZATION: f"{MARKER} Regenerate it instead of editing.\n"
            + yaml.safe_dump(kustomization, sort_keys=False)
        }
        for patch in self.patches:
            header = (
                f"# {patch.identity.label()}, from {patch.source}:{patch.line}\n"
                "# JSON6902 operations made by the hardener engine.\n"
            )
            files[f"{PATCHES}/{patch.filename}"] = header + yaml.safe_dump(
                [dict(op) for op in patch.ops], sort_keys=False
            )
        return files


def _filename(identity: Identity, taken: set[str]) -> str:
    parts = [identity.kind, identity.namespace or "", identity.name]
    stem = "-".join(p for p in parts if p).lower()
    stem = re.sub(r"[^a-z0-9.-]+", "-", stem).strip("-.") or "object"
    name = f"{stem}.yaml"
    number = 2
    while name in taken:
        name = f"{stem}-{number}.yaml"
        number += 1
    taken.add(name)
    return name


def build_component(
    paths: Sequence[str], config: Config, images: Mapping[str, ImageFacts] | None = None
) -> Emission:
    """Plan every object of ``paths`` (files, already collected) and gather the patches;
    ``images`` holds the facts of the images they name, as for ``fix``.

    Raises ``StreamError`` for anything that makes the component unreliable.
    """
    emission = Emission()
    seen: dict[Identity, str] = {}
    taken: set[str] = set()
    for path in paths:
        source = display_path(path)
        try:
            text, _ = read_text(path)
        except FileReadError as exc:
            where = f"{source}:{exc.line}" if exc.line is not None else source
            raise StreamError(where, exc.message) from None
        reason = file_skip_reason(text)
        if reason is not None:
            emission.skipped.append((source, reason))
            continue
        objects = [
            obj
            for obj in expand(read_objects(text, source))
            if is_kubernetes_object(obj.value) and not is_local_config(obj.value)
        ]
        identities = validate_objects(objects, source)
        for obj, identity in zip(objects, identities, strict=True):
            where = f"{source}:{obj.line}"
            if identity in seen:
                raise StreamError(
                    where,
                    f"{identity.label()} is also in {seen[identity]}; one base cannot hold "
                    "it twice, so pass only one of the files",
                )
            seen[identity] = where
            if object_skip_reason(obj.value) is not None:
                continue
            try:
                planned = plan(obj.value, config, evaluate=False, images=images)
            except InvalidObjectError as exc:
                raise StreamError(
                    where, f"{object_label(obj.value)}: {exc.pointer or '/'}: {exc.message}"
                ) from None
            if not planned.ops:
                continue
            ops = planned.ops
            if obj.pointer:
                raise StreamError(
                    where,
                    f"{identity.label()} is an item of a List; Kustomize patches whole "
                    "objects, so split the List into separate documents",
                )
            emission.patches.append(
                Patch(identity, source, obj.line, ops, _filename(identity, taken))
            )
    return emission


def write_component(emission: Emission, directory: str) -> None:
    """Replace ``directory`` with the component, all at once. Raises ``StreamError`` when
    ``directory`` holds something else, or cannot be written."""
    if os.path.lexists(directory):
        if not os.path.isdir(directory) or os.path.islink(directory):
            raise StreamError(directory, "exists and is not a directory; choose another DIR")
        entries = set(os.listdir(directory))
        ours = entries <= {KUSTOMIZATION, PATCHES} and _written_by_us(directory, entries)
        if entries and not ours:
            raise StreamError(
                directory,
                "is not empty and was not written by --emit-kustomize; choose a new or empty "
                "directory so that nothing of yours is replaced",
            )
    parent = os.path.dirname(os.path.abspath(directory))
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".hardener-", dir=parent)
    except OSError as exc:
        raise StreamError(directory, f"cannot create it: {exc.strerror or exc}") from None
    try:
        os.mkdir(os.path.join(staging, PATCHES))
        for name, text in emission.files().items():
            with open(os.path.join(staging, name), "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
        old = None
        if os.path.lexists(directory):
            old = tempfile.mkdtemp(prefix=".hardener-old-", dir=parent)
            os.replace(directory, os.path.join(old, "component"))
        try:
            os.replace(staging, directory)
        except OSError:
            if old is not None:  # put the previous component back
                os.replace(os.path.join(old, "component"), directory)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StreamError(directory, f"cannot write it: {exc.strerror or exc}") from None


def _written_by_us(directory: str, entries: set[str]) -> bool:
    if KUSTOMIZATION not in entries:
        return False
    try:
        with open(os.path.join(directory, KUSTOMIZATION), encoding="utf-8") as handle:
            return handle.readline().startswith(MARKER)
    except (OSError, UnicodeDecodeError):
        return False
