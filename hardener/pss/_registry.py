"""The registry of Pod Security Standards checks and the policy versions they apply at.

Check ids, levels and first versions follow the Pod Security Admission (PSA) controller.
A level at a version runs every check of that level (restricted also runs every baseline
check) whose ``since`` is at or below the version. Four restricted checks *override* a
baseline check: when the restricted one is in force, the baseline one is not run at the
restricted level, because the restricted check already covers (and tightens) it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CHECKS",
    "LATEST",
    "LEVELS",
    "OVERRIDES",
    "Check",
    "Version",
    "active_checks",
    "parse_version",
    "resolve_version",
]

Version = tuple[int, int]

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

_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def parse_version(text: str) -> Version | None:
    """``"v1.25"`` -> ``(1, 25)``; ``"latest"`` -> ``None`` (the newest policy).

    Raises ``ValueError`` for anything else; PSA only knows major version 1.
    """
    if not isinstance(text, str):
        raise ValueError(f"policy version must be a string like 'v1.25' or 'latest', not {text!r}")
    stripped = text.strip()
    if stripped == "latest":
        return None
    match = _VERSION.fullmatch(stripped)
    if match is None or match.group(1) != "1":
        raise ValueError(
            f"invalid policy version {text!r}: use 'latest' or 'v1.<minor>', e.g. 'v1.25'"
        )
    return (1, int(match.group(2)))


def resolve_version(version: str | Version | None) -> Version:
    """The concrete version a policy version string (or parsed version) evaluates as."""
    parsed = parse_version(version) if isinstance(version, str) else version
    if parsed is None or parsed > LATEST:
        return LATEST
    return parsed


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"invalid level {level!r}: use one of {', '.join(LEVELS)}")


def _in_force(check: Check, version: Version) -> bool:
    return check.since <= version and (check.until is None or version < check.until)


def active_checks(level: str, version: str | Version | None = "latest") -> tuple[Check, ...]:
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
