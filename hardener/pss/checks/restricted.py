"""The restricted checks of Pod Security Admission, one decorated function each, in PSA's order.

The restricted level also runs every baseline check, except those a restricted check
``replaces``. From v1.25 ``allowPrivilegeEscalation``, ``seccompProfile_restricted`` and
``capabilities_restricted`` do not apply to Windows pods; from v1.35 a pod with
``hostUsers: false`` is exempt from ``runAsNonRoot`` and ``runAsUser``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from hardener.pss._capabilities import drops_all, loose_all, restricted_may_add, runtime_name
from hardener.pss._view import ContainerView, PodView, Problem, quote
from hardener.pss.checks._common import (
    SECCOMP_TYPES_TEXT,
    V1_25_WINDOWS_EXEMPT,
    V1_35_USER_NAMESPACES,
    added_capabilities,
    capabilities_add,
    is_int,
    pod_volumes,
    sc_wrong_type,
    seccomp_type_problem,
    unmasked_proc_mounts,
    volume_label,
    wrong_type,
)
from hardener.pss.checks._register import CheckList

check = CheckList("restricted")
"""The restricted checks, in the order they are declared below."""

ALLOWED_VOLUME_SOURCES: Final = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
RESTRICTED_VOLUME_SOURCES: Final = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


@check("restrictedVolumes", since=(1, 0), title="Volume types", replaces=("hostPathVolumes",))
def restricted_volumes(pod: PodView) -> Iterator[Problem]:
    for index, volume in enumerate(pod_volumes(pod)):
        if not isinstance(volume, dict):
            if volume is not None:
                yield Problem(
                    wrong_type("pod", f"volumes[{index}]", "an object", volume),
                    (*pod.spec_path, "volumes", index),
                )
            continue
        for key, value in volume.items():
            if value is not None and key in ALLOWED_VOLUME_SOURCES:
                break  # an allowed volume type: fine
        else:
            problem = _restricted_source(pod, index, volume)
            if problem is not None:
                yield problem


def _restricted_source(pod: PodView, index: int, volume: Mapping[str, Any]) -> Problem | None:
    """The problem with a volume that sets no allowed source."""
    sources = [k for k, v in volume.items() if k != "name" and v is not None]
    restricted = [s for s in RESTRICTED_VOLUME_SOURCES if s in sources]
    # A source this table does not know is reported too: restricted is an allow list.
    # No source at all: the API server defaults the volume to emptyDir, which is allowed.
    source = restricted[0] if restricted else sources[0] if sources else None
    if source is None:
        return None
    return Problem(
        f"volume {quote(volume_label(volume, index))} uses restricted volume type {quote(source)}",
        (*pod.spec_path, "volumes", index, source),
    )


def _escalates_anyway(c: ContainerView) -> bool:
    """A container that is privileged or adds SYS_ADMIN (in any spelling)."""
    if c.sc.get("privileged") is True:
        return True
    added = capabilities_add(c)
    if not isinstance(added, list):
        return False
    return any(isinstance(cap, str) and runtime_name(cap) == "SYS_ADMIN" for cap in added)


@check("allowPrivilegeEscalation", since=(1, 8), title="Privilege escalation", fixable=True)
def allow_privilege_escalation(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_25_WINDOWS_EXEMPT and pod.windows:
        return
    for c in pod.containers:
        if c.sc_invalid:
            yield Problem(
                wrong_type(c.label, "securityContext", "an object", c.sc_raw), c.sc_path, c.name
            )
            continue
        value = c.sc.get("allowPrivilegeEscalation")
        if value is False:
            continue
        message = f"{c.label} must set securityContext.allowPrivilegeEscalation=false"
        path = (*c.sc_path, "allowPrivilegeEscalation")
        if value is None:
            # The API server rejects allowPrivilegeEscalation=false next to privileged=true or
            # an added SYS_ADMIN, so hardener cannot fill it in there.
            yield Problem(message, c.path, c.name, fixable=not _escalates_anyway(c))
        elif value is True:
            yield Problem(message, path, c.name)
        else:
            yield sc_wrong_type(c, "allowPrivilegeEscalation", "the boolean false", value)


@check("runAsNonRoot", since=(1, 0), title="Running as non-root", fixable=True)
def run_as_non_root(pod: PodView) -> Iterator[Problem]:
    # From v1.35 a pod in its own user namespace may run as root inside it.
    if pod.version >= V1_35_USER_NAMESPACES and pod.in_user_namespace:
        return
    pod_value = pod.sc.get("runAsNonRoot")
    if pod_value is False:
        yield Problem(
            "pod must not set securityContext.runAsNonRoot=false", (*pod.sc_path, "runAsNonRoot")
        )
    elif pod_value is not None and pod_value is not True:
        yield sc_wrong_type(pod, "runAsNonRoot", "a boolean", pod_value)
    elif pod.sc_invalid:
        yield Problem(wrong_type("pod", "securityContext", "an object", pod.sc_raw), pod.sc_path)
    pod_ok = pod_value is True
    # Filling in the field is only a fix when nothing explicit says otherwise.
    pod_silent = pod_value is None and not pod.sc_invalid
    for c in pod.containers:
        value = c.sc.get("runAsNonRoot")
        if value is True:
            continue
        if value is False:
            yield Problem(
                f"{c.label} must not set securityContext.runAsNonRoot=false",
                (*c.sc_path, "runAsNonRoot"),
                c.name,
            )
        elif value is not None:
            yield sc_wrong_type(c, "runAsNonRoot", "a boolean", value)
        elif not pod_ok:
            yield Problem(
                f"pod or {c.label} must set securityContext.runAsNonRoot=true",
                c.path,
                c.name,
                fixable=pod_silent and not c.sc_invalid,
            )


@check("runAsUser", since=(1, 23), title="Running as non-root user")
def run_as_user(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_35_USER_NAMESPACES and pod.in_user_namespace:
        return
    if "runAsUser" not in pod.sc_fields:
        return
    for holder in pod.holders:
        value = holder.sc.get("runAsUser")
        if value is None or (is_int(value) and value != 0):
            continue
        if is_int(value):
            message = f"{holder.label} must not set securityContext.runAsUser=0"
            yield Problem(message, (*holder.sc_path, "runAsUser"), holder.container)
        else:
            yield sc_wrong_type(holder, "runAsUser", "an integer", value)


@check(
    "seccompProfile_restricted",
    since=(1, 19),
    title="Seccomp (restricted)",
    fixable=True,
    replaces=("seccompProfile_baseline",),
)
def seccomp_profile_restricted(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_25_WINDOWS_EXEMPT and pod.windows:
        return
    pod_profile = pod.sc.get("seccompProfile")
    pod_problem = seccomp_type_problem(pod, pod_profile)
    if pod_problem is not None:
        yield pod_problem._replace(fixable=_type_absent(pod_profile))
    elif pod.sc_invalid:
        yield Problem(wrong_type("pod", "securityContext", "an object", pod.sc_raw), pod.sc_path)
    pod_ok = pod_profile is not None and pod_problem is None
    pod_silent = (
        not pod_ok and (pod_profile is None or _type_absent(pod_profile)) and not pod.sc_invalid
    )
    for c in pod.containers:
        profile = c.sc.get("seccompProfile")
        if profile is not None:
            problem = seccomp_type_problem(c, profile)
            if problem is not None:
                yield problem._replace(fixable=_type_absent(profile))
        elif not pod_ok:
            yield Problem(
                f"pod or {c.label} must set securityContext.seccompProfile.type to "
                + SECCOMP_TYPES_TEXT,
                c.path,
                c.name,
                fixable=pod_silent and not c.sc_invalid,
            )


def _type_absent(profile: Any) -> bool:
    return isinstance(profile, dict) and profile.get("type") is None


@check(
    "capabilities_restricted",
    since=(1, 22),
    title="Capabilities (restricted)",
    fixable=True,
    replaces=("capabilities_baseline",),
)
def capabilities_restricted(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_25_WINDOWS_EXEMPT and pod.windows:
        return
    for c in pod.containers:
        caps = c.sc.get("capabilities")
        drop = caps.get("drop") if isinstance(caps, dict) else None
        if not drops_all(drop):
            yield _not_dropping_all(c, caps, drop)
        add = caps.get("add") if isinstance(caps, dict) else None
        if add is not None:
            yield from added_capabilities(c, add, restricted_may_add)


def _not_dropping_all(c: ContainerView, caps: Any, drop: Any) -> Problem:
    """Why a container does not drop ALL capabilities."""
    message = f'{c.label} must set securityContext.capabilities.drop=["ALL"]'
    caps_path = (*c.sc_path, "capabilities")
    if c.sc_invalid:
        return Problem(
            wrong_type(c.label, "securityContext", "an object", c.sc_raw), c.sc_path, c.name
        )
    if caps is None:
        return Problem(message, c.path, c.name, fixable=True)
    if not isinstance(caps, dict):
        return sc_wrong_type(c, "capabilities", "an object", caps)
    if drop is None:
        return Problem(message, c.path, c.name, fixable=True)
    if not isinstance(drop, list):
        return sc_wrong_type(c, "capabilities.drop", "an array", drop)
    variant = loose_all(drop)
    if variant is not None:
        message += (
            f" ({quote(variant)} drops every capability at run time, but Pod Security "
            'Admission only accepts "ALL" spelled exactly)'
        )
    # Adding "ALL" to an existing drop list only takes more away: a safe fill-in.
    return Problem(message, (*caps_path, "drop"), c.name, fixable=True)


@check(
    "procMount_restricted",
    since=(1, 35),
    title="/proc mount type (restricted)",
    replaces=("procMount",),
)
def proc_mount_restricted(pod: PodView) -> Iterator[Problem]:
    return unmasked_proc_mounts(pod)
