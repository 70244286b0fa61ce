"""user-namespace: run the pod in its own user namespace, so that root in a container is not
root on the node.

Sets ``spec.hostUsers: false``. The pod then gets a user namespace of its own: uid 0 in its
containers maps to an unprivileged uid range on the node, so a process that escapes the
container (the CVE-2024-21626 class) lands as nobody, while the image keeps the user it was
built for. From policy version v1.35, Pod Security ``restricted`` accepts such a pod without
``runAsNonRoot``, which lets ``run-as-non-root`` leave an image that runs as root as it is
(``images.root: user-namespace``, the default): the pod is admitted and the kubelet starts it.

The rule adds ``hostUsers: false`` only when all of these hold, and says why not otherwise
(in the change message, the webhook's warnings and the JSON report):

- ``hostUsers`` is absent: an explicit ``true`` is the user's choice, reported and kept;
- the pod is a Linux pod;
- no ``hostNetwork``, ``hostPID`` or ``hostIPC`` is true and no container has
  ``volumeDevices`` (the API server rejects those next to ``hostUsers: false``);
- no container is ``privileged: true`` (a user namespace would take away the host powers
  that were asked for);
- every uid and gid the pod runs with lies within the 65536 ids the kubelet maps for a pod
  (0 to 65535), its images' own users included, or the container could not start;
- the cluster supports user namespaces for the pod's runtime handler (``user-namespaces``:
  ``always``; or ``auto``, where the webhook and ``audit`` follow the Nodes and RuntimeClasses
  of the cluster; ``auto`` is off in ``fix`` and ``check``, which say so once).

A pod left without a user namespace only because support is missing is mentioned where it
matters: ``run-as-non-root`` adds a finding on the pod (a webhook warning) when it keeps a root
image from ``runAsNonRoot``, saying which node or RuntimeClass lacks support.

FAIL::

    spec:
      containers:
      - name: web
        image: nginx

FIXED::

    spec:
      hostUsers: false
      containers:
      - name: web
        image: nginx
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from hardener.image_facts import parse_image_user
from hardener.locate import ContainerSite, JsonPath
from hardener.rules.base import MISSING, Rule, RuleContext, as_bool, as_int
from hardener.userns import MAX_ID, Conflict, conflicts

__all__ = ["INVALID_CHECK", "REASONS", "RULE", "invalid_message"]

INVALID_CHECK: Final = "user-namespace-invalid"
"""The finding for ``hostUsers: false`` next to what the API server rejects with it."""

REASONS: Final[tuple[str, ...]] = (
    "added",
    "set",
    "host-users-true",
    "never",
    "offline",
    "windows",
    "host-network",
    "host-pid",
    "host-ipc",
    "volume-devices",
    "privileged",
    "ids",
    "unknown",
    "unsupported",
    "no-linux-nodes",
    "unknown-runtime-class",
)
"""Every reason the rule records for a pod (``Plan.decisions``): ``added`` it set
``hostUsers: false``; ``set`` the pod has it already; ``host-users-true`` the pod sets
``hostUsers: true``; ``never`` and ``offline`` the config's ``user-namespaces`` (``offline``:
``auto`` with no cluster to ask); the pod's own blockers; and the support verdicts: ``unknown``
(the API server has not answered or cannot be reached), ``unsupported``, ``no-linux-nodes``,
``unknown-runtime-class``."""


def invalid_message(conflict: Conflict) -> str:
    """The finding ``user-namespace-invalid`` for one conflict, with what to do."""
    return (
        f"hostUsers: false is set, but {conflict.what}: the API server rejects the two "
        "together; remove one of them"
    )


def _blockers(ctx: RuleContext) -> list[tuple[str, str, JsonPath]]:
    """What keeps this pod from a user namespace: ``(code, reason, field)`` in order."""
    site = ctx.site
    found: list[tuple[str, str, JsonPath]] = []
    if ctx.windows:
        found.append(
            ("windows", "it is a Windows pod; user namespaces are Linux only", site.spec_path)
        )
    for conflict in conflicts(site):
        if conflict.code != "windows":
            found.append(
                (
                    conflict.code,
                    f"{conflict.what}, which the API server rejects next to hostUsers: false",
                    conflict.path,
                )
            )
    for container in site.containers:
        if as_bool(ctx.container_sc(container, "privileged")) is True:
            found.append(
                (
                    "privileged",
                    f'container "{container.name}" is privileged: true, and a user namespace '
                    "would take away the host powers it asks for",
                    (*container.path, "securityContext", "privileged"),
                )
            )
    found.extend(_unmapped_ids(ctx))
    return found


def _unmapped_ids(ctx: RuleContext) -> list[tuple[str, str, JsonPath]]:
    """Ids outside what a pod's user namespace maps: a process with one cannot start."""
    site = ctx.site
    spec_sc = (*site.spec_path, "securityContext")
    found: list[tuple[str, str, JsonPath]] = []

    def over(value: object, what: str, path: JsonPath) -> None:
        number = as_int(value)
        if number is not None and number > MAX_ID:
            found.append(
                (
                    "ids",
                    f"{what} {number} lies outside the ids 0-{MAX_ID} that a pod's user "
                    "namespace maps",
                    path,
                )
            )

    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        over(ctx.pod_sc(key), f"the pod's {key}", (*spec_sc, key))
    for key, value in ctx.planned_ids:
        if ctx.pod_sc(key) is MISSING:
            over(value, f"the configured {key} (ids in the config)", (*spec_sc, key))
    groups = ctx.pod_sc("supplementalGroups")
    for index, group in enumerate(groups if isinstance(groups, list) else []):
        over(group, "a supplemental group", (*spec_sc, "supplementalGroups", index))
    for container in site.containers:
        users: dict[str, object] = {}
        for key in ("runAsUser", "runAsGroup"):
            own = ctx.container_sc(container, key)
            if own is not MISSING and own is not None:
                over(own, f'container "{container.name}" {key}', _sc(container, key))
                users[key] = own
            else:
                users[key] = ctx.pod_sc(key)
        _image_ids(ctx, container, users, over)
    return found


