"""The kubelet's last word on a container's user: a replay of its ``verifyRunAsNonRoot``.

The API server and Pod Security Admission accept ``runAsNonRoot: true`` on any pod; the kubelet
decides at container start, from the effective security context and the user the image runs
as, and refuses with ``CreateContainerConfigError``. hardener promises never to emit a pod the
kubelet refuses, so the engine's tests, ``hardener check`` and the webhook share this one
replay (Kubernetes ``pkg/kubelet/kuberuntime/security_context_others.go`` and
``security_context_windows.go``, v1.36):

Linux, when the effective ``runAsNonRoot`` (container over pod) is true:

- an effective ``runAsUser`` decides alone: 0 is refused ("container's runAsUser breaks
  non-root policy"), any other value passes, whatever the image;
- else the image user as the runtime reads it (``parse_image_user``): a name is refused
  ("image has non-numeric user (NAME), cannot verify user is non-root"); no user or uid 0 is
  refused ("image will run as root"); a uid outside 0..2147483647 is refused ("image has an
  invalid user id").

Windows (the pod is meant for Windows nodes, ``is_windows``), when the effective
``runAsNonRoot`` is true: ``runAsUser`` is ignored; an effective
``windowsOptions.runAsUserName`` decides alone (refused when it is ``ContainerAdministrator``,
in any case); else an image user named ``ContainerAdministrator`` is refused.

Every container the kubelet starts is checked: init, regular and ephemeral.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hardener.image_facts import MAX_UID, ImageFacts, ImageUser, parse_image_user
from hardener.locate import ContainerSite, JsonPath, PodSite
from hardener.pointer import join_path
from hardener.records import picklable

__all__ = [
    "WINDOWS_ROOT_USER",
    "Refusal",
    "image_user",
    "is_windows",
    "refusal",
    "refusals",
]

WINDOWS_ROOT_USER: Final = "ContainerAdministrator"


@dataclass(frozen=True)
class Refusal:
    """Why the kubelet would refuse to start one container.

    ``reason`` is the kubelet's own message without its ``(pod: ..., container: ...)`` tail;
    ``pointer`` (RFC 6901, within the object) is the field that decides: the ``runAsUser`` or
    ``runAsUserName`` that breaks the policy, or the container's ``image`` when the image's
    user does.
    """

    container: str
    reason: str
    pointer: str


def is_windows(site: PodSite) -> bool:
    """A pod meant for Windows nodes, where Linux-only security fields are rejected and the
    kubelet checks the Windows user instead of the uid."""
    spec = site.spec
    os_field = spec.get("os")
    # A name of the wrong type names no operating system (and is never stringified).
    name = os_field.get("name") if isinstance(os_field, dict) else None
    if isinstance(name, str) and name.lower() == "windows":
        return True
    selector = spec.get("nodeSelector")
    name = selector.get("kubernetes.io/os") if isinstance(selector, dict) else None
    if isinstance(name, str) and name.lower() == "windows":
        return True
    return site.host_process


def image_user(facts: ImageFacts | None) -> ImageUser | None:
    """The image user as the runtime hands it to the kubelet; ``None`` when not known."""
    if facts is None or not facts.known:
        return None
    return parse_image_user(facts.user)


def _effective(
    pod_sc: Mapping[str, Any], container_sc: Mapping[str, Any], key: str
) -> tuple[Any, str | None]:
    """The value the kubelet uses (container over pod; JSON null is Go's nil) and where from."""
    value = container_sc.get(key)
    if value is not None:
        return value, "container"
    value = pod_sc.get(key)
    if value is not None:
        return value, "pod"
    return None, None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def refusal(
    pod_spec: Mapping[str, Any],
    container: Mapping[str, Any],
    user: ImageUser | None,
    *,
    windows: bool = False,
) -> tuple[str, JsonPath] | None:
    """The kubelet's reason to refuse ``container`` of ``pod_spec``, and the field to blame as
    a path relative to the pod spec (``("securityContext", "runAsUser")``) or, starting with
    ``"container"``, to the container (``("container", "image")``).

    ``user`` is the image user (``image_user``); ``None`` means unknown: a refusal that would
    depend on it is not reported (only what the manifest alone proves is).
    """
    pod_sc = _mapping(pod_spec.get("securityContext"))
    container_sc = _mapping(container.get("securityContext"))
    non_root, _ = _effective(pod_sc, container_sc, "runAsNonRoot")
    if non_root is not True:
        return None
    if windows:
        return _windows_refusal(pod_sc, container_sc, user)
    run_as, source = _effective(pod_sc, container_sc, "runAsUser")
    if isinstance(run_as, int) and not isinstance(run_as, bool):
        if run_as == 0:
            where: JsonPath = ("securityContext", "runAsUser")
            return "container's runAsUser breaks non-root policy", (
                ("container", *where) if source == "container" else where
            )
        return None
    if user is None:
        return None
    image: JsonPath = ("container", "image")
    if user.uid is None and user.name:
        return (
            f"container has runAsNonRoot and image has non-numeric user ({user.name}), "
            "cannot verify user is non-root",
            image,
        )
    uid = 0 if user.uid is None else user.uid  # no user at all: the kubelet takes root
    if uid == 0:
        return "container has runAsNonRoot and image will run as root", image
    if not 0 <= uid <= MAX_UID:
        return (
            f"container has runAsNonRoot and image has an invalid user id ({uid}). "
            f"(Must be 1-({MAX_UID})): must be between 0 and {MAX_UID}, inclusive",
            image,
        )
    return None


def _windows_refusal(
    pod_sc: Mapping[str, Any], container_sc: Mapping[str, Any], user: ImageUser | None
) -> tuple[str, JsonPath] | None:
    # The options merge field by field (DetermineEffectiveSecurityContext).
    name, source = _effective(
        _mapping(pod_sc.get("windowsOptions")),
        _mapping(container_sc.get("windowsOptions")),
        "runAsUserName",
    )
    if isinstance(name, str):
        if name.casefold() == WINDOWS_ROOT_USER.casefold():
            where: JsonPath = ("securityContext", "windowsOptions", "runAsUserName")
            return (
                f"container's runAsUserName ({name}) which will be regarded as root identity "
                "and will break non-root policy",
                ("container", *where) if source == "container" else where,
            )
        return None
    if user is None or not user.name:
        return None
    if user.name.casefold() == WINDOWS_ROOT_USER.casefold():
        return (
            f"container's runAsUser ({user.name}) which will be regarded as root identity and "
            "will break non-root policy",
            ("container", "image"),
        )
    return None


def _pointer(site: PodSite, container: ContainerSite, where: JsonPath) -> str:
    if where and where[0] == "container":
        return join_path((*container.path, *where[1:]))
    return join_path((*site.spec_path, *where))


def refusals(site: PodSite, images: Mapping[str, ImageFacts] | None = None) -> list[Refusal]:
    """Every container of ``site`` the kubelet would refuse to start, in document order.

    ``images`` maps a container's ``image`` string, as written, to its facts; a container
    whose image has no known facts is refused only when the manifest alone proves it
    (``runAsUser: 0`` with ``runAsNonRoot: true``).
    """
    windows = is_windows(site)
    found: list[Refusal] = []
    for container in site.containers:
        reference = container.container.get("image")
        facts = images.get(reference) if images and isinstance(reference, str) else None
        decided = refusal(site.spec, container.container, image_user(facts), windows=windows)
        if decided is not None:
            reason, where = decided
            found.append(Refusal(container.name, reason, _pointer(site, container, where)))
    return found


picklable(Refusal)
