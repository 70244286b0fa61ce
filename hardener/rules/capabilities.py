"""Helpers shared by the rules that read Linux capabilities."""

from __future__ import annotations

from hardener.locate import ContainerSite
from hardener.rules.base import RuleContext


def normalise(capability: object) -> str:
    """``cap_sys_admin`` and ``SYS_ADMIN`` name the same capability: compare them as one."""
    text = str(capability).strip().upper()
    return text[4:] if text.startswith("CAP_") else text


def added(ctx: RuleContext, container: ContainerSite) -> list[object]:
    items = ctx.container_sc(container, "capabilities", "add")
    return list(items) if isinstance(items, list) else []
