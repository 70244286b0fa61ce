"""The capability list a rule reads; capability names themselves live in ``hardener.pss``
(``runtime_name``, ``drops_all``, ...), so that a rule and the PSS evaluator read them alike."""

from __future__ import annotations

from hardener.locate import ContainerSite
from hardener.rules.base import RuleContext


def added(ctx: RuleContext, container: ContainerSite) -> list[object]:
    items = ctx.container_sc(container, "capabilities", "add")
    return list(items) if isinstance(items, list) else []
