"""drop-all-capabilities: start every container with no Linux capabilities.

Merges ``ALL`` into each container's ``securityContext.capabilities.drop`` and keeps the
``add`` list, so a container that needs ``NET_BIND_SERVICE`` keeps it. Pod Security Admission
accepts only ``ALL`` spelled exactly: a list holding ``all`` or ``CAP_ALL`` (which the runtime
reads as ``ALL``) gets ``ALL`` appended, and the user's item stays. Under the restricted
profile, any added capability other than ``NET_BIND_SERVICE`` is reported; with ``enforce``
those are removed from ``add``. ``net_bind_service`` or ``CAP_NET_BIND_SERVICE`` in ``add`` is
reported and kept: PSA refuses that spelling, and only the user can say which one they meant.

FAIL::

    containers:
    - name: app
      image: nginx
      securityContext:
        capabilities:
          add: [NET_BIND_SERVICE]

FIXED::

    containers:
    - name: app
      image: nginx
      securityContext:
        capabilities:
          add: [NET_BIND_SERVICE]
          drop:
          - ALL
"""

from __future__ import annotations

from typing import Final

from hardener.pss import NET_BIND_SERVICE, drops_all, loose_all, restricted_may_add, runtime_name
from hardener.rules.base import MISSING, Rule, RuleContext
from hardener.rules.capabilities import added, shown


def apply(ctx: RuleContext) -> None:
    for container in ctx.containers:
        caps_path = (*container.path, "securityContext", "capabilities")
        current = ctx.container_sc(container, "capabilities", "drop")
        if not drops_all(current):
            message = f'dropped ALL capabilities on container "{container.name}"'
            variant = loose_all(current)
            if variant is not None:
                message += (
                    f' (it drops "{variant}", which Pod Security Admission does not accept: '
                    'it matches "ALL" exactly)'
                )
            if current is MISSING:
                ctx.set((*caps_path, "drop"), ["ALL"], message, container=container)
            else:
                ctx.append((*caps_path, "drop"), "ALL", message, container=container)
        if ctx.profile != "restricted":
            continue
        adds = added(ctx, container)
        if not adds:
            continue
        # A name the runtime reads as NET_BIND_SERVICE but PSA does not accept: kept, since
        # the user wants that capability, and reported, since only they can respell it.
        misspelt = [
            c for c in adds if not restricted_may_add(c) and runtime_name(c) == NET_BIND_SERVICE
        ]
        for spelling in misspelt:
            ctx.finding(
                f'container "{container.name}" adds {spelling!r}; Pod Security Admission '
                f'accepts only "{NET_BIND_SERVICE}" spelled exactly',
                (*caps_path, "add"),
                container=container,
                level="restricted",
            )
        extra = [c for c in adds if runtime_name(c) != NET_BIND_SERVICE]
        if not extra:
            continue
        if ctx.enforce:
            keep = [c for c in adds if runtime_name(c) == NET_BIND_SERVICE]
            ctx.set(
                (*caps_path, "add"),
                keep,
                f"removed capabilities {', '.join(map(shown, extra))} from container "
                f'"{container.name}"',
                container=container,
                replace=True,
            )
            continue
        ctx.finding(
            f'container "{container.name}" adds capabilities {", ".join(map(shown, extra))}; '
            "the restricted level allows only NET_BIND_SERVICE",
            (*caps_path, "add"),
            container=container,
            level="restricted",
        )


RULE: Final[Rule] = Rule(
    id="drop-all-capabilities",
    title="Drop all Linux capabilities",
    rationale=(
        "Container runtimes grant a default set of capabilities (NET_RAW, CHOWN, SETUID, ...) "
        "that most workloads never use and that attackers do. Dropping ALL and adding back "
        "only what is needed is the least privilege."
    ),
    check="capabilities_restricted",
    apply=apply,
)
