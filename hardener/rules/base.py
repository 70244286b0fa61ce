"""What a rule is, and what it is handed.

A rule is a module with one ``RULE = Rule(...)`` record: its id, title, rationale, the Pod
Security Standards check it answers, its options with their defaults, and one function
``apply(ctx)``. The function reads the pod site through ``ctx`` and records what it wants with
``ctx.set`` / ``ctx.append`` (filled in only where absent, unless the config enforces the rule)
and what it cannot fix with ``ctx.finding``. It never touches the object itself.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from hardener.image_facts import ImageFacts, ImagePolicy
from hardener.locate import ContainerSite, JsonPath, PodSite
from hardener.model import Change, Decision, Finding, JSONValue
from hardener.patch import MISSING, PatchBuilder
from hardener.pointer import join_path
from hardener.records import picklable
from hardener.userns import Support

__all__ = ["MISSING", "Rule", "RuleContext", "as_bool", "as_int", "pod_or_containers"]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    rationale: str
    apply: Callable[[RuleContext], None]
    check: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    linux_only: bool = True
    enabled_by_default: bool = True
    profiles: frozenset[str] = frozenset({"restricted", "baseline"})
    # False when the rule needs pod-level fields or volumes, which an ephemeral-container
    # update may not change.
    ephemeral: bool = True

    @property
    def doc(self) -> str:
        """The rule module's docstring (with its PASS and FAIL examples)."""
        module = importlib.import_module(self.apply.__module__)
        text = module.__doc__
        if text is None and module.__file__:
            # A compiled module keeps no docstring: read it from the source beside it, which
            # the wheel ships (docs/build.md).
            source = FilePath(module.__file__).with_name(module.__name__.rpartition(".")[2] + ".py")
            if source.is_file():
                text = ast.get_docstring(ast.parse(source.read_text("utf-8")), clean=False)
        return (text or "").strip()


