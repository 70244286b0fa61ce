"""Run the checks of a level and version over a pod spec, or over every pod site of an object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardener.locate import pod_sites
from hardener.pointer import join, split
from hardener.pss._checks import IMPLEMENTATIONS, PodView
from hardener.pss._registry import active_checks, resolve_version

__all__ = ["Violation", "evaluate", "evaluate_pod"]


@dataclass(frozen=True)
class Violation:
    """One reason a pod does not meet a level.

    ``pointer`` is the RFC 6901 pointer of the offending field, or of the container (or pod
    spec) when the problem is a field that is absent. ``fixable`` is true only when the
    violation is an absent field that hardener fills in; an explicit bad value is never
    fixable.
    """

    check: str
    level: str
    message: str
    pointer: str
    container: str | None
    fixable: bool


def evaluate_pod(
    spec: dict[str, Any],
    metadata: dict[str, Any],
    *,
    level: str = "restricted",
    version: str = "latest",
    spec_pointer: str = "/spec",
    meta_pointer: str = "/metadata",
) -> list[Violation]:
    """The violations of one pod spec (with its pod metadata) against ``level`` at ``version``.

    Checks run in registry order; within a check, violations come in document order (pod
    first, then init, regular and ephemeral containers). Raises ``ValueError`` for an unknown
    level or a malformed version, never for the shape of the pod.
    """
    checks = active_checks(level, version)
    pod = PodView.build(
        spec,
        metadata,
        tuple(split(spec_pointer)),
        tuple(split(meta_pointer)),
        resolve_version(version),
    )
    violations: list[Violation] = []
    for check in checks:
        for problem in IMPLEMENTATIONS[check.id](pod):
            violations.append(
                Violation(
                    check=check.id,
                    level=check.level,
                    message=problem.message,
                    pointer=join(problem.path),
                    container=problem.container,
                    fixable=problem.fixable,
                )
            )
    return violations


def evaluate(obj: Any, *, level: str = "restricted", version: str = "latest") -> list[Violation]:
    """The violations of every pod spec in a Kubernetes object (Pod, controller, List...).

    Pointers are relative to ``obj``. Raises ``hardener.model.InvalidObjectError`` (from
    ``pod_sites``) when a field on the way to a pod spec has the wrong type.
    """
    violations: list[Violation] = []
    for site in pod_sites(obj):
        violations.extend(
            evaluate_pod(
                site.spec,
                site.metadata,
                level=level,
                version=version,
                spec_pointer=site.spec_pointer,
                meta_pointer=site.meta_pointer,
            )
        )
    return violations
