"""User namespaces (``spec.hostUsers: false``): what the API server and the kubelet accept, and
what a cluster supports.

Pure data and functions, shared by the ``user-namespace`` rule, ``check`` (finding
``user-namespace-invalid``), the node watch of the webhook and ``audit``. Nothing here does
I/O: the faces read Node and RuntimeClass objects and hand them over as plain JSON.

What the API server rejects next to ``hostUsers: false`` (Kubernetes v1.36,
``validateHostUsers`` in ``pkg/apis/core/validation``): ``hostNetwork``, ``hostPID`` or
``hostIPC`` true, any container with a non-empty ``volumeDevices``, and a pod whose
``spec.os.name`` is ``windows`` (``conflicts``).

What the kubelet needs: a node whose runtime reports ``userNamespaces: true`` for the pod's
runtime handler (``status.runtimeHandlers[].features.userNamespaces``; the default handler is
named ``""``, a pod with ``runtimeClassName`` uses its RuntimeClass's ``handler``), and ids the
pod's user namespace maps: the kubelet gives each pod 65536 ids (0 to 65535), so a process
whose uid or gid lies above cannot start in it (``MAX_ID``).

``Support`` is what a face tells the engine about the cluster: ``always`` and ``never`` (the
config's ``user-namespaces``), ``cluster`` (a ``ClusterView`` read from the API), ``unknown``
(the API has not answered yet, or cannot be reached) and ``offline`` (``fix`` and ``check``
with ``auto``: no cluster to ask, said once in the run's summary, not per pod).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hardener.image_facts import ImageFacts, parse_image_user
from hardener.kubelet import is_windows
from hardener.locate import JsonPath, PodSite, declares_windows
from hardener.records import picklable

__all__ = [
    "KERNEL_IDMAP",
    "MAX_ID",
    "MODES",
    "ClusterView",
    "Conflict",
    "Mode",
    "NodeSupport",
    "PodSupport",
    "Support",
    "conflicts",
    "kernel_version",
    "runs_as_root",
    "runtime_class_handler",
]

Mode = Literal["auto", "always", "never"]
MODES: Final[tuple[Mode, ...]] = ("auto", "always", "never")
"""The config's ``user-namespaces`` values."""

MAX_ID: Final = 65535
"""The largest uid or gid a pod's user namespace maps (the kubelet's 65536 ids per pod)."""

KERNEL_IDMAP: Final[tuple[int, int]] = (6, 3)
"""The Linux release from which idmapped mounts work for every volume type (tmpfs included)."""


