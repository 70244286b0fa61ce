"""The registry of Pod Security Standards checks and the policy versions they apply at.

Check ids, levels and first versions follow the Pod Security Admission (PSA) controller.
A level at a version runs every check of that level (restricted also runs every baseline
check) whose ``since`` is at or below the version. Four restricted checks *override* a
baseline check: when the restricted one is in force, the baseline one is not run at the
restricted level, because the restricted check already covers (and tightens) it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hardener.model import json_type
from hardener.pss._version import Version, parse_version

__all__ = [
    "CHECKS",
    "LATEST",
    "LEVELS",
    "OVERRIDES",
    "Check",
    "Version",
    "active_checks",
    "resolve_version",
]

LEVELS = ("baseline", "restricted")


@dataclass(frozen=True)
class Check:
    """One PSA check.

    ``since`` is the first policy version that runs it; ``until`` the first version that no
    longer does (``None``: still in force). ``fixable`` is true for the checks that hardener's
    rules satisfy by filling in an absent field.
    """

    id: str
    level: str
    since: Version
    until: Version | None
    title: str
    fixable: bool


def _check(id: str, level: str, since: Version, title: str, fixable: bool = False) -> Check:
    return Check(id=id, level=level, since=since, until=None, title=title, fixable=fixable)


CHECKS: tuple[Check, ...] = (
    # baseline
    _check("hostNamespaces", "baseline", (1, 0), "Host namespaces"),
    _check("privileged", "baseline", (1, 0), "Privileged containers"),
    _check("capabilities_baseline", "baseline", (1, 0), "Capabilities"),
    _check("hostPathVolumes", "baseline", (1, 0), "HostPath volumes"),
    _check("hostPorts", "baseline", (1, 0), "Host ports"),
    _check("appArmorProfile", "baseline", (1, 0), "AppArmor"),
    _check("seLinuxOptions", "baseline", (1, 0), "SELinux"),
    _check("procMount", "baseline", (1, 0), "/proc mount type"),
    _check("seccompProfile_baseline", "baseline", (1, 0), "Seccomp"),
    _check("sysctls", "baseline", (1, 0), "Sysctls"),
    _check("windowsHostProcess", "baseline", (1, 0), "HostProcess"),
    _check("hostProbesAndHostLifecycle", "baseline", (1, 34), "Host probes and lifecycle hooks"),
    # restricted
    _check("restrictedVolumes", "restricted", (1, 0), "Volume types"),
    _check("allowPrivilegeEscalation", "restricted", (1, 8), "Privilege escalation", True),
    _check("runAsNonRoot", "restricted", (1, 0), "Running as non-root", True),
    _check("runAsUser", "restricted", (1, 23), "Running as non-root user"),
    _check("seccompProfile_restricted", "restricted", (1, 19), "Seccomp (restricted)", True),
    _check("capabilities_restricted", "restricted", (1, 22), "Capabilities (restricted)", True),
    _check("procMount_restricted", "restricted", (1, 35), "/proc mount type (restricted)"),
)

OVERRIDES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "restrictedVolumes": ("hostPathVolumes",),
        "seccompProfile_restricted": ("seccompProfile_baseline",),
        "capabilities_restricted": ("capabilities_baseline",),
        "procMount_restricted": ("procMount",),
    }
)
"""Restricted check id -> the baseline checks it replaces at the restricted level."""

LATEST: Version = max(c.since for c in CHECKS)
"""The newest policy version with a change of its own; ``latest`` and any newer version
behave like it (PSA clamps versions the same way)."""


def resolve_version(version: Any) -> Version:
    """The concrete version a policy version evaluates as: a string in the typed grammar of
    ``parse_version``, a parsed ``(1, minor)`` or ``None`` (latest). ``ValueError`` for
    anything else."""
    if isinstance(version, str):
        parsed = parse_version(version)
    elif version is None or _is_version(version):
        parsed = version
    else:
        raise ValueError(
            f"invalid policy version: use 'latest', 'v1.<minor>' or (1, minor), not "
            f"{json_type(version) if not isinstance(version, tuple) else 'a tuple'}"
        )
    if parsed is None or parsed > LATEST:
        return LATEST
    return parsed


def _is_version(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and value[0] == 1
        and value[1] >= 0
    )


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"invalid level {level!r}: use one of {', '.join(LEVELS)}")


def _in_force(check: Check, version: Version) -> bool:
    return check.since <= version and (check.until is None or version < check.until)


def active_checks(level: str, version: Any = "latest") -> tuple[Check, ...]:
    """The checks that ``level`` runs at ``version``, in registry order, overrides applied."""
    _check_level(level)
    return _active(level, resolve_version(version))


@functools.lru_cache(maxsize=256)
def _active(level: str, resolved: Version) -> tuple[Check, ...]:
    # Every review and every pod asks again for the same few (level, version) pairs.
    running = [
        c
        for c in CHECKS
        if _in_force(c, resolved) and (c.level == "baseline" or level == "restricted")
    ]
    replaced = {old for c in running for old in OVERRIDES.get(c.id, ())}
    return tuple(c for c in running if c.id not in replaced)
