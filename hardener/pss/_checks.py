"""What each Pod Security Standards check looks at, written against plain JSON values.

Every check is one function that reads a ``PodView`` and yields ``Problem`` records: the
message, the path of the offending field (or of the container / pod spec when the problem is
a field that is absent), the container concerned, and whether the problem is only an absent
field that hardener fills in. Version differences inside a check (the sysctl safe list, the
Windows exemptions from v1.25, the user-namespace relaxations from v1.35, ...) are decided
here from ``PodView.version``; which checks run at all is decided by the registry.

Objects are read the way the API server would decode them: ``null`` is the same as an
absent field. A field of the wrong JSON type is never trusted: where a check must read it,
it is reported as a violation that names the type, and it is never "fixable".

The webhook runs every check on every pod it admits, and almost every pod passes. So a check
first reads the field it is about and moves on when it is fine; labels (``container "app"``),
messages and paths are only built for a problem, and a helper that yields problems is only
entered for a field that is set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from hardener.locate import PodSite
from hardener.model import json_type, preview
from hardener.pss._registry import Version

__all__ = ["IMPLEMENTATIONS", "ContainerView", "PodView", "Problem"]

Path = tuple[str | int, ...]

_CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")

# Policy versions where a check changes its behaviour.
V1_19_SECCOMP_FIELDS: Version = (1, 19)
V1_25_WINDOWS_EXEMPT: Version = (1, 25)
V1_31_SELINUX_ENGINE: Version = (1, 31)
V1_35_USER_NAMESPACES: Version = (1, 35)


class Problem(NamedTuple):
    message: str
    path: Path
    container: str | None = None
    fixable: bool = False


# The views are built for every pod evaluated: plain slotted classes, cheaper to build than
# frozen ones. Nothing changes them after ``PodView.build``.


@dataclass(slots=True, eq=False)
class ContainerView:
    name: str
    path: Path
    data: Mapping[str, Any]
    sc: Mapping[str, Any]
    """The securityContext, or ``{}`` when it is absent or not an object."""
    sc_raw: Any
    sc_invalid: bool
    """A securityContext is set, and it is not an object."""

    @property
    def sc_path(self) -> Path:
        return (*self.path, "securityContext")

    @property
    def label(self) -> str:
        return _container_label(self.name)

    @property
    def container(self) -> str | None:
        """The container a problem here is reported for."""
        return self.name


@dataclass(slots=True, eq=False)
class PodView:
    spec: Mapping[str, Any]
    metadata: Mapping[str, Any]
    spec_path: Path
    meta_path: Path
    containers: tuple[ContainerView, ...]
    sc: Mapping[str, Any]
    sc_raw: Any
    sc_invalid: bool
    version: Version
    windows: bool
    """``spec.os.name`` is ``windows``."""
    in_user_namespace: bool
    """``hostUsers: false``: the pod runs in its own user namespace."""
    sc_fields: set[Any]
    """Every field that the pod's or a container's securityContext has (even ``null``): a
    check about a field that none has is done before it looks at a container."""

    @property
    def sc_path(self) -> Path:
        return (*self.spec_path, "securityContext")

    @property
    def label(self) -> str:
        return "pod"

    @property
    def container(self) -> str | None:
        return None

    @property
    def holders(self) -> tuple[PodView | ContainerView, ...]:
        """The pod and its containers: everything with a securityContext, in document order."""
        return (self, *self.containers)

    @classmethod
    def build(
        cls, spec: Any, metadata: Any, spec_path: Path, meta_path: Path, version: Version
    ) -> PodView:
        """The view of a pod spec of any shape: what is not an object is read as empty."""
        spec_map: Mapping[str, Any] = spec if isinstance(spec, dict) else {}
        meta_map: Mapping[str, Any] = metadata if isinstance(metadata, dict) else {}
        containers: list[ContainerView] = []
        for field in _CONTAINER_FIELDS:
            items = spec_map.get(field)
            if not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                name = item.get("name")
                containers.append(
                    _container_view(
                        item,
                        name if isinstance(name, str) else f"{field}[{index}]",
                        (*spec_path, field, index),
                    )
                )
        return cls._assemble(spec_map, meta_map, spec_path, meta_path, containers, version)

    @classmethod
    def of_site(cls, site: PodSite, version: Version) -> PodView:
        """The view of a pod site: ``pod_sites`` found its containers (all objects) and named
        them the way ``build`` does."""
        containers = [_container_view(c.container, c.name, c.path) for c in site.containers]
        return cls._assemble(
            site.spec, site.metadata, site.spec_path, site.meta_path, containers, version
        )

    @classmethod
    def _assemble(
        cls,
        spec: Mapping[str, Any],
        metadata: Mapping[str, Any],
        spec_path: Path,
        meta_path: Path,
        containers: list[ContainerView],
        version: Version,
    ) -> PodView:
        sc_raw = spec.get("securityContext")
        sc = sc_raw if isinstance(sc_raw, dict) else _EMPTY
        os_field = spec.get("os")
        sc_fields = set(sc)
        for c in containers:
            sc_fields.update(c.sc)
        return cls(
            spec,
            metadata,
            spec_path,
            meta_path,
            tuple(containers),
            sc,
            sc_raw,
            sc is _EMPTY and sc_raw is not None,
            version,
            isinstance(os_field, dict) and os_field.get("name") == "windows",
            spec.get("hostUsers") is False,
            sc_fields,
        )


def _container_view(data: Mapping[str, Any], name: str, path: Path) -> ContainerView:
    sc_raw = data.get("securityContext")
    sc = sc_raw if isinstance(sc_raw, dict) else _EMPTY
    return ContainerView(name, path, data, sc, sc_raw, sc is _EMPTY and sc_raw is not None)


Holder = PodView | ContainerView
"""What has a securityContext: the pod (``label`` "pod", no container) or a container."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@functools.lru_cache(maxsize=1024)
def _container_label(name: str) -> str:
    # Every problem of a container names it, often several times a pod.
    return f"container {_quote(name)}"


