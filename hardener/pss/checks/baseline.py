"""The baseline checks of Pod Security Admission, one decorated function each, in PSA's order.

A check first reads the field it is about and moves on when it is fine (the webhook runs
every check on every pod it admits, and almost every pod passes); labels, messages and paths
are only built for a problem. Version differences inside a check (the sysctl safe list,
the SELinux types of v1.31, the user-namespace relaxation of v1.35) are decided here from
``PodView.version``; which checks run at all is decided by the registry from ``since``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from hardener.locate import (
    APPARMOR_CONTAINER_ANNOTATION_PREFIX,
    SECCOMP_CONTAINER_ANNOTATION_PREFIX,
    SECCOMP_POD_ANNOTATION,
)
from hardener.model import json_type
from hardener.pss._capabilities import baseline_may_add
from hardener.pss._version import Version
from hardener.pss._view import ContainerView, Holder, JsonPath, PodView, Problem, quote
from hardener.pss.checks._common import (
    V1_19_SECCOMP_FIELDS,
    V1_31_SELINUX_ENGINE,
    V1_35_USER_NAMESPACES,
    added_capabilities,
    capabilities_add,
    is_int,
    must_not_be_true,
    one_of,
    pod_volumes,
    sc_wrong_type,
    seccomp_annotation_allowed,
    seccomp_type_problem,
    unmasked_proc_mounts,
    volume_label,
    wrong_type,
)
from hardener.pss.checks._register import CheckList

check = CheckList("baseline")
"""The baseline checks, in the order they are declared below."""

_HOST_NAMESPACES: Final = ("hostNetwork", "hostPID", "hostIPC")


@check("hostNamespaces", since=(1, 0), title="Host namespaces")
def host_namespaces(pod: PodView) -> Iterator[Problem]:
    for key in _HOST_NAMESPACES:
        value = pod.spec.get(key)
        if value is None or value is False:
            continue
        path = (*pod.spec_path, key)
        if value is True:
            yield Problem(f"host namespaces ({key}=true)", path)
        else:
            yield Problem(
                f"host namespaces ({key} must be a boolean, not {json_type(value)})", path
            )


@check("privileged", since=(1, 0), title="Privileged containers")
def privileged(pod: PodView) -> Iterator[Problem]:
    if "privileged" not in pod.sc_fields:
        return
    for c in pod.containers:
        value = c.sc.get("privileged")
        if value is None or value is False:
            continue
        yield from must_not_be_true(c, "privileged", value)


@check("capabilities_baseline", since=(1, 0), title="Capabilities")
def capabilities_baseline(pod: PodView) -> Iterator[Problem]:
    if "capabilities" not in pod.sc_fields:
        return
    for c in pod.containers:
        add = capabilities_add(c)
        if add is not None:
            yield from added_capabilities(c, add, baseline_may_add)


@check("hostPathVolumes", since=(1, 0), title="HostPath volumes")
def host_path_volumes(pod: PodView) -> Iterator[Problem]:
    for index, volume in enumerate(pod_volumes(pod)):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            yield Problem(
                f"hostPath volumes (volume {quote(volume_label(volume, index))} must not use "
                "hostPath)",
                (*pod.spec_path, "volumes", index, "hostPath"),
            )


@check("hostPorts", since=(1, 0), title="Host ports")
def host_ports(pod: PodView) -> Iterator[Problem]:
    for c in pod.containers:
        ports = c.data.get("ports")
        if ports is None:
            continue
        if not isinstance(ports, list):
            yield Problem(
                wrong_type(c.label, "ports", "an array", ports), (*c.path, "ports"), c.name
            )
            continue
        for index, port in enumerate(ports):
            if not isinstance(port, dict):
                continue
            host_port = port.get("hostPort")
            if host_port is None or (is_int(host_port) and host_port == 0):
                continue
            path = (*c.path, "ports", index, "hostPort")
            if is_int(host_port):
                yield Problem(f"{c.label} must not use hostPort {host_port}", path, c.name)
            else:
                yield Problem(
                    wrong_type(c.label, "hostPort", "an integer", host_port), path, c.name
                )


_APPARMOR_TYPES: Final = frozenset({"RuntimeDefault", "Localhost"})


def _apparmor_annotation_allowed(value: Any) -> bool:
    return isinstance(value, str) and (
        value in ("", "runtime/default") or value.startswith("localhost/")
    )


def _apparmor_field(holder: Holder, profile: Any) -> Iterator[Problem]:
    if not isinstance(profile, dict):
        yield sc_wrong_type(holder, "appArmorProfile", "an object", profile)
        return
    profile_type = profile.get("type")
    if not one_of(profile_type, _APPARMOR_TYPES):
        shown = quote(profile_type if profile_type is not None else "")
        yield Problem(
            f"{holder.label} must not set AppArmor profile type to {shown}",
            (*holder.sc_path, "appArmorProfile", "type"),
            holder.container,
        )


@check("appArmorProfile", since=(1, 0), title="AppArmor")
def app_armor_profile(pod: PodView) -> Iterator[Problem]:
    if "appArmorProfile" in pod.sc_fields:
        for holder in pod.holders:
            profile = holder.sc.get("appArmorProfile")
            if profile is not None:
                yield from _apparmor_field(holder, profile)
    annotations = pod.metadata.get("annotations")
    if not isinstance(annotations, dict):
        return
    for key, value in annotations.items():
        if (
            isinstance(key, str)
            and key.startswith(APPARMOR_CONTAINER_ANNOTATION_PREFIX)
            and not _apparmor_annotation_allowed(value)
        ):
            container = key[len(APPARMOR_CONTAINER_ANNOTATION_PREFIX) :]
            yield Problem(
                f"annotation {key}={quote(value)} must not set a forbidden AppArmor profile",
                (*pod.meta_path, "annotations", key),
                container,
            )


SELINUX_TYPES_1_0: Final = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31: Final = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(holder: Holder, options: Any, version: Version) -> Iterator[Problem]:
    path = (*holder.sc_path, "seLinuxOptions")
    who = holder.label
    if not isinstance(options, dict):
        yield sc_wrong_type(holder, "seLinuxOptions", "an object", options)
        return
    allowed = SELINUX_TYPES_1_31 if version >= V1_31_SELINUX_ENGINE else SELINUX_TYPES_1_0
    selinux_type = options.get("type")
    if selinux_type is not None and not one_of(selinux_type, allowed):
        yield Problem(
            f"{who} set forbidden securityContext.seLinuxOptions: type {quote(selinux_type)}",
            (*path, "type"),
            holder.container,
        )
    for key in ("user", "role"):
        value = options.get(key)
        if value is not None and value != "":
            yield Problem(
                f"{who} set forbidden securityContext.seLinuxOptions: {key} may not be set",
                (*path, key),
                holder.container,
            )


@check("seLinuxOptions", since=(1, 0), title="SELinux")
def se_linux_options(pod: PodView) -> Iterator[Problem]:
    if "seLinuxOptions" not in pod.sc_fields:
        return
    for holder in pod.holders:
        options = holder.sc.get("seLinuxOptions")
        if options is not None:
            yield from _selinux(holder, options, pod.version)


@check("procMount", since=(1, 0), title="/proc mount type")
def proc_mount(pod: PodView) -> Iterator[Problem]:
    # From v1.35 baseline allows any procMount in a pod with its own user namespace.
    if pod.version >= V1_35_USER_NAMESPACES and pod.in_user_namespace:
        return
    yield from unmasked_proc_mounts(pod)


@check("seccompProfile_baseline", since=(1, 0), title="Seccomp")
def seccomp_profile_baseline(pod: PodView) -> Iterator[Problem]:
    if pod.version < V1_19_SECCOMP_FIELDS:
        annotations = pod.metadata.get("annotations")
        if not isinstance(annotations, dict):
            return
        keys = [(SECCOMP_POD_ANNOTATION, None)] + [
            (SECCOMP_CONTAINER_ANNOTATION_PREFIX + c.name, c.name) for c in pod.containers
        ]
        for key, container in keys:
            if key in annotations and not seccomp_annotation_allowed(annotations[key]):
                yield Problem(
                    f"forbidden annotation {key}={quote(annotations[key])}",
                    (*pod.meta_path, "annotations", key),
                    container,
                )
        return
    # Baseline only forbids an explicit bad type; an absent seccompProfile is fine.
    if "seccompProfile" not in pod.sc_fields:
        return
    for holder in pod.holders:
        problem = seccomp_type_problem(holder, holder.sc.get("seccompProfile"))
        if problem is not None:
            yield problem


SYSCTLS_SAFE: Final[tuple[tuple[Version, frozenset[str]], ...]] = (
    (
        (1, 0),
        frozenset(
            {
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_unprivileged_port_start",
            }
        ),
    ),
    ((1, 27), frozenset({"net.ipv4.ip_local_reserved_ports"})),
    (
        (1, 29),
        frozenset(
            {
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes",
            }
        ),
    ),
    ((1, 32), frozenset({"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})),
)
"""The safe sysctls, by the policy version that first allows them."""


def safe_sysctls(version: Version) -> frozenset[str]:
    return frozenset().union(*(names for since, names in SYSCTLS_SAFE if since <= version))


@check("sysctls", since=(1, 0), title="Sysctls")
def sysctls(pod: PodView) -> Iterator[Problem]:
    items = pod.sc.get("sysctls")
    if items is None:
        return
    path = (*pod.sc_path, "sysctls")
    if not isinstance(items, list):
        yield Problem(wrong_type("pod", "securityContext.sysctls", "an array", items), path)
        return
    allowed = safe_sysctls(pod.version)
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if one_of(name, allowed):
            continue
        if isinstance(name, str):
            yield Problem(f"forbidden sysctl {quote(name)}", (*path, index, "name"))
        else:
            yield Problem(f"forbidden sysctl: entry {index} has no valid name", (*path, index))


@check("windowsHostProcess", since=(1, 0), title="HostProcess")
def windows_host_process(pod: PodView) -> Iterator[Problem]:
    if "windowsOptions" not in pod.sc_fields:
        return
    for holder in pod.holders:
        options = holder.sc.get("windowsOptions")
        if not isinstance(options, dict):
            continue
        value = options.get("hostProcess")
        if value is None or value is False:
            continue
        yield from must_not_be_true(holder, "windowsOptions.hostProcess", value)


_PROBES: Final = ("livenessProbe", "readinessProbe", "startupProbe")
_HOOKS: Final = ("postStart", "preStop")
_HANDLERS: Final = ("httpGet", "tcpSocket")


def _hosts(c: ContainerView, where: JsonPath, holder: Any) -> Iterator[Problem]:
    """A probe or lifecycle hook (``where`` in the container) whose handler names a host."""
    if not isinstance(holder, dict):
        return
    for kind in _HANDLERS:
        handler = holder.get(kind)
        if not isinstance(handler, dict):
            continue
        host = handler.get("host")
        if host is None or host == "":
            continue
        field = ".".join(str(p) for p in (*where, kind, "host"))
        yield Problem(
            f"{c.label} must not set {field} (probe or lifecycle host {quote(host)})",
            (*c.path, *where, kind, "host"),
            c.name,
        )


@check("hostProbesAndHostLifecycle", since=(1, 34), title="Host probes and lifecycle hooks")
def host_probes_and_host_lifecycle(pod: PodView) -> Iterator[Problem]:
    for c in pod.containers:
        for probe in _PROBES:
            holder = c.data.get(probe)
            if holder is not None:
                yield from _hosts(c, (probe,), holder)
        lifecycle = c.data.get("lifecycle")
        if isinstance(lifecycle, dict):
            for hook in _HOOKS:
                holder = lifecycle.get(hook)
                if holder is not None:
                    yield from _hosts(c, ("lifecycle", hook), holder)
