"""seccomp-runtime-default: filter system calls with the container runtime's default profile.

Sets the pod's ``securityContext.seccompProfile: {type: RuntimeDefault}`` unless the pod already
has a profile, or every container has its own. Containers that the rule must leave alone and
that have no profile keep the pod level free: each other container then gets its own profile.

The legacy annotations are respected: a pod with ``seccomp.security.alpha.kubernetes.io/pod``
gets no pod-level field (the API server rejects a field that disagrees with the annotation), and
a container named in ``container.seccomp.security.alpha.kubernetes.io/<name>`` counts as having
a profile. ``Unconfined`` (or ``unconfined`` in an annotation) is left as it is and reported;
with ``enforce``, an ``Unconfined`` field is replaced by ``RuntimeDefault``.

FAIL::

    spec:
      containers:
      - name: app
        image: nginx

FIXED::

    spec:
      securityContext:
        seccompProfile:
          type: RuntimeDefault
      containers:
      - name: app
        image: nginx
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from hardener.locate import (
    SECCOMP_CONTAINER_ANNOTATION_PREFIX,
    SECCOMP_POD_ANNOTATION,
    ContainerSite,
)
from hardener.rules.base import MISSING, Rule, RuleContext, pod_or_containers

RUNTIME_DEFAULT: Final = {"type": "RuntimeDefault"}


def _profile_type(value: object) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        return kind if isinstance(kind, str) else ""
    return None


def _container_note(notes: dict[Any, Any], container: ContainerSite) -> object:
    return notes.get(SECCOMP_CONTAINER_ANNOTATION_PREFIX + container.name)


def _covered(ctx: RuleContext, notes: dict[Any, Any], container: ContainerSite) -> bool:
    return (
        ctx.container_sc(container, "seccompProfile") is not MISSING
        or _container_note(notes, container) is not None
    )


def _never(container: ContainerSite) -> bool:
    return False


def apply(ctx: RuleContext) -> None:
    spec_sc = (*ctx.site.spec_path, "securityContext")
    notes = ctx.site.metadata.get("annotations")
    notes = notes if isinstance(notes, dict) else {}
    pod_note = notes.get(SECCOMP_POD_ANNOTATION)

    if isinstance(pod_note, str) and pod_note.strip().lower() == "unconfined":
        ctx.finding(
            f"pod annotation {SECCOMP_POD_ANNOTATION}=unconfined disables seccomp",
            (*ctx.site.meta_path, "annotations", SECCOMP_POD_ANNOTATION),
            check="seccompProfile_baseline",
            level="baseline",
        )

    pod_type = _profile_type(ctx.pod_sc("seccompProfile"))
    if pod_type == "Unconfined":
        if ctx.enforce and ctx.pod_editable and pod_note is None:
            ctx.set(
                (*spec_sc, "seccompProfile"),
                dict(RUNTIME_DEFAULT),
                "enforced seccompProfile RuntimeDefault on the pod",
                replace=True,
            )
            pod_type = "RuntimeDefault"
        else:
            ctx.finding(
                "pod sets securityContext.seccompProfile.type=Unconfined",
                (*spec_sc, "seccompProfile", "type"),
                check="seccompProfile_baseline",
                level="baseline",
            )

    for container in ctx.containers:
        kind = _profile_type(ctx.container_sc(container, "seccompProfile"))
        if kind == "Unconfined":
            if ctx.enforce and _container_note(notes, container) is None:
                ctx.set(
                    (*container.path, "securityContext", "seccompProfile"),
                    dict(RUNTIME_DEFAULT),
                    f'enforced seccompProfile RuntimeDefault on container "{container.name}"',
                    container=container,
                    replace=True,
                )
            else:
                ctx.finding(
                    f'container "{container.name}" sets '
                    "securityContext.seccompProfile.type=Unconfined",
                    (*container.path, "securityContext", "seccompProfile", "type"),
                    container=container,
                    check="seccompProfile_baseline",
                    level="baseline",
                )
        note = _container_note(notes, container)
        if isinstance(note, str) and note.strip().lower() == "unconfined":
            key = SECCOMP_CONTAINER_ANNOTATION_PREFIX + container.name
            ctx.finding(
                f"container annotation {key}=unconfined disables seccomp",
                (*ctx.site.meta_path, "annotations", key),
                container=container,
                check="seccompProfile_baseline",
                level="baseline",
            )

    if pod_type is not None or pod_note is not None:
        return

    # A partial, not a closure: compiled, a closure makes a reference cycle of the pod's work.
    covered = partial(_covered, ctx, notes)
    pod_level, containers = pod_or_containers(ctx, covered=covered, blocked=_never)
    if pod_level:
        ctx.set(
            (*spec_sc, "seccompProfile"),
            dict(RUNTIME_DEFAULT),
            "set seccompProfile type RuntimeDefault on the pod",
        )
        return
    for container in containers:
        ctx.set(
            (*container.path, "securityContext", "seccompProfile"),
            dict(RUNTIME_DEFAULT),
            f'set seccompProfile type RuntimeDefault on container "{container.name}"',
            container=container,
        )


RULE: Final[Rule] = Rule(
    id="seccomp-runtime-default",
    title="Filter system calls with the RuntimeDefault seccomp profile",
    rationale=(
        "Without a seccomp profile a container may call every system call of the node's "
        "kernel, including the rarely needed ones behind most container escapes. "
        "RuntimeDefault blocks those and is what the restricted Pod Security Standard requires."
    ),
    check="seccompProfile_restricted",
    apply=apply,
)
