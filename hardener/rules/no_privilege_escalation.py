"""no-privilege-escalation: a process must not gain more privileges than its parent.

Sets each container's ``securityContext.allowPrivilegeEscalation: false`` (the
``no_new_privs`` flag), so setuid binaries and file capabilities cannot raise privileges.

The API server rejects ``allowPrivilegeEscalation: false`` on a container that is
``privileged: true`` or adds ``CAP_SYS_ADMIN``, so such containers are left as they are and
reported. An explicit ``allowPrivilegeEscalation: true`` is reported; with ``enforce`` it is
replaced by ``false`` (still never next to ``privileged`` or ``SYS_ADMIN``).

FAIL::

    containers:
    - name: app
      image: nginx

FIXED::

    containers:
    - name: app
      image: nginx
      securityContext:
        allowPrivilegeEscalation: false
"""

from __future__ import annotations

from typing import Final

from hardener.pss import runtime_name
from hardener.rules.base import MISSING, Rule, RuleContext, as_bool
from hardener.rules.capabilities import added


def apply(ctx: RuleContext) -> None:
    for container in ctx.containers:
        path = (*container.path, "securityContext", "allowPrivilegeEscalation")
        current = ctx.container_sc(container, "allowPrivilegeEscalation")
        privileged = as_bool(ctx.container_sc(container, "privileged")) is True
        sys_admin = any(runtime_name(c) == "SYS_ADMIN" for c in added(ctx, container))
        if current is not MISSING and current is not True:
            continue
        if privileged or sys_admin:
            why = "sets privileged=true" if privileged else "adds capability SYS_ADMIN"
            ctx.finding(
                f'container "{container.name}" {why}, which allows privilege escalation; '
                "allowPrivilegeEscalation=false cannot be set next to it",
                path if current is not MISSING else (*container.path, "securityContext"),
                container=container,
                level="restricted",
            )
            continue
        if current is True:
            if ctx.enforce:
                ctx.set(
                    path,
                    False,
                    f'enforced allowPrivilegeEscalation=false on container "{container.name}"',
                    container=container,
                    replace=True,
                )
            else:
                ctx.finding(
                    f'container "{container.name}" sets '
                    "securityContext.allowPrivilegeEscalation=true",
                    path,
                    container=container,
                    level="restricted",
                )
            continue
        ctx.set(
            path,
            False,
            f'set allowPrivilegeEscalation=false on container "{container.name}"',
            container=container,
        )


RULE: Final[Rule] = Rule(
    id="no-privilege-escalation",
    title="Forbid privilege escalation",
    rationale=(
        "allowPrivilegeEscalation=false sets no_new_privs: a setuid binary or a file "
        "capability inside the image can no longer raise the process's privileges."
    ),
    check="allowPrivilegeEscalation",
    apply=apply,
)
