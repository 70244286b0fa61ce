"""fs-group: give the pod's volumes a group the containers belong to.

Sets the pod's ``securityContext.fsGroup`` (the configured ID, or the pod's ``runAsGroup`` when
it has one) with ``fsGroupChangePolicy: OnRootMismatch``, so that a container running as a
non-root user can write to its volumes, and the kubelet does not walk a large volume to change
ownership on every mount. With the ``only-with-volumes`` option, pods without volumes are left
alone. An explicit ``fsGroup: 0`` is reported; with ``enforce`` it is replaced.

FAIL::

    spec:
      containers:
      - name: app
        image: nginx
      volumes:
      - name: data
        emptyDir: {}

FIXED::

    spec:
      securityContext:
        fsGroup: 65532
        fsGroupChangePolicy: OnRootMismatch
      containers:
      - name: app
        image: nginx
      volumes:
      - name: data
        emptyDir: {}
"""

from __future__ import annotations

from typing import Final

from hardener.rules.base import MISSING, Rule, RuleContext, as_int


def apply(ctx: RuleContext) -> None:
    if not ctx.pod_editable:
        return
    spec_sc = (*ctx.site.spec_path, "securityContext")
    current = ctx.pod_sc("fsGroup")
    if current is not MISSING:
        if as_int(current) == 0:
            if ctx.enforce:
                ctx.set(
                    (*spec_sc, "fsGroup"),
                    int(ctx.options["fs-group"]),
                    "enforced a non-root fsGroup on the pod",
                    replace=True,
                )
            else:
                ctx.finding(
                    "pod sets securityContext.fsGroup=0 (the root group)", (*spec_sc, "fsGroup")
                )
        return
    if ctx.options["only-with-volumes"]:
        volumes = ctx.get((*ctx.site.spec_path, "volumes"))
        if not isinstance(volumes, list) or not volumes:
            return
    group = as_int(ctx.pod_sc("runAsGroup"))
    value = group if group is not None and group != 0 else int(ctx.options["fs-group"])
    ctx.set((*spec_sc, "fsGroup"), value, f"set fsGroup={value} on the pod")
    if ctx.pod_sc("fsGroupChangePolicy") is MISSING:
        ctx.set(
            (*spec_sc, "fsGroupChangePolicy"),
            "OnRootMismatch",
            "set fsGroupChangePolicy=OnRootMismatch on the pod",
        )


RULE: Final[Rule] = Rule(
    id="fs-group",
    title="Give the pod's volumes a non-root group",
    rationale=(
        "Without fsGroup, volumes keep root ownership and a non-root container cannot write "
        "to them, which pushes people back to running as root."
    ),
    apply=apply,
    options={"fs-group": 65532, "only-with-volumes": False},
    profiles=frozenset({"restricted"}),
    ephemeral=False,
)
