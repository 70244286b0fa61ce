"""The capability list a rule reads; capability names themselves live in ``hardener.pss``
(``runtime_name``, ``drops_all``, ...), so that a rule and the PSS evaluator read them alike."""

from __future__ import annotations

from hardener.locate import ContainerSite
from hardener.model import preview
from hardener.rules.base import RuleContext


def shown(capability: object) -> str:
    """A capability as a message names it: the string itself, or a short preview of a value
    of the wrong type."""
    return capability if isinstance(capability, str) else preview(capability)


def added(ctx: RuleContext, container: ContainerSite) -> list[object]:
    items = ctx.container_sc(container, "capabilities", "add")
    return list(items) if isinstance(items, list) else []
