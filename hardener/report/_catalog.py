"""What the reports say about each hardener rule and Pod Security Standards check.

The descriptions come from the registries (``hardener.rules.RULES`` and ``hardener.pss.CHECKS``)
so the reports never drift from the code. Registry entries may be objects, modules or mappings;
each needs an id and a title, and may carry a rationale (rules) or a level (checks). An id a
registry does not know (a result produced by a newer or older engine) still gets a descriptor,
so a report never points at a rule it does not describe.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PSS_URI", "Catalog", "Descriptor", "load_catalog"]

PSS_URI = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"

# Used only while the rule registry cannot be imported, so the reports stay useful on their own.
_FALLBACK_RULES: tuple[tuple[str, str, str], ...] = (
    (
        "run-as-non-root",
        "Containers must run as a non-root user",
        "Sets runAsNonRoot: true so the kubelet refuses to start a container whose image would "
        "run as UID 0.",
    ),
    (
        "run-as-user",
        "Containers run as an explicit non-root UID",
        "Sets runAsUser to a non-zero UID so the process identity does not depend on the image.",
    ),
    (
        "seccomp-runtime-default",
        "Use the RuntimeDefault seccomp profile",
        "Sets seccompProfile.type: RuntimeDefault, which blocks system calls containers rarely "
        "need and attackers often use.",
    ),
    (
        "no-privilege-escalation",
        "Forbid privilege escalation",
        "Sets allowPrivilegeEscalation: false so setuid binaries and file capabilities cannot "
        "give a process more privileges than its parent.",
    ),
    (
        "drop-all-capabilities",
        "Drop all Linux capabilities",
        "Adds ALL to capabilities.drop; capabilities the workload needs can still be added back "
        "explicitly.",
    ),
    (
        "read-only-root-filesystem",
        "Mount the root filesystem read-only",
        "Sets readOnlyRootFilesystem: true and mounts an emptyDir at /tmp when none is there, so "
        "an attacker cannot change the container's files.",
    ),
    (
        "fs-group",
        "Give volumes a non-root group",
        "Sets fsGroup (65532) with fsGroupChangePolicy OnRootMismatch so non-root containers "
        "can write to their volumes.",
    ),
)


@dataclass(frozen=True)
class Descriptor:
    """One rule or check as the reports present it. ``sarif_id`` is unique across both kinds:
    hardener rules keep their id, PSS checks are prefixed with ``pss/``."""

    kind: Literal["rule", "check"]
    id: str
    title: str
    help: str
    level: str | None = None

    @property
    def sarif_id(self) -> str:
        return self.id if self.kind == "rule" else f"pss/{self.id}"


def _field(entry: Any, *names: str) -> Any:
    for name in names:
        if isinstance(entry, Mapping) and name in entry:
            return entry[name]
        value = getattr(entry, name, None)
        if value is not None:
            return value
    return None


def _registry(module: str, attribute: str) -> list[Any] | None:
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise
    registry = getattr(loaded, attribute, None)
    if registry is None:
        return None
    if isinstance(registry, Mapping):
        return list(registry.values())
    if isinstance(registry, Iterable):
        return list(registry)
    return None


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _rules() -> list[Descriptor]:
    registry = _registry("hardener.rules", "RULES")
    if registry is None:
        return [Descriptor("rule", i, t, r) for i, t, r in _FALLBACK_RULES]
    out = []
    for entry in registry:
        rule_id = _field(entry, "id", "ID")
        if not rule_id:
            continue
        title = _text(_field(entry, "title", "TITLE")) or str(rule_id)
        rationale = _text(_field(entry, "rationale", "RATIONALE", "__doc__"))
        check = _field(entry, "check", "CHECK", "pss_check", "PSS_CHECK")
        help_text = rationale or title
        if check:
            help_text += f" Answers the Pod Security Standards check {check}."
        out.append(Descriptor("rule", str(rule_id), title, help_text))
    return out


def _checks() -> list[Descriptor]:
    registry = _registry("hardener.pss", "CHECKS")
    out = []
    for entry in registry or []:
        check_id = _field(entry, "id", "ID")
        if not check_id:
            continue
        title = _text(_field(entry, "title", "TITLE")) or str(check_id)
        level = _field(entry, "level", "LEVEL")
        out.append(_check(str(check_id), title, str(level) if level else None))
    return out


def _check(check_id: str, title: str, level: str | None) -> Descriptor:
    where = f"the {level} level of " if level else ""
    help_text = (
        f"{title}. A check of {where}the Kubernetes Pod Security Standards ({PSS_URI}). "
        "Run `hardener fix` to apply what hardener can fix; the rest needs a change to the "
        "workload or an exemption."
    )
    return Descriptor("check", check_id, title, help_text, level)


class Catalog:
    """Rules and checks by id, in registry order, growing when results name unknown ids."""

    def __init__(self, rules: list[Descriptor], checks: list[Descriptor]) -> None:
        self.rules = {d.id: d for d in rules}
        self.checks = {d.id: d for d in checks}

    def rule(self, rule_id: str) -> Descriptor:
        if rule_id not in self.rules:
            self.rules[rule_id] = Descriptor("rule", rule_id, rule_id, f"hardener rule {rule_id}.")
        return self.rules[rule_id]

    def finding(self, check: str, level: str | None) -> Descriptor:
        """The descriptor of a finding's check. A finding that names a hardener rule instead of
        a PSS check (a rule's own finding) is described by that rule."""
        if check in self.checks:
            return self.checks[check]
        if check in self.rules:
            return self.rules[check]
        self.checks[check] = _check(check, f"Pod Security Standards check {check}", level)
        return self.checks[check]

    def all(self) -> list[Descriptor]:
        return [*self.rules.values(), *self.checks.values()]


def load_catalog() -> Catalog:
    return Catalog(_rules(), _checks())