@dataclass
class RuleContext:
    """A rule's view of one pod site. The engine hands the same context to each rule of the
    site in turn, with ``rule``, ``containers``, ``options`` and ``enforce`` set for it."""

    rule: Rule
    site: PodSite
    containers: tuple[ContainerSite, ...]
    """The containers this rule may change: opt-outs and the operation's scope removed."""
    options: Mapping[str, Any]
    enforce: bool
    profile: str
    pod_editable: bool
    builder: PatchBuilder
    changes: list[Change]
    findings: list[Finding]
    annotations: Mapping[str, str]
    images: Mapping[str, ImageFacts] = field(default_factory=dict)
    """The facts of the images the pod names, by ``image`` string as written (may be empty)."""
    image_policy: ImagePolicy = field(default_factory=ImagePolicy)
    ids: tuple[int, int] = (65532, 65532)
    """The configured ``ids`` (user, group), for ``images.root: run-as-user``."""
    windows: bool = False
    """The pod is meant for Windows nodes."""
    support: Support = field(default_factory=Support.offline)
    """What is known of the cluster's support for user namespaces (``user-namespaces``)."""
    user_namespace_policy: bool = True
    """The config's policy version has the restricted relaxation for pods with
    ``hostUsers: false`` (v1.35 and later): root images may then rely on it."""
    planned_ids: tuple[tuple[str, int], ...] = ()
    """Ids that rules running later may give the pod, by the field they go in (``fsGroup``
    from ``fs-group``): a user namespace must map them too."""
    decisions: list[Decision] = field(default_factory=list)
    user_namespace_missing: str | None = None
    """Why the pod gets no user namespace for want of node support (set by the
    ``user-namespace`` rule); the rules that keep a root image say so."""

    # -- reading -----------------------------------------------------------------------------

    def _anchor(
        self, path: JsonPath, container: ContainerSite | None = None
    ) -> tuple[int, JSONValue]:
        """Where a lookup of ``path`` may start: its container, or else the pod spec.

        Rules only build paths from ``site.spec_path`` and container paths, so a walk from
        there (from its working copy, once edits went through it) sees every pending value.
        A change made for ``container`` has its path inside it.
        """
        if container is not None:
            return len(container.path), container.container
        base = len(self.site.spec_path)
        if len(path) > base + 2:
            field, index = path[base], path[base + 1]
            items = self.site.spec.get(field) if isinstance(field, str) else None
            if isinstance(items, list) and isinstance(index, int) and 0 <= index < len(items):
                return base + 2, items[index]
        return base, self.site.spec

    def get(self, path: JsonPath) -> JSONValue:
        return self.builder.get(path, self._anchor(path))

    def pod_sc(self, key: str) -> JSONValue:
        """A pod ``securityContext`` field as it stands now (``MISSING`` if absent)."""
        return self.builder.get_in(self.site.spec, ("securityContext", key))

    def container_sc(self, container: ContainerSite, *keys: str) -> JSONValue:
        """A container ``securityContext`` field as it stands now (``MISSING`` if absent)."""
        return self.builder.get_in(container.container, ("securityContext", *keys))

    def in_user_namespace(self) -> bool:
        """The pod has ``hostUsers: false``, its own or just added."""
        return self.get((*self.site.spec_path, "hostUsers")) is False

    def mine(self, container: ContainerSite) -> bool:
        return container in self.containers

    def facts(self, container: ContainerSite) -> ImageFacts | None:
        """The facts of the container's image, if the caller passed any."""
        if not self.images:
            return None
        reference = container.container.get("image")
        return self.images.get(reference) if isinstance(reference, str) else None

    # -- recording ---------------------------------------------------------------------------

    def set(
        self,
        path: JsonPath,
        value: JSONValue,
        message: str,
        *,
        container: ContainerSite | None = None,
        replace: bool = False,
    ) -> bool:
        anchor = self._anchor(path, container)
        recorded, before = self.builder.set(path, value, replace=replace, anchor=anchor)
        if not recorded:
            return False
        self.changes.append(
            Change(
                rule=self.rule.id,
                pointer=join_path(path),
                message=message,
                after=value,
                before=None if before is MISSING else before,
                container=container.name if container else None,
            )
        )
        return True

    def append(
        self,
        path: JsonPath,
        item: JSONValue,
        message: str,
        *,
        container: ContainerSite | None = None,
    ) -> None:
        index = self.builder.append(path, item, self._anchor(path, container))
        self.changes.append(
            Change(
                rule=self.rule.id,
                pointer=join_path((*path, index)),
                message=message,
                after=item,
                container=container.name if container else None,
            )
        )

    def finding(
        self,
        message: str,
        path: JsonPath,
        *,
        container: ContainerSite | None = None,
        check: str | None = None,
        level: str | None = None,
        fixable: bool = False,
    ) -> None:
        self.findings.append(
            Finding(
                rule=self.rule.id,
                message=message,
                pointer=join_path(path),
                check=check if check is not None else self.rule.check,
                level=level,
                container=container.name if container else None,
                fixable=fixable,
            )
        )

    def decide(self, reason: str, message: str = "") -> None:
        """Record the rule's decision for this pod by ``reason`` (counted by the faces)."""
        self.decisions.append(
            Decision(
                rule=self.rule.id,
                reason=reason,
                pointer=join_path(self.site.spec_path),
                message=message,
            )
        )

    def note(self, message: str, path: JsonPath, *, container: ContainerSite | None = None) -> None:
        """A finding that explains a decision (why a default was left out) and answers no Pod
        Security Standards check: every face shows it, the webhook among its warnings."""
        self.findings.append(
            Finding(
                rule=self.rule.id,
                message=message,
                pointer=join_path(path),
                container=container.name if container else None,
            )
        )


def as_bool(value: JSONValue) -> bool | None:
    """``True``/``False`` for a boolean, ``None`` for anything else (absent, wrong type)."""
    return value if isinstance(value, bool) else None


def as_int(value: object) -> int | None:
    """The number for an integer (not a boolean), ``None`` for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def pod_or_containers(
    ctx: RuleContext,
    *,
    covered: Callable[[ContainerSite], bool],
    blocked: Callable[[ContainerSite], bool],
) -> tuple[bool, list[ContainerSite]]:
    """Decide whether a pod-level default can be set, or which containers need their own.

    A pod-level value reaches every container that does not set its own (``covered``). It can
    be set only if each such container is one this rule may change and is not ``blocked`` by
    an explicit value that the default would contradict. Otherwise the default goes on each
    container that is ours, uncovered and unblocked. Returns ``(pod_level, containers)``;
    ``(False, [])`` when every container already has its own value.
    """
    uncovered = [c for c in ctx.site.containers if not covered(c)]
    if not uncovered:
        return False, []
    if ctx.pod_editable and all(ctx.mine(c) and not blocked(c) for c in uncovered):
        return True, []
    return False, [c for c in uncovered if ctx.mine(c) and not blocked(c)]


picklable(Rule)