def _quote(value: Any) -> str:
    """Go's ``%q`` for the strings seen in pod specs: a double-quoted string.

    An array or an object (the wrong type) that holds another one is named by type and size:
    ``str`` of one nested a thousand deep recurses past Python's limit."""
    if isinstance(value, list | dict) and any(
        isinstance(item, list | dict)
        for item in (value.values() if isinstance(value, dict) else value)
    ):
        return preview(value)
    text = value if isinstance(value, str) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    """``value in allowed`` for any JSON value (lists and objects are not hashable)."""
    return isinstance(value, str) and value in allowed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _wrong_type(who: str, field: str, expected: str, value: Any) -> str:
    return f"{who} has {field} of the wrong type: must be {expected}, not {json_type(value)}"


def _volumes(pod: PodView) -> list[Any]:
    """The volumes (of any JSON type each), or ``[]`` when there is no list of them."""
    volumes = pod.spec.get("volumes")
    return volumes if isinstance(volumes, list) else []


def _volume_label(volume: Mapping[str, Any], index: int) -> str:
    name = volume.get("name")
    return name if isinstance(name, str) else f"volumes[{index}]"


def _must_not_be_true(
    value: Any, who: str, field: str, path: Path, container: str | None
) -> Iterator[Problem]:
    if value is True:
        yield Problem(f"{who} must not set {field}=true", path, container)
    elif value is not None and value is not False:
        yield Problem(_wrong_type(who, field, "a boolean", value), path, container)


# --- baseline ------------------------------------------------------------------------------

_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


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


def privileged(pod: PodView) -> Iterator[Problem]:
    if "privileged" not in pod.sc_fields:
        return
    for c in pod.containers:
        value = c.sc.get("privileged")
        if value is None or value is False:
            continue
        yield from _must_not_be_true(
            value,
            c.label,
            "securityContext.privileged",
            (*c.sc_path, "privileged"),
            c.name,
        )


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _baseline_capability(cap: Any) -> bool:
    return _one_of(cap, BASELINE_CAPABILITIES)


