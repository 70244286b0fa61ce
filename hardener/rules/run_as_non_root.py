"""run-as-non-root: containers must not run as root, and every pod must still start.

Sets ``securityContext.runAsNonRoot: true``, so that the kubelet refuses to start a container
whose user is root. The kubelet can only verify a numeric user, so what the rule adds depends
on each container's effective ``runAsUser`` and, without one, on its image's user (the facts
the caller passes to ``plan(..., images=...)``):

- an explicit non-zero ``runAsUser`` (pod or container): ``runAsNonRoot`` alone is safe;
- an image that runs as a numeric non-root uid: ``runAsNonRoot`` alone, as it is;
- an image whose user is a name with a known non-zero uid (from its ``/etc/passwd``): the
  container gets ``runAsUser: <that uid>`` too, so it keeps its own user and the kubelet can
  verify it;
- an image that runs as root (no user, ``0``, or a name with uid 0): in a pod with
  ``hostUsers: false`` (``user-namespace``), under ``images.root: user-namespace`` (the
  default) and a policy version of v1.35 or later, the container keeps its user with no
  ``runAsNonRoot`` and no finding: root in it is not root on the node, and Pod Security
  ``restricted`` accepts it; elsewhere, and with ``images.root: keep``, the container gets no
  ``runAsNonRoot`` and a finding says "image X runs as root; set runAsUser or use a non-root
  image" (and, when only node support kept the pod from a user namespace, one more finding
  says that);
  with ``images.root: run-as-user`` it gets ``runAsUser``/``runAsGroup`` from ``ids`` and
  ``runAsNonRoot``;
- a name whose uid is not known, or a uid the kubelet calls invalid: no ``runAsNonRoot``, and a
  finding (the kubelet refuses a bare ``runAsNonRoot`` on those);
- an image with no known facts: ``images.unknown: keep`` (the default) treats it like a root
  image (and so does a pod's user namespace with a name whose uid is not known);
  ``assume-nonroot`` adds ``runAsNonRoot`` alone.

Why ``images.unknown: keep`` is the default: a pod left without ``runAsNonRoot`` is reported
(a finding at the image line, and the Pod Security verdict), and a person can act on it when
the pod is applied; a pod given ``runAsNonRoot`` on a root image is admitted and then never
starts (``CreateContainerConfigError``), which surfaces only as a stuck rollout. Most popular
images run as root, so a guess would break more pods than it hardens; ``keep`` never breaks
one. The offline table and lookups give most images facts, so few stay unknown. Choose
``assume-nonroot`` where every image is known to run as a numeric non-root user (a
registry's policy): it then hardens every pod, at the cost of the guarantee.

On Windows pods the kubelet only refuses the user ``ContainerAdministrator`` (the image's, or
``windowsOptions.runAsUserName``), and ignores ``runAsUser``.

The value goes on the pod when every container that would inherit it can take it; when the
containers differ, on each container that can. An explicit ``runAsNonRoot: false`` or
``runAsUser: 0`` is left as it is and reported; with ``enforce``, ``runAsNonRoot: false`` is
replaced by ``true`` only where the container can start with it. Where the user's own values
already make the kubelet refuse a container, that is reported, and what the rule adds never
makes it worse. Windows HostProcess pods, which run as a node account by design, are left
alone.

FAIL::

    spec:
      securityContext:
        runAsUser: 1000
      containers:
      - name: app
        image: nginx

FIXED::

    spec:
      securityContext:
        runAsUser: 1000
        runAsNonRoot: true
      containers:
      - name: app
        image: nginx
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from hardener.image_facts import MAX_UID, ImageFacts, ImagePolicy, parse_image_user
from hardener.kubelet import WINDOWS_ROOT_USER, image_user, refusal
from hardener.locate import ContainerSite
from hardener.rules.base import MISSING, Rule, RuleContext, as_bool, as_int, pod_or_containers

__all__ = ["RULE", "ImageDecision", "decide_image"]

Action = Literal["non-root", "run-as-uid", "run-as-ids", "assume", "keep", "user-namespace"]


@dataclass(unsafe_hash=True)
class ImageDecision:
    """What an image's user means for ``runAsNonRoot`` on a container without ``runAsUser``.

    ``action``: ``non-root`` (``runAsNonRoot`` alone is safe), ``run-as-uid`` (with
    ``runAsUser: run_as_user``, the image's own uid), ``run-as-ids`` (with the configured
    ``run_as_user``/``run_as_group``, ``images.root: run-as-user``), ``assume`` (facts unknown,
    ``images.unknown: assume-nonroot``), ``keep`` (no ``runAsNonRoot``; ``reason`` is the
    finding) or ``user-namespace`` (no ``runAsNonRoot`` and nothing to report: the image may
    run as root, inside the pod's own user namespace). ``reason`` explains the decision in
    change messages and findings. ``root``: the image runs, or may run, as root, which a user
    namespace would make harmless (``images.root: user-namespace``).
    """

    action: Action
    reason: str
    run_as_user: int | None = None
    run_as_group: int | None = None
    root: bool = False

    @property
    def adds_non_root(self) -> bool:
        return self.action not in ("keep", "user-namespace")


def decide_image(
    image: str,
    facts: ImageFacts | None,
    policy: ImagePolicy,
    ids: tuple[int, int] = (65532, 65532),
    *,
    windows: bool = False,
    user_namespace: bool = False,
) -> ImageDecision:
    """The decision for a container whose ``image`` (as written) has ``facts`` (``None`` or
    unknown facts: ``policy.unknown`` decides), when no ``runAsUser`` is set.

    ``user_namespace``: the pod has ``hostUsers: false`` and the policy version relaxes
    ``restricted`` for it (v1.35 and later)."""
    inside = user_namespace and policy.root == "user-namespace"
    if facts is None or not facts.known:
        detail = f" ({facts.detail})" if facts is not None and facts.detail else ""
        if policy.unknown == "assume-nonroot":
            return ImageDecision(
                "assume",
                f"the user of image {image} is not known{detail}; assumed non-root "
                "(images.unknown: assume-nonroot)",
            )
        if inside and not windows:
            return _in_user_namespace(image, f" may run as root (its user is not known{detail})")
        return ImageDecision(
            "keep",
            f"the user of image {image} is not known{detail}; runAsNonRoot left out, as the "
            "kubelet refuses it for an image that runs as root or as a named user "
            "(images.unknown: keep); set runAsUser, or let hardener look the image up",
            root=True,
        )
    user = parse_image_user(facts.user)
    if windows:
        if user.name is not None and user.name.casefold() == WINDOWS_ROOT_USER.casefold():
            return ImageDecision(
                "keep",
                f"image {image} runs as {user.name}; set windowsOptions.runAsUserName or use an "
                "image with a non-administrator user",
            )
        who = f"as {facts.user}" if facts.user else "as its default user"
        return ImageDecision("non-root", f"image {image} runs {who}, not {WINDOWS_ROOT_USER}")
    if user.name is not None:
        if facts.uid is None:
            if inside:
                return _in_user_namespace(
                    image, f' runs as user "{user.name}", whose uid is not known'
                )
            return ImageDecision(
                "keep",
                f'image {image} runs as user "{user.name}", a name the kubelet cannot verify as '
                "non-root, and its uid is not known; set runAsUser to its uid",
                root=True,
            )
        if facts.uid == 0:
            return _root(image, f' (user "{user.name}" is uid 0)', policy, ids, inside)
        if not 0 < facts.uid <= MAX_UID:
            return _invalid(image, facts.uid)
        return ImageDecision(
            "run-as-uid",
            f'image {image} runs as user "{user.name}", uid {facts.uid}, which the kubelet can '
            "verify only as a number",
            run_as_user=facts.uid,
        )
    if user.uid is None or user.uid == 0:
        return _root(image, "", policy, ids, inside)
    if not 0 < user.uid <= MAX_UID:
        return _invalid(image, user.uid)
    return ImageDecision("non-root", f"image {image} runs as uid {user.uid}")


def _in_user_namespace(image: str, what: str) -> ImageDecision:
    return ImageDecision(
        "user-namespace",
        f"image {image}{what}, inside the pod's own user namespace (hostUsers: false), where "
        "root is not root on the node",
        root=True,
    )


def _root(
    image: str, how: str, policy: ImagePolicy, ids: tuple[int, int], inside: bool = False
) -> ImageDecision:
    if inside:
        return _in_user_namespace(image, f" runs as root{how}")
    if policy.root == "run-as-user":
        return ImageDecision(
            "run-as-ids",
            f"image {image} runs as root{how}; runAsUser {ids[0]} and runAsGroup {ids[1]} from "
            "ids (images.root: run-as-user)",
            run_as_user=ids[0],
            run_as_group=ids[1],
        )
    return ImageDecision(
        "keep", f"image {image} runs as root{how}; set runAsUser or use a non-root image", root=True
    )


def _invalid(image: str, uid: int) -> ImageDecision:
    return ImageDecision(
        "keep",
        f"image {image} runs as user id {uid}, which the kubelet refuses as invalid "
        f"(it accepts 1 to {MAX_UID}); set runAsUser",
    )


@dataclass(unsafe_hash=True)
class _Verdict:
    """Whether a container can take ``runAsNonRoot: true`` once ``fill`` is set on it."""

    ok: bool
    reason: str
    fill: tuple[tuple[str, int], ...] = ()
    image: bool = False
    """The verdict comes from the image (not from an explicit user): worth a finding when not
    ok."""
    quiet: bool = False
    """Not ok, and nothing to report: the pod's user namespace makes the image's root
    harmless."""
    root: bool = False
    """The image runs, or may run, as root (a user namespace would make it harmless)."""


def _verdict(ctx: RuleContext, container: ContainerSite) -> _Verdict:
    if ctx.windows:
        name = ctx.container_sc(container, "windowsOptions", "runAsUserName")
        if name is MISSING or name is None:
            pod_options = ctx.pod_sc("windowsOptions")
            name = pod_options.get("runAsUserName") if isinstance(pod_options, dict) else None
        if isinstance(name, str):
            if name.casefold() == WINDOWS_ROOT_USER.casefold():
                return _Verdict(False, f"runAsUserName {name}")
            return _Verdict(True, f"it runs as {name}")
    else:
        own = ctx.container_sc(container, "runAsUser")
        run_as = as_int(own) if own is not MISSING and own is not None else None
        source = "container"
        if run_as is None and (own is MISSING or own is None):
            run_as, source = as_int(ctx.pod_sc("runAsUser")), "pod"
        if run_as is not None:
            return _Verdict(run_as != 0, f"the {source} runs as user {run_as}")
    reference = container.container.get("image")
    decision = decide_image(
        reference if isinstance(reference, str) else "(none)",
        ctx.facts(container),
        ctx.image_policy,
        ctx.ids,
        windows=ctx.windows,
        user_namespace=_relaxed(ctx),
    )
    fill: tuple[tuple[str, int], ...] = ()
    if decision.run_as_user is not None:
        fill = (("runAsUser", decision.run_as_user),)
    if decision.run_as_group is not None and (
        ctx.container_sc(container, "runAsGroup") is MISSING and ctx.pod_sc("runAsGroup") is MISSING
    ):
        fill = (*fill, ("runAsGroup", decision.run_as_group))
    return _Verdict(
        decision.adds_non_root,
        decision.reason,
        fill,
        image=True,
        quiet=decision.action == "user-namespace",
        root=decision.root,
    )


def _relaxed(ctx: RuleContext) -> bool:
    """The pod has ``hostUsers: false`` and the policy version lets such a pod run as root."""
    return ctx.user_namespace_policy and ctx.in_user_namespace()


class _Pod:
    """The rule's view of the containers of one pod: a class rather than closures, whose
    compiled form would make a reference cycle of every pod's work (left to the collector)."""

    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.verdicts: dict[int, _Verdict] = {}

    def verdict(self, container: ContainerSite) -> _Verdict:
        # Worked out before anything is filled in, so a container keeps one verdict.
        key = id(container)
        found = self.verdicts.get(key)
        if found is None:
            found = self.verdicts[key] = _verdict(self.ctx, container)
        return found

    def explicit(self, container: ContainerSite) -> bool | None:
        return as_bool(self.ctx.container_sc(container, "runAsNonRoot"))

    def covered(self, container: ContainerSite) -> bool:
        return self.explicit(container) is not None

    def blocked(self, container: ContainerSite) -> bool:
        return not self.verdict(container).ok

    def make_verifiable(self, container: ContainerSite) -> None:
        decided = self.verdict(container)
        for key, value in decided.fill:
            self.ctx.set(
                (*container.path, "securityContext", key),
                value,
                f'set {key}={value} on container "{container.name}": {decided.reason}',
                container=container,
            )


def apply(ctx: RuleContext) -> None:
    if ctx.site.host_process:
        # HostProcess containers run as a node account (SYSTEM, ...) by design; the Pod
        # Security Standards treat them as privileged, and runAsNonRoot would only keep them
        # from starting.
        return
    spec_sc = (*ctx.site.spec_path, "securityContext")
    pod_flag = as_bool(ctx.pod_sc("runAsNonRoot"))
    pod_root = as_int(ctx.pod_sc("runAsUser")) == 0
    # In its own user namespace (v1.35 policies) a pod may run as root: Pod Security accepts
    # runAsUser 0 and runAsNonRoot false there, so neither is a finding.
    relaxed = _relaxed(ctx)

    if pod_root and not relaxed:
        ctx.finding(
            "pod sets securityContext.runAsUser=0 (root); set a non-zero user",
            (*spec_sc, "runAsUser"),
            check="runAsUser",
            level="restricted",
        )
    for container in ctx.site.containers:
        if relaxed:
            break
        if ctx.mine(container) and as_int(ctx.container_sc(container, "runAsUser")) == 0:
            ctx.finding(
                f'container "{container.name}" sets securityContext.runAsUser=0 (root); '
                "set a non-zero user",
                (*container.path, "securityContext", "runAsUser"),
                container=container,
                check="runAsUser",
                level="restricted",
            )

    pod = _Pod(ctx)
    verdict, explicit, make_verifiable = pod.verdict, pod.explicit, pod.make_verifiable

    if pod_flag is False:
        inheriting = [c for c in ctx.site.containers if explicit(c) is None]
        if (
            ctx.enforce
            and ctx.pod_editable
            and not pod_root
            and all(ctx.mine(c) and verdict(c).ok for c in inheriting)
        ):
            for container in inheriting:
                make_verifiable(container)
            ctx.set(
                (*spec_sc, "runAsNonRoot"),
                True,
                "enforced runAsNonRoot=true on the pod",
                replace=True,
            )
        elif not relaxed:
            ctx.finding(
                "pod sets securityContext.runAsNonRoot=false",
                (*spec_sc, "runAsNonRoot"),
                level="restricted",
            )

    for container in ctx.containers:
        if explicit(container) is False:
            if ctx.enforce and verdict(container).ok:
                make_verifiable(container)
                ctx.set(
                    (*container.path, "securityContext", "runAsNonRoot"),
                    True,
                    f'enforced runAsNonRoot=true on container "{container.name}": '
                    f"{verdict(container).reason}",
                    container=container,
                    replace=True,
                )
            elif not relaxed:
                ctx.finding(
                    f'container "{container.name}" sets securityContext.runAsNonRoot=false',
                    (*container.path, "securityContext", "runAsNonRoot"),
                    container=container,
                    level="restricted",
                )

    # Containers that already run with runAsNonRoot=true (their own, or the pod's): fill in
    # what lets the kubelet verify it, or say that the user's own values keep it from starting.
    pod_true = as_bool(ctx.pod_sc("runAsNonRoot")) is True
    for container in ctx.containers:
        flag = explicit(container)
        if not (flag is True or (flag is None and pod_true)):
            continue
        if verdict(container).ok:
            make_verifiable(container)
            continue
        _report_refusal(ctx, container)

    if ctx.pod_sc("runAsNonRoot") is not MISSING or pod_root:
        # The pod already decides (true, or a reported false), or the pod runs as root.
        return

    pod_level, containers = pod_or_containers(ctx, covered=pod.covered, blocked=pod.blocked)
    if pod_level:
        uncovered = [c for c in ctx.site.containers if explicit(c) is None]
        for container in uncovered:
            make_verifiable(container)
        reasons = dict.fromkeys(verdict(c).reason for c in uncovered)
        ctx.set(
            (*spec_sc, "runAsNonRoot"),
            True,
            f"set runAsNonRoot=true on the pod: {'; '.join(reasons)}",
        )
        return
    for container in containers:
        make_verifiable(container)
        ctx.set(
            (*container.path, "securityContext", "runAsNonRoot"),
            True,
            f'set runAsNonRoot=true on container "{container.name}": {verdict(container).reason}',
            container=container,
        )
    kept_root: list[str] = []
    for container in ctx.containers:
        decided = verdict(container)
        if explicit(container) is None and not decided.ok and decided.image and not decided.quiet:
            ctx.note(
                f'container "{container.name}": {decided.reason}',
                (*container.path, "image"),
                container=container,
            )
            if decided.root:
                kept_root.append(container.name)
    missing = ctx.user_namespace_missing
    if kept_root and missing and ctx.image_policy.root == "user-namespace":
        # Its own line (a webhook warning is cut at 256 characters): why the pod got no user
        # namespace, in which these containers would run as root safely.
        names = ", ".join(f'"{name}"' for name in kept_root)
        ctx.note(
            f"no user namespace for this pod, in which container {names} could run as root "
            f"safely: {missing}",
            ctx.site.spec_path,
        )


def _report_refusal(ctx: RuleContext, container: ContainerSite) -> None:
    """Report a container that the user's own values already keep from starting."""
    pod_view = {"securityContext": ctx.get((*ctx.site.spec_path, "securityContext"))}
    container_view = {"securityContext": ctx.get((*container.path, "securityContext"))}
    decided = refusal(
        pod_view, container_view, image_user(ctx.facts(container)), windows=ctx.windows
    )
    if decided is None or "runAsUser breaks" in decided[0]:
        return  # not provable without facts, or runAsUser 0, which is reported already
    ctx.note(
        f'container "{container.name}" will not start: the kubelet says "{decided[0]}"; '
        f"{_advice(ctx.windows)}",
        (*container.path, "image"),
        container=container,
    )


def _advice(windows: bool) -> str:
    if windows:
        return "set windowsOptions.runAsUserName or use a non-administrator image"
    return "set runAsUser or use an image with a numeric non-root user"


RULE: Final[Rule] = Rule(
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
