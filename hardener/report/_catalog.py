"""What the reports say about each hardener rule and Pod Security Standards check.

The descriptions come from the registries (``hardener.rules.RULES`` and ``hardener.pss.CHECKS``)
so the reports never drift from the code. An id the registries do not know (a result produced
by a newer or older engine) still gets a descriptor, so a report never points at a rule it does
not describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hardener.pss import CHECKS
from hardener.rules import RULES

__all__ = ["PSS_URI", "Catalog", "Descriptor", "load_catalog"]

PSS_URI = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"


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


def _text(value: str) -> str:
    return " ".join(value.split())


def _rules() -> list[Descriptor]:
    out = []
    for rule in RULES:
        help_text = _text(rule.rationale) or rule.title
        if rule.check:
            help_text += f" Answers the Pod Security Standards check {rule.check}."
        out.append(Descriptor("rule", rule.id, _text(rule.title), help_text))
    return out


def _checks() -> list[Descriptor]:
    return [_check(c.id, _text(c.title), c.level) for c in CHECKS]


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