def _restricted_capability(cap: Any) -> bool:
    return bool(cap == "NET_BIND_SERVICE")


def _capabilities_add(c: ContainerView) -> Any:
    """``securityContext.capabilities.add`` as it is (``None`` when absent)."""
    caps = c.sc.get("capabilities")
    return caps.get("add") if isinstance(caps, dict) else None


def _added_capabilities(
    c: ContainerView, add: Any, allowed: Callable[[Any], bool]
) -> Iterator[Problem]:
    add_path = (*c.sc_path, "capabilities", "add")
    if not isinstance(add, list):
        yield Problem(
            _wrong_type(c.label, "securityContext.capabilities.add", "an array", add),
            add_path,
            c.name,
        )
        return
    for index, cap in enumerate(add):
        if not allowed(cap):
            yield Problem(
                f"{c.label} must not include {_quote(cap)} in securityContext.capabilities.add",
                (*add_path, index),
                c.name,
            )


def capabilities_baseline(pod: PodView) -> Iterator[Problem]:
    if "capabilities" not in pod.sc_fields:
        return
    for c in pod.containers:
        add = _capabilities_add(c)
        if add is not None:
            yield from _added_capabilities(c, add, _baseline_capability)


def host_path_volumes(pod: PodView) -> Iterator[Problem]:
    for index, volume in enumerate(_volumes(pod)):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            yield Problem(
                f"hostPath volumes (volume {_quote(_volume_label(volume, index))} must not use "
                "hostPath)",
                (*pod.spec_path, "volumes", index, "hostPath"),
            )


def host_ports(pod: PodView) -> Iterator[Problem]:
    for c in pod.containers:
        ports = c.data.get("ports")
        if ports is None:
            continue
        if not isinstance(ports, list):
            yield Problem(
                _wrong_type(c.label, "ports", "an array", ports), (*c.path, "ports"), c.name
            )
            continue
        for index, port in enumerate(ports):
            if not isinstance(port, dict):
                continue
            host_port = port.get("hostPort")
            if host_port is None or (_is_int(host_port) and host_port == 0):
                continue
            path = (*c.path, "ports", index, "hostPort")
            if _is_int(host_port):
                yield Problem(f"{c.label} must not use hostPort {host_port}", path, c.name)
            else:
                yield Problem(
                    _wrong_type(c.label, "hostPort", "an integer", host_port), path, c.name
                )


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _apparmor_annotation_allowed(value: Any) -> bool:
    return isinstance(value, str) and (
        value in ("", "runtime/default") or value.startswith("localhost/")
    )


