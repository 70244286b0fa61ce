"""Linux capability names, read the two ways that matter to a pod.

Container runtimes read a name loosely: ``all``, ``cap_sys_admin`` and ``SYS_ADMIN`` are
accepted in any letter case, with or without the ``CAP_`` prefix (``runtime_name``). Pod
Security Admission compares names exactly (Go's ``==`` in ``check_capabilities_*.go``):
its restricted level is met only by ``drop`` holding the exact string ``"ALL"``, and the
only capability it lets a container ``add`` is the exact string ``"NET_BIND_SERVICE"``.
A real kube-apiserver v1.36 rejects ``drop: [all]``, ``[All]``, ``[CAP_ALL]`` and
``["ALL "]``, and admits ``[all, ALL]``.

The evaluator's checks and hardener's rules both ask these functions, so that what the
engine calls "already dropped" is what ``check`` accepts.
"""

from __future__ import annotations

from typing import Any, Final

from hardener.model import json_type

__all__ = [
    "ALL",
    "BASELINE_CAPABILITIES",
    "NET_BIND_SERVICE",
    "baseline_may_add",
    "drops_all",
    "loose_all",
    "restricted_may_add",
    "runtime_name",
]

ALL: Final = "ALL"
NET_BIND_SERVICE: Final = "NET_BIND_SERVICE"

BASELINE_CAPABILITIES: Final = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
"""The capabilities the baseline level lets a container add (compared exactly)."""


def runtime_name(capability: object) -> str:
    """The name a container runtime reads: ``cap_sys_admin`` and ``SYS_ADMIN`` are one.

    A value that is not a string names no capability: it is shown by its type, never
    stringified (``str`` of a value nested a thousand deep recurses past Python's limit)."""
    if not isinstance(capability, str):
        return json_type(capability)
    text = capability.strip().upper()
    return text[4:] if text.startswith("CAP_") else text


def drops_all(drop: Any) -> bool:
    """``drop`` is a list that holds the exact string ``"ALL"``, as Pod Security Admission
    requires; ``all`` or ``CAP_ALL`` drop every capability at run time, yet do not count."""
    return isinstance(drop, list) and ALL in drop


def loose_all(drop: Any) -> str | None:
    """The first item of ``drop`` that a runtime reads as ``ALL`` but that is not spelled
    ``"ALL"`` (``all``, ``CAP_ALL``, ...), or ``None``."""
    if not isinstance(drop, list):
        return None
    for item in drop:
        if isinstance(item, str) and item != ALL and runtime_name(item) == ALL:
            return item
    return None


def baseline_may_add(capability: Any) -> bool:
    return isinstance(capability, str) and capability in BASELINE_CAPABILITIES


def restricted_may_add(capability: Any) -> bool:
    return isinstance(capability, str) and capability == NET_BIND_SERVICE
