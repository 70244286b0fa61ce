"""What the baseline and the restricted checks share: the policy versions where a check
changes, type tests and messages, and the readers of capabilities, procMount and seccomp."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from hardener.model import json_type
from hardener.pss._version import Version
from hardener.pss._view import ContainerView, Holder, PodView, Problem, quote

# Policy versions where a check changes its behaviour.
V1_19_SECCOMP_FIELDS: Final[Version] = (1, 19)
V1_25_WINDOWS_EXEMPT: Final[Version] = (1, 25)
V1_31_SELINUX_ENGINE: Final[Version] = (1, 31)
V1_35_USER_NAMESPACES: Final[Version] = (1, 35)


def one_of(value: Any, allowed: frozenset[str]) -> bool:
    """``value in allowed`` for any JSON value (lists and objects are not hashable)."""
    return isinstance(value, str) and value in allowed


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def wrong_type(who: str, field: str, expected: str, value: Any) -> str:
    return f"{who} has {field} of the wrong type: must be {expected}, not {json_type(value)}"


def sc_wrong_type(holder: Holder, field: str, expected: str, value: Any) -> Problem:
    """``holder``'s ``securityContext.<field>`` (a dotted path) has the wrong JSON type."""
    return Problem(
        wrong_type(holder.label, f"securityContext.{field}", expected, value),
        (*holder.sc_path, *field.split(".")),
        holder.container,
    )


def pod_volumes(pod: PodView) -> list[Any]:
    """The volumes (of any JSON type each), or ``[]`` when there is no list of them."""
    volumes = pod.spec.get("volumes")
    return volumes if isinstance(volumes, list) else []


def volume_label(volume: Mapping[str, Any], index: int) -> str:
    name = volume.get("name")
    return name if isinstance(name, str) else f"volumes[{index}]"


def must_not_be_true(holder: Holder, field: str, value: Any) -> Iterator[Problem]:
    """The problem with ``holder``'s ``securityContext.<field>`` (a dotted path) set to
    anything but ``false``."""
    if value is True:
        message = f"{holder.label} must not set securityContext.{field}=true"
        yield Problem(message, (*holder.sc_path, *field.split(".")), holder.container)
    elif value is not None and value is not False:
        yield sc_wrong_type(holder, field, "a boolean", value)


def capabilities_add(c: ContainerView) -> Any:
    """``securityContext.capabilities.add`` as it is (``None`` when absent)."""
    caps = c.sc.get("capabilities")
    return caps.get("add") if isinstance(caps, dict) else None


def added_capabilities(
    c: ContainerView, add: Any, allowed: Callable[[Any], bool]
) -> Iterator[Problem]:
    if not isinstance(add, list):
        yield sc_wrong_type(c, "capabilities.add", "an array", add)
        return
    for index, cap in enumerate(add):
        if not allowed(cap):
            yield Problem(
                f"{c.label} must not include {quote(cap)} in securityContext.capabilities.add",
                (*c.sc_path, "capabilities", "add", index),
                c.name,
            )


def unmasked_proc_mounts(pod: PodView) -> Iterator[Problem]:
    if "procMount" not in pod.sc_fields:
        return
    for c in pod.containers:
        value = c.sc.get("procMount")
        if value is None or value == "Default":
            continue
        yield Problem(
            f"{c.label} must not set securityContext.procMount to {quote(value)}",
            (*c.sc_path, "procMount"),
            c.name,
        )


SECCOMP_TYPES: Final = frozenset({"RuntimeDefault", "Localhost"})
SECCOMP_TYPES_TEXT: Final = '"RuntimeDefault" or "Localhost"'


def seccomp_annotation_allowed(value: Any) -> bool:
    return isinstance(value, str) and (
        value in ("runtime/default", "docker/default") or value.startswith("localhost/")
    )


def seccomp_type_problem(holder: Holder, profile: Any) -> Problem | None:
    """The problem with an explicitly set seccompProfile, if any (None when absent or valid)."""
    if profile is None:
        return None
    if not isinstance(profile, dict):
        return sc_wrong_type(holder, "seccompProfile", "an object", profile)
    profile_type = profile.get("type")
    if one_of(profile_type, SECCOMP_TYPES):
        return None
    path = (*holder.sc_path, "seccompProfile", "type")
    if profile_type is None:
        return Problem(
            f"{holder.label} must set securityContext.seccompProfile.type to " + SECCOMP_TYPES_TEXT,
            path,
            holder.container,
        )
    return Problem(
        f"{holder.label} must not set securityContext.seccompProfile.type to "
        + quote(profile_type),
        path,
        holder.container,
    )