def _apparmor_field(holder: Holder, profile: Any) -> Iterator[Problem]:
    path = (*holder.sc_path, "appArmorProfile")
    if not isinstance(profile, dict):
        yield Problem(
            _wrong_type(holder.label, "securityContext.appArmorProfile", "an object", profile),
            path,
            holder.container,
        )
        return
    profile_type = profile.get("type")
    if not _one_of(profile_type, _APPARMOR_TYPES):
        shown = _quote(profile_type if profile_type is not None else "")
        yield Problem(
            f"{holder.label} must not set AppArmor profile type to {shown}",
            (*path, "type"),
            holder.container,
        )


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
            and key.startswith(APPARMOR_ANNOTATION_PREFIX)
            and not _apparmor_annotation_allowed(value)
        ):
            container = key[len(APPARMOR_ANNOTATION_PREFIX) :]
            yield Problem(
                f"annotation {key}={_quote(value)} must not set a forbidden AppArmor profile",
                (*pod.meta_path, "annotations", key),
                container,
            )


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(holder: Holder, options: Any, version: Version) -> Iterator[Problem]:
    path = (*holder.sc_path, "seLinuxOptions")
    who = holder.label
    if not isinstance(options, dict):
        yield Problem(
            _wrong_type(who, "securityContext.seLinuxOptions", "an object", options),
            path,
            holder.container,
        )
        return
    allowed = SELINUX_TYPES_1_31 if version >= V1_31_SELINUX_ENGINE else SELINUX_TYPES_1_0
    selinux_type = options.get("type")
    if selinux_type is not None and not _one_of(selinux_type, allowed):
        yield Problem(
            f"{who} set forbidden securityContext.seLinuxOptions: type {_quote(selinux_type)}",
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


def se_linux_options(pod: PodView) -> Iterator[Problem]:
    if "seLinuxOptions" not in pod.sc_fields:
        return
    for holder in pod.holders:
        options = holder.sc.get("seLinuxOptions")
        if options is not None:
            yield from _selinux(holder, options, pod.version)


def _unmasked_proc_mounts(pod: PodView) -> Iterator[Problem]:
    if "procMount" not in pod.sc_fields:
        return
    for c in pod.containers:
        value = c.sc.get("procMount")
        if value is None or value == "Default":
            continue
        yield Problem(
            f"{c.label} must not set securityContext.procMount to {_quote(value)}",
            (*c.sc_path, "procMount"),
            c.name,
        )


def proc_mount(pod: PodView) -> Iterator[Problem]:
    # From v1.35 baseline allows any procMount in a pod with its own user namespace.
    if pod.version >= V1_35_USER_NAMESPACES and pod.in_user_namespace:
        return
    yield from _unmasked_proc_mounts(pod)


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
_SECCOMP_TYPES_TEXT = '"RuntimeDefault" or "Localhost"'


def _seccomp_annotation_allowed(value: Any) -> bool:
    return isinstance(value, str) and (
        value in ("runtime/default", "docker/default") or value.startswith("localhost/")
    )


def _seccomp_type_problem(holder: Holder, profile: Any) -> Problem | None:
    """The problem with an explicitly set seccompProfile, if any (None when absent or valid)."""
    if profile is None:
        return None
    if not isinstance(profile, dict):
        return Problem(
            _wrong_type(holder.label, "securityContext.seccompProfile", "an object", profile),
            (*holder.sc_path, "seccompProfile"),
            holder.container,
        )
    profile_type = profile.get("type")
    if _one_of(profile_type, _SECCOMP_TYPES):
        return None
    path = (*holder.sc_path, "seccompProfile", "type")
    if profile_type is None:
        return Problem(
            f"{holder.label} must set securityContext.seccompProfile.type to "
            + _SECCOMP_TYPES_TEXT,
            path,
            holder.container,
        )
    return Problem(
        f"{holder.label} must not set securityContext.seccompProfile.type to "
        + _quote(profile_type),
        path,
        holder.container,
    )


def seccomp_profile_baseline(pod: PodView) -> Iterator[Problem]:
    if pod.version < V1_19_SECCOMP_FIELDS:
        annotations = pod.metadata.get("annotations")
        if not isinstance(annotations, dict):
            return
        keys = [(SECCOMP_POD_ANNOTATION, None)] + [
            (SECCOMP_CONTAINER_ANNOTATION_PREFIX + c.name, c.name) for c in pod.containers
        ]
        for key, container in keys:
            if key in annotations and not _seccomp_annotation_allowed(annotations[key]):
                yield Problem(
                    f"forbidden annotation {key}={_quote(annotations[key])}",
                    (*pod.meta_path, "annotations", key),
                    container,
                )
        return
    # Baseline only forbids an explicit bad type; an absent seccompProfile is fine.
    if "seccompProfile" not in pod.sc_fields:
        return
    for holder in pod.holders:
        problem = _seccomp_type_problem(holder, holder.sc.get("seccompProfile"))
        if problem is not None:
            yield problem


SYSCTLS_SAFE: tuple[tuple[Version, frozenset[str]], ...] = (
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


def sysctls(pod: PodView) -> Iterator[Problem]:
    items = pod.sc.get("sysctls")
    if items is None:
        return
    path = (*pod.sc_path, "sysctls")
    if not isinstance(items, list):
        yield Problem(_wrong_type("pod", "securityContext.sysctls", "an array", items), path)
        return
    allowed = safe_sysctls(pod.version)
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if _one_of(name, allowed):
            continue
        if isinstance(name, str):
            yield Problem(f"forbidden sysctl {_quote(name)}", (*path, index, "name"))
        else:
            yield Problem(f"forbidden sysctl: entry {index} has no valid name", (*path, index))


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
        yield from _must_not_be_true(
            value,
            holder.label,
            "securityContext.windowsOptions.hostProcess",
            (*holder.sc_path, "windowsOptions", "hostProcess"),
            holder.container,
        )


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_HOOKS = ("postStart", "preStop")
_HANDLERS = ("httpGet", "tcpSocket")


def _hosts(c: ContainerView, where: Path, holder: Any) -> Iterator[Problem]:
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
            f"{c.label} must not set {field} (probe or lifecycle host {_quote(host)})",
            (*c.path, *where, kind, "host"),
            c.name,
        )


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


# --- restricted ----------------------------------------------------------------------------

ALLOWED_VOLUME_SOURCES = frozenset(
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
RESTRICTED_VOLUME_SOURCES = (
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


def restricted_volumes(pod: PodView) -> Iterator[Problem]:
    for index, volume in enumerate(_volumes(pod)):
        if not isinstance(volume, dict):
            if volume is not None:
                yield Problem(
                    _wrong_type("pod", f"volumes[{index}]", "an object", volume),
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
        f"volume {_quote(_volume_label(volume, index))} uses restricted volume type "
        f"{_quote(source)}",
        (*pod.spec_path, "volumes", index, source),
    )


def _escalates_anyway(c: ContainerView) -> bool:
    """A container that is privileged or adds SYS_ADMIN (in any spelling)."""
    if c.sc.get("privileged") is True:
        return True
    added = _capabilities_add(c)
    if not isinstance(added, list):
        return False
    return any(
        isinstance(cap, str) and cap.strip().upper().removeprefix("CAP_") == "SYS_ADMIN"
        for cap in added
    )


def allow_privilege_escalation(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_25_WINDOWS_EXEMPT and pod.windows:
        return
    for c in pod.containers:
        if c.sc_invalid:
            yield Problem(
                _wrong_type(c.label, "securityContext", "an object", c.sc_raw), c.sc_path, c.name
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
            yield Problem(
                _wrong_type(
                    c.label, "securityContext.allowPrivilegeEscalation", "the boolean false", value
                ),
                path,
                c.name,
            )


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
        yield Problem(
            _wrong_type("pod", "securityContext.runAsNonRoot", "a boolean", pod_value),
            (*pod.sc_path, "runAsNonRoot"),
        )
    elif pod.sc_invalid:
        yield Problem(_wrong_type("pod", "securityContext", "an object", pod.sc_raw), pod.sc_path)
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
            yield Problem(
                _wrong_type(c.label, "securityContext.runAsNonRoot", "a boolean", value),
                (*c.sc_path, "runAsNonRoot"),
                c.name,
            )
        elif not pod_ok:
            yield Problem(
                f"pod or {c.label} must set securityContext.runAsNonRoot=true",
                c.path,
                c.name,
                fixable=pod_silent and not c.sc_invalid,
            )


def run_as_user(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_35_USER_NAMESPACES and pod.in_user_namespace:
        return
    if "runAsUser" not in pod.sc_fields:
        return
    for holder in pod.holders:
        value = holder.sc.get("runAsUser")
        if value is None or (_is_int(value) and value != 0):
            continue
        path = (*holder.sc_path, "runAsUser")
        if _is_int(value):
            message = f"{holder.label} must not set securityContext.runAsUser=0"
        else:
            message = _wrong_type(holder.label, "securityContext.runAsUser", "an integer", value)
        yield Problem(message, path, holder.container)


def seccomp_profile_restricted(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_25_WINDOWS_EXEMPT and pod.windows:
        return
    pod_profile = pod.sc.get("seccompProfile")
    pod_problem = _seccomp_type_problem(pod, pod_profile)
    if pod_problem is not None:
        yield pod_problem._replace(fixable=_type_absent(pod_profile))
    elif pod.sc_invalid:
        yield Problem(_wrong_type("pod", "securityContext", "an object", pod.sc_raw), pod.sc_path)
    pod_ok = pod_profile is not None and pod_problem is None
    pod_silent = (
        not pod_ok and (pod_profile is None or _type_absent(pod_profile)) and not pod.sc_invalid
    )
    for c in pod.containers:
        profile = c.sc.get("seccompProfile")
        if profile is not None:
            problem = _seccomp_type_problem(c, profile)
            if problem is not None:
                yield problem._replace(fixable=_type_absent(profile))
        elif not pod_ok:
            yield Problem(
                f"pod or {c.label} must set securityContext.seccompProfile.type to "
                + _SECCOMP_TYPES_TEXT,
                c.path,
                c.name,
                fixable=pod_silent and not c.sc_invalid,
            )


def _type_absent(profile: Any) -> bool:
    return isinstance(profile, dict) and profile.get("type") is None


def capabilities_restricted(pod: PodView) -> Iterator[Problem]:
    if pod.version >= V1_25_WINDOWS_EXEMPT and pod.windows:
        return
    for c in pod.containers:
        caps = c.sc.get("capabilities")
        drop = caps.get("drop") if isinstance(caps, dict) else None
        if not (isinstance(drop, list) and "ALL" in drop):
            yield _not_dropping_all(c, caps, drop)
        add = caps.get("add") if isinstance(caps, dict) else None
        if add is not None:
            yield from _added_capabilities(c, add, _restricted_capability)


def _not_dropping_all(c: ContainerView, caps: Any, drop: Any) -> Problem:
    """Why a container does not drop ALL capabilities."""
    message = f'{c.label} must set securityContext.capabilities.drop=["ALL"]'
    caps_path = (*c.sc_path, "capabilities")
    if c.sc_invalid:
        return Problem(
            _wrong_type(c.label, "securityContext", "an object", c.sc_raw), c.sc_path, c.name
        )
    if caps is None:
        return Problem(message, c.path, c.name, fixable=True)
    if not isinstance(caps, dict):
        return Problem(
            _wrong_type(c.label, "securityContext.capabilities", "an object", caps),
            caps_path,
            c.name,
        )
    if drop is None:
        return Problem(message, c.path, c.name, fixable=True)
    if not isinstance(drop, list):
        return Problem(
            _wrong_type(c.label, "securityContext.capabilities.drop", "an array", drop),
            (*caps_path, "drop"),
            c.name,
        )
    # Adding "ALL" to an existing drop list only takes more away: a safe fill-in.
    return Problem(message, (*caps_path, "drop"), c.name, fixable=True)


def proc_mount_restricted(pod: PodView) -> Iterator[Problem]:
    return _unmasked_proc_mounts(pod)


CheckFunction = Callable[[PodView], Iterator[Problem]]

IMPLEMENTATIONS: Mapping[str, CheckFunction] = {
    "hostNamespaces": host_namespaces,
    "privileged": privileged,
    "capabilities_baseline": capabilities_baseline,
    "hostPathVolumes": host_path_volumes,
    "hostPorts": host_ports,
    "appArmorProfile": app_armor_profile,
    "seLinuxOptions": se_linux_options,
    "procMount": proc_mount,
    "seccompProfile_baseline": seccomp_profile_baseline,
    "sysctls": sysctls,
    "windowsHostProcess": windows_host_process,
    "hostProbesAndHostLifecycle": host_probes_and_host_lifecycle,
    "restrictedVolumes": restricted_volumes,
    "allowPrivilegeEscalation": allow_privilege_escalation,
    "runAsNonRoot": run_as_non_root,
    "runAsUser": run_as_user,
    "seccompProfile_restricted": seccomp_profile_restricted,
    "capabilities_restricted": capabilities_restricted,
    "procMount_restricted": proc_mount_restricted,
}
