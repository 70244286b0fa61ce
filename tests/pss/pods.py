"""Hand-made pods shared by the PSS tests."""

from __future__ import annotations

import copy
from typing import Any


def restricted_pod(**spec: Any) -> dict[str, Any]:
    """A pod spec that meets restricted at every version; keyword arguments are merged in."""
    sc = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    base: dict[str, Any] = {
        "containers": [{"name": "app", "image": "app", "securityContext": copy.deepcopy(sc)}],
        "initContainers": [{"name": "init", "image": "init", "securityContext": copy.deepcopy(sc)}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    base.update(spec)
    return base
