"""Helpers shared by the rules that read Linux capabilities."""

from __future__ import annotations

from hardener.locate import ContainerSite
from hardener.model import json_type, preview
from hardener.rules.base import RuleContext


def normalise(capability: object) -> str:
    """``cap_sys_admin`` and ``SYS_ADMIN`` name the same capability: compare them as one.

    A value that is not a string names no capability: it is shown by its type, never
    stringified (``str`` of a value nested a thousand deep recurses past Python's limit)."""
    if not isinstance(capability, str):
        return json_type(capability)
    text = capability.strip().upper()
    return text[4:] if text.startswith("CAP_") else text


def shown(capability: object) -> str:
    """A capability as a message names it: the string itself, or a short preview of a value
    of the wrong type."""
    return capability if isinstance(capability, str) else preview(capability)


def added(ctx: RuleContext, container: ContainerSite) -> list[object]:
    items = ctx.container_sc(container, "capabilities", "add")
    return list(items) if isinstance(items, list) else []