# -- what the API server rejects --------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """A field the API server rejects next to ``hostUsers: false``.

    ``code`` names it for metrics and reports (``host-network``, ``host-pid``, ``host-ipc``,
    ``volume-devices``, ``windows``); ``what`` says it (``the pod sets hostNetwork: true``);
    ``path`` is the field (within the object) that the API server's error names.
    """

    code: str
    what: str
    path: JsonPath


_HOST_NAMESPACES: Final = (
    ("hostNetwork", "host-network"),
    ("hostPID", "host-pid"),
    ("hostIPC", "host-ipc"),
)


def conflicts(site: PodSite) -> list[Conflict]:
    """What the API server would reject in ``site`` were ``hostUsers`` false, in its order."""
    spec = site.spec
    found: list[Conflict] = []
    for key, code in _HOST_NAMESPACES:
        if spec.get(key) is True:
            found.append(Conflict(code, f"the pod sets {key}: true", (*site.spec_path, key)))
    for container in site.containers:
        devices = container.container.get("volumeDevices")
        if isinstance(devices, list) and devices:
            found.append(
                Conflict(
                    "volume-devices",
                    f'container "{container.name}" has volumeDevices',
                    (*container.path, "volumeDevices"),
                )
            )
    if declares_windows(spec):
        found.append(
            Conflict(
                "windows",
                "the pod is a Windows pod (os.name: windows)",
                (*site.spec_path, "hostUsers"),
            )
        )
    return found


def runs_as_root(
    site: PodSite, images: Mapping[str, ImageFacts] | None = None
) -> dict[str, bool | None]:
    """Per container of a Linux pod, whether it runs as root (uid 0 on the node, were it not
    in a user namespace): ``True``, ``False``, or ``None`` when only the image's facts could
    tell and they are not known. A Windows pod gives ``{}``."""
    if is_windows(site):
        return {}
    pod_sc = site.spec.get("securityContext")
    pod_user = pod_sc.get("runAsUser") if isinstance(pod_sc, dict) else None
    verdicts: dict[str, bool | None] = {}
    for container in site.containers:
        sc = container.container.get("securityContext")
        user = sc.get("runAsUser") if isinstance(sc, dict) else None
        user = user if user is not None else pod_user
        if isinstance(user, int) and not isinstance(user, bool):
            verdicts[container.name] = user == 0
            continue
        reference = container.container.get("image")
        facts = images.get(reference) if images and isinstance(reference, str) else None
        if facts is None or not facts.known:
            verdicts[container.name] = None
            continue
        parsed = parse_image_user(facts.user)
        if parsed.name is not None:
            verdicts[container.name] = None if facts.uid is None else facts.uid == 0
        else:
            verdicts[container.name] = parsed.is_root
    return verdicts


# -- what nodes report ------------------------------------------------------------------------


_KERNEL: Final = re.compile(r"(\d+)\.(\d+)")


def kernel_version(text: str) -> tuple[int, int] | None:
    """``"6.8.0-1012-aws"`` -> ``(6, 8)``; ``None`` when the text names no release."""
    match = _KERNEL.match(text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class NodeSupport:
    """What one Node reports: its OS, kernel, and per runtime handler whether the runtime
    supports user namespaces."""

    name: str
    linux: bool
    kernel: str = ""
    handlers: Mapping[str, bool] = field(default_factory=dict)
    """Runtime handler name (``""``: the default) -> ``features.userNamespaces``."""

    @property
    def kernel_ok(self) -> bool | None:
        """Whether the kernel has idmapped mounts for every volume type (``None``: unknown)."""
        version = kernel_version(self.kernel)
        return None if version is None else version >= KERNEL_IDMAP

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> NodeSupport:
        """Read a Node object as the API server sends it (any field may be missing)."""
        metadata = _mapping(node.get("metadata"))
        status = _mapping(node.get("status"))
        info = _mapping(status.get("nodeInfo"))
        labels = _mapping(metadata.get("labels"))
        system = info.get("operatingSystem") or labels.get("kubernetes.io/os") or ""
        # A node that does not say what it runs counts as Linux: it must then report support.
        linux = not isinstance(system, str) or system.lower() != "windows"
        handlers: dict[str, bool] = {}
        listed = status.get("runtimeHandlers")
        for entry in listed if isinstance(listed, list) else []:
            entry = _mapping(entry)
            name = entry.get("name")
            if not isinstance(name, str):
                continue
            features = _mapping(entry.get("features"))
            handlers[name] = features.get("userNamespaces") is True
        kernel = info.get("kernelVersion")
        name = metadata.get("name")
        return cls(
            name=name if isinstance(name, str) else "",
            linux=linux,
            kernel=kernel if isinstance(kernel, str) else "",
            handlers=handlers,
        )


def runtime_class_handler(runtime_class: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(name, handler)`` of a RuntimeClass object, or ``None`` when it names neither."""
    name = _mapping(runtime_class.get("metadata")).get("name")
    handler = runtime_class.get("handler")
    if isinstance(name, str) and isinstance(handler, str):
        return name, handler
    return None


@dataclass(frozen=True)
class PodSupport:
    """Whether a pod may get ``hostUsers: false`` as far as the nodes go, and why.

    ``code`` for metrics and reports: ``always``, ``supported``, ``never``, ``offline``,
    ``unknown``, ``unsupported``, ``no-linux-nodes``, ``unknown-runtime-class``.
    """

    supported: bool
    code: str
    reason: str


