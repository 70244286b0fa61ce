"""run-as-non-root: containers must not run as root.

Sets the pod's ``securityContext.runAsNonRoot: true``, so that the kubelet refuses to start any
container whose user is root. Where a pod-level value cannot be used (a container that the rule
must leave alone would inherit it, or the update may only touch ephemeral containers), each
remaining container gets its own ``runAsNonRoot: true`` instead.

An explicit ``runAsNonRoot: false`` or ``runAsUser: 0`` on the pod or a container is left as it
is and reported; with ``enforce``, ``runAsNonRoot: false`` is replaced by ``true``. Windows
HostProcess pods, which run as a node account by design, are left alone.

FAIL::

    spec:
      containers:
      - name: app
        image: nginx

FIXED::

    spec:
      securityContext:
        runAsNonRoot: true
      containers:
      - name: app
        image: nginx
"""

from __future__ import annotations

from hardener.locate import ContainerSite
from hardener.rules.base import MISSING, Rule, RuleContext, as_bool, pod_or_containers


def _root_user(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def apply(ctx: RuleContext) -> None:
    if ctx.site.host_process:
        # HostProcess containers run as a node account (SYSTEM, ...) by design; the Pod
        # Security Standards treat them as privileged, and runAsNonRoot would only keep them
        # from starting.
        return
    spec_sc = (*ctx.site.spec_path, "securityContext")
    pod_flag = as_bool(ctx.pod_sc("runAsNonRoot"))
    pod_root = _root_user(ctx.pod_sc("runAsUser"))

    if pod_root:
        ctx.finding(
            "pod sets securityContext.runAsUser=0 (root); set a non-zero user",
            (*spec_sc, "runAsUser"),
            check="runAsUser",
            level="restricted",
        )
    for container in ctx.site.containers:
        if ctx.mine(container) and _root_user(ctx.container_sc(container, "runAsUser")):
            ctx.finding(
                f'container "{container.name}" sets securityContext.runAsUser=0 (root); '
                "set a non-zero user",
                (*container.path, "securityContext", "runAsUser"),
                container=container,
                check="runAsUser",
                level="restricted",
            )

    if pod_flag is False:
        if ctx.enforce and ctx.pod_editable and not pod_root:
            ctx.set(
                (*spec_sc, "runAsNonRoot"),
                True,
                "enforced runAsNonRoot=true on the pod",
                replace=True,
            )
        else:
            ctx.finding(
                "pod sets securityContext.runAsNonRoot=false",
                (*spec_sc, "runAsNonRoot"),
                level="restricted",
            )

    def explicit(container: ContainerSite) -> bool | None:
        return as_bool(ctx.container_sc(container, "runAsNonRoot"))

    for container in ctx.containers:
        if explicit(container) is False:
            if ctx.enforce and not _root_user(ctx.container_sc(container, "runAsUser")):
                ctx.set(
                    (*container.path, "securityContext", "runAsNonRoot"),
                    True,
                    f'enforced runAsNonRoot=true on container "{container.name}"',
                    container=container,
                    replace=True,
                )
            else:
                ctx.finding(
                    f'container "{container.name}" sets securityContext.runAsNonRoot=false',
                    (*container.path, "securityContext", "runAsNonRoot"),
                    container=container,
                    level="restricted",
                )

    if ctx.pod_sc("runAsNonRoot") is not MISSING or pod_root:
        # The pod already decides (true, or a reported false), or the pod runs as root.
        return

    def blocked(container: ContainerSite) -> bool:
        return _root_user(ctx.container_sc(container, "runAsUser"))

    pod_level, containers = pod_or_containers(
        ctx, covered=lambda c: explicit(c) is not None, blocked=blocked
    )
    if pod_level:
        ctx.set((*spec_sc, "runAsNonRoot"), True, "set runAsNonRoot=true on the pod")
        return
    for container in containers:
        ctx.set(
            (*container.path, "securityContext", "runAsNonRoot"),
            True,
            f'set runAsNonRoot=true on container "{container.name}"',
            container=container,
        )


RULE = Rule(
    id="run-as-non-root",
    title="Containers must not run as root",
    rationale=(
        "A process running as root in a container is root on the node's kernel: one escape "
        "away from the host. runAsNonRoot makes the kubelet refuse to start a root container."
    ),
    check="runAsNonRoot",
    apply=apply,
    linux_only=False,
    profiles=frozenset({"restricted"}),
)