def _sc(container: ContainerSite, key: str) -> JsonPath:
    return (*container.path, "securityContext", key)


_Over = Callable[[object, str, JsonPath], None]


def _image_ids(
    ctx: RuleContext, container: ContainerSite, users: dict[str, object], over: _Over
) -> None:
    """The image's own uid and gid count where the pod does not set them."""
    facts = ctx.facts(container)
    if facts is None or not facts.known:
        return
    image = container.container.get("image")
    where = (*container.path, "image")
    parsed = parse_image_user(facts.user)
    if users.get("runAsUser") in (MISSING, None):
        uid = facts.uid if facts.uid is not None else parsed.uid
        over(uid, f'the user of image {image} (container "{container.name}"), uid', where)
    if users.get("runAsGroup") in (MISSING, None) and facts.gid is not None:
        over(facts.gid, f'the group of image {image} (container "{container.name}"), gid', where)


def apply(ctx: RuleContext) -> None:
    site = ctx.site
    where = (*site.spec_path, "hostUsers")
    current = ctx.get(where)
    if current is False:
        for conflict in conflicts(site):
            ctx.finding(invalid_message(conflict), conflict.path, check=INVALID_CHECK)
        ctx.decide("set", "the pod sets hostUsers: false")
        return
    if current is not MISSING:
        if current is True and ctx.support.state != "never":
            ctx.note(
                "the pod sets hostUsers: true, so it shares the node's user namespace (root in "
                "a container is root on the node); left as it is",
                where,
            )
        ctx.decide("host-users-true", "the pod sets hostUsers")
        return
    if ctx.support.state in ("never", "offline"):
        ctx.decide(ctx.support.state, ctx.support.reason)
        return
    runtime_class = site.spec.get("runtimeClassName")
    support = ctx.support.for_pod(runtime_class if isinstance(runtime_class, str) else None)
    blockers = _blockers(ctx)
    if blockers:
        if support.supported:
            reasons = "; ".join(dict.fromkeys(reason for _, reason, _ in blockers))
            ctx.note(f"hostUsers: false left out: {reasons}", blockers[0][2])
        ctx.decide(blockers[0][0], blockers[0][1])
        return
    if not support.supported:
        ctx.user_namespace_missing = support.reason
        ctx.decide(support.code, support.reason)
        return
    ctx.set(
        where,
        False,
        "set hostUsers=false: the pod gets its own user namespace, so root in its containers "
        f"is not root on the node ({support.reason})",
    )
    ctx.decide("added", support.reason)


RULE: Final[Rule] = Rule(
    id="user-namespace",
    title="Run the pod in its own user namespace",
    rationale=(
        "In a user namespace, root in a container maps to an unprivileged user on the node: a "
        "container breakout lands as nobody, and images built to run as root keep working."
    ),
    apply=apply,
    linux_only=False,
    ephemeral=False,
    profiles=frozenset({"restricted", "baseline"}),
)