@dataclass(frozen=True)
class ClusterView:
    """The Nodes and RuntimeClasses of a cluster at one moment."""

    nodes: tuple[NodeSupport, ...] = ()
    runtime_classes: Mapping[str, str] | None = field(default_factory=dict)
    """RuntimeClass name -> handler; ``None`` when the RuntimeClasses could not be read."""

    @classmethod
    def from_objects(
        cls,
        nodes: Iterable[Mapping[str, Any]],
        runtime_classes: Iterable[Mapping[str, Any]] | None,
    ) -> ClusterView:
        handlers: dict[str, str] | None = None
        if runtime_classes is not None:
            handlers = {}
            for item in runtime_classes:
                pair = runtime_class_handler(item)
                if pair is not None:
                    handlers[pair[0]] = pair[1]
        return cls(
            tuple(sorted((NodeSupport.from_node(n) for n in nodes), key=lambda n: n.name)),
            handlers,
        )

    @property
    def linux_nodes(self) -> tuple[NodeSupport, ...]:
        return tuple(n for n in self.nodes if n.linux)

    @property
    def handlers(self) -> list[str]:
        """Every runtime handler a Linux node reports, the default (``""``) first."""
        names = {h for n in self.linux_nodes for h in n.handlers}
        return sorted(names | {""})

    def handler_support(self, handler: str) -> PodSupport:
        """Supported when every Linux node reports ``userNamespaces: true`` for ``handler``."""
        linux = self.linux_nodes
        if not linux:
            return PodSupport(False, "no-linux-nodes", "the cluster reports no Linux node")
        missing = [n.name for n in linux if not n.handlers.get(handler, False)]
        label = f'runtime handler "{handler}"' if handler else "the default runtime handler"
        if missing:
            shown = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            return PodSupport(
                False,
                "unsupported",
                f"node {shown} reports no user namespace support for {label}",
            )
        return PodSupport(
            True, "supported", f"every Linux node supports user namespaces for {label}"
        )

    def pod_support(self, runtime_class: str | None) -> PodSupport:
        if not runtime_class:
            return self.handler_support("")
        if self.runtime_classes is None:
            return PodSupport(
                False,
                "unknown-runtime-class",
                f'RuntimeClass "{runtime_class}" could not be read, so its handler is not known',
            )
        handler = self.runtime_classes.get(runtime_class)
        if handler is None:
            return PodSupport(
                False, "unknown-runtime-class", f'RuntimeClass "{runtime_class}" does not exist'
            )
        return self.handler_support(handler)


SupportState = Literal["always", "never", "cluster", "unknown", "offline"]


@dataclass(frozen=True)
class Support:
    """What the engine is told about the cluster's support (see the module doc)."""

    state: SupportState
    view: ClusterView | None = None
    reason: str = ""

    @classmethod
    def always(cls) -> Support:
        return cls("always", reason="user-namespaces: always")

    @classmethod
    def never(cls) -> Support:
        return cls("never", reason="user-namespaces: never")

    @classmethod
    def offline(cls) -> Support:
        return cls(
            "offline",
            reason="no cluster to ask (user-namespaces: auto); set user-namespaces: always "
            "when every node supports them",
        )

    @classmethod
    def unknown(cls, reason: str) -> Support:
        return cls("unknown", reason=reason)

    @classmethod
    def of_cluster(cls, view: ClusterView) -> Support:
        return cls("cluster", view=view)

    @classmethod
    def for_mode(cls, mode: str, support: Support | None) -> Support:
        """What applies under the config's ``user-namespaces`` given what a face learnt."""
        if mode == "always":
            return cls.always()
        if mode == "never":
            return cls.never()
        return support if support is not None else cls.offline()

    def for_pod(self, runtime_class: str | None) -> PodSupport:
        if self.state == "always":
            return PodSupport(True, "always", self.reason)
        if self.state == "cluster" and self.view is not None:
            return self.view.pod_support(runtime_class)
        return PodSupport(False, self.state, self.reason)

    @property
    def default_on(self) -> bool:
        """Whether a pod on the default runtime handler gets a user namespace."""
        return self.for_pod(None).supported


picklable(Conflict, NodeSupport, PodSupport, ClusterView, Support)
