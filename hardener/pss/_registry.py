"""Which Pod Security Standards checks a level runs at a policy version.

The checks register themselves (``hardener.pss.checks``) with the ids, levels and first
versions of the Pod Security Admission (PSA) controller. A level at a version runs every
check of that level (restricted also runs every baseline check) whose ``since`` is at or
below the version. Four restricted checks *replace* a baseline check: when the restricted
one is in force, the baseline one is not run at the restricted level, because the
restricted check already covers (and tightens) it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from hardener.model import json_type
from hardener.pss._version import Version, parse_version
from hardener.pss.checks import CHECKS, Check

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

LEVELS: Final = ("baseline", "restricted")

OVERRIDES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {c.id: c.replaces for c in CHECKS if c.replaces}
)
"""Restricted check id -> the baseline checks it replaces at the restricted level."""

LATEST: Final[Version] = max(c.since for c in CHECKS)
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


def _check_level(level: Any) -> None:
    if level not in LEVELS:
        raise ValueError(f"invalid level {level!r}: use one of {', '.join(LEVELS)}")


def active_checks(level: Any, version: Any = "latest") -> tuple[Check, ...]:
    """The checks that ``level`` runs at ``version``, in registry order, overrides applied.

    ``level`` is a string, typed ``Any``: a value of another type is refused here with a
    ``ValueError``, not by the compiled call."""
    _check_level(level)
    return _active(level, resolve_version(version))


@functools.lru_cache(maxsize=256)
def _active(level: str, resolved: Version) -> tuple[Check, ...]:
    # Every review and every pod asks again for the same few (level, version) pairs.
    running = [
        c
        for c in CHECKS
        if c.since <= resolved and (c.level == "baseline" or level == "restricted")
    ]
    replaced = {old for c in running for old in OVERRIDES.get(c.id, ())}
    return tuple(c for c in running if c.id not in replaced)
