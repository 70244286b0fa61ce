"""drop-all-capabilities: start every container with no Linux capabilities.

Merges ``ALL`` into each container's ``securityContext.capabilities.drop`` (an existing entry
in any letter case counts: nothing is duplicated) and keeps the ``add`` list, so a container
that needs ``NET_BIND_SERVICE`` keeps it. Under the restricted profile, any added capability
other than ``NET_BIND_SERVICE`` is reported; with ``enforce`` those are removed from ``add``.

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

from hardener.rules.base import MISSING, Rule, RuleContext
from hardener.rules.capabilities import added, normalise, shown

ALLOWED_IN_RESTRICTED = frozenset({"NET_BIND_SERVICE"})


def apply(ctx: RuleContext) -> None:
    for container in ctx.containers:
        caps_path = (*container.path, "securityContext", "capabilities")
        current = ctx.container_sc(container, "capabilities", "drop")
        drop = current if isinstance(current, list) else []
        if "ALL" not in drop:
            variant = next((d for d in drop if normalise(d) == "ALL"), None)
            if variant is not None:
                ctx.finding(
                    f'container "{container.name}" drops {variant!r}; the Pod Security '
                    'Standards only accept "ALL" in upper case',
                    caps_path,
                    container=container,
                    level="restricted",
                )
            elif current is MISSING:
                ctx.set(
                    (*caps_path, "drop"),
                    ["ALL"],
                    f'dropped ALL capabilities on container "{container.name}"',
                    container=container,
                )
            else:
                ctx.append(
                    (*caps_path, "drop"),
                    "ALL",
                    f'dropped ALL capabilities on container "{container.name}"',
                    container=container,
                )
        if ctx.profile != "restricted":
            continue
        adds = added(ctx, container)
        if not adds:
            continue
        extra = [c for c in adds if normalise(c) not in ALLOWED_IN_RESTRICTED]
        if not extra:
            continue
        if ctx.enforce:
            keep = [c for c in adds if normalise(c) in ALLOWED_IN_RESTRICTED]
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


RULE = Rule(
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
