"""run-as-user: give the pod a numeric non-root user and group (off by default).

Sets the pod's ``securityContext.runAsUser`` and ``runAsGroup`` to the configured IDs when they
are absent (on each container instead when only ephemeral containers may change).

Trade-off: ``runAsNonRoot: true`` alone makes the kubelet refuse an image whose user is root or
a non-numeric name ("container has runAsNonRoot and image will run as root"). A numeric user lets
such images start, but an image that expects its own user (a database writing to a directory
owned by uid 999, say) may then fail on file permissions. Turn this rule on per namespace or
workload, with IDs that suit the images.

FAIL::

    spec:
      containers:
      - name: app
        image: nginx

FIXED::

    spec:
      securityContext:
        runAsUser: 65532
        runAsGroup: 65532
      containers:
      - name: app
        image: nginx
"""

from __future__ import annotations

from typing import Final

from hardener.rules.base import MISSING, Rule, RuleContext


def apply(ctx: RuleContext) -> None:
    wanted = (("runAsUser", int(ctx.options["user"])), ("runAsGroup", int(ctx.options["group"])))
    if ctx.pod_editable:
        for key, value in wanted:
            if ctx.pod_sc(key) is MISSING:
                ctx.set(
                    (*ctx.site.spec_path, "securityContext", key),
                    value,
                    f"set {key}={value} on the pod",
                )
        return
    for container in ctx.containers:
        for key, value in wanted:
            if ctx.pod_sc(key) is MISSING and ctx.container_sc(container, key) is MISSING:
                ctx.set(
                    (*container.path, "securityContext", key),
                    value,
                    f'set {key}={value} on container "{container.name}"',
                    container=container,
                )


RULE: Final[Rule] = Rule(
    id="run-as-user",
    title="Run as a numeric non-root user and group",
    rationale=(
        "An explicit numeric user makes runAsNonRoot verifiable for images that name no user, "
        "and keeps files written to volumes out of the root group."
    ),
    apply=apply,
    options={"user": 65532, "group": 65532},
    enabled_by_default=False,
    profiles=frozenset({"restricted"}),
)
