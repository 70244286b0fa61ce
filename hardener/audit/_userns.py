"""What the audit says about user namespaces (``spec.hostUsers: false``).

- The cluster's support: every node, per runtime handler, with and without
  ``userNamespaces``, and its kernel (idmapped mounts of every volume type need Linux 6.3 or
  later); read once through the node watch's own lists (``SupportWatch.read_once``).
- The workloads that run as root (or may: an image whose user is not known) and would move
  into a user namespace, and those that could not, with the reason the ``user-namespace``
  rule gave.

Nodes that cannot be read (no ``list`` on ``nodes``) are said here, with what to grant: they
do not make the audit incomplete, they leave ``user-namespaces: auto`` off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hardener.nodewatch import SupportWatch
from hardener.userns import KERNEL_IDMAP, NodeSupport, Support

__all__ = ["READ_SECONDS", "RootWorkload", "UserNamespaceAudit", "read_user_namespaces"]

READ_SECONDS = 30.0
_MOVED = ("added",)
_INSIDE = ("set",)


@dataclass(frozen=True)
class RootWorkload:
    """A workload with a container that runs (``root``) or may run (``maybe``) as root."""

    namespace: str
    kind: str
    name: str
    root: bool
    """True: a container runs as root; False: only may (its image's user is not known)."""
    reason: str
    """The ``user-namespace`` rule's reason for it (``added``: it would move)."""
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "root": "yes" if self.root else "maybe",
            "reason": self.reason,
            "message": self.message,
        }


@dataclass
class UserNamespaceAudit:
    """The support the audit found and what it means for the workloads audited."""

    mode: str
    support: Support
    """What the plans were made with (``always``/``never``, or what the cluster said)."""
    cluster: Support
    """What the cluster said (``Support.unknown`` when its nodes could not be read)."""
    workloads: list[RootWorkload] = field(default_factory=list)

    @property
    def nodes(self) -> tuple[NodeSupport, ...]:
        return self.cluster.view.nodes if self.cluster.view is not None else ()

    @property
    def error(self) -> str | None:
        return self.cluster.reason if self.cluster.view is None else None

    def handlers(self) -> dict[str, dict[str, list[str]]]:
        """Per runtime handler the Linux nodes reporting support and those that do not."""
        view = self.cluster.view
        if view is None:
            return {}
        table: dict[str, dict[str, list[str]]] = {}
        for handler in view.handlers:
            with_support = [n.name for n in view.linux_nodes if n.handlers.get(handler, False)]
            without = [n.name for n in view.linux_nodes if not n.handlers.get(handler, False)]
            table[handler] = {"with": with_support, "without": without}
        return table

    @property
    def moved(self) -> list[RootWorkload]:
        return [w for w in self.workloads if w.reason in _MOVED]

    @property
    def blocked(self) -> list[RootWorkload]:
        return [w for w in self.workloads if w.reason not in _MOVED + _INSIDE]

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "enabled": self.support.default_on,
            "reason": self.support.for_pod(None).reason,
            "root_workloads": sum(1 for w in self.workloads if w.root),
            "maybe_root_workloads": sum(1 for w in self.workloads if not w.root),
            "would_move": len(self.moved),
            "could_not_move": len(self.blocked),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "nodes_error": self.error,
            "nodes": [
                {
                    "name": n.name,
                    "linux": n.linux,
                    "kernel": n.kernel,
                    "kernel_idmap_mounts": n.kernel_ok,
                    "handlers": dict(sorted(n.handlers.items())),
                }
                for n in self.nodes
            ],
            "handlers": self.handlers(),
            "runtime_classes": dict(sorted((self.cluster.view.runtime_classes or {}).items()))
            if self.cluster.view is not None
            else None,
            "would_move": [w.to_json() for w in self.moved],
            "could_not_move": [w.to_json() for w in self.blocked],
        }

    def lines(self) -> list[str]:
        """The section of the text report."""
        state = "on" if self.support.default_on else "off"
        out = [
            f"user namespaces (user-namespaces: {self.mode}): {state}: "
            f"{self.support.for_pod(None).reason}"
        ]
        for handler, nodes in self.handlers().items():
            label = f'runtime handler "{handler}"' if handler else "default runtime handler"
            out.append(
                f"  {label}: {len(nodes['with'])} node(s) with support"
                + (f", without: {', '.join(nodes['without'])}" if nodes["without"] else "")
            )
        old = [n for n in self.nodes if n.linux and n.kernel_ok is False]
        if old:
            need = ".".join(map(str, KERNEL_IDMAP))
            out.append(
                f"  kernels older than Linux {need} (idmapped mounts of some volume types fail): "
                + ", ".join(f"{n.name} ({n.kernel})" for n in old)
            )
        s = self.summary()
        out.append(
            f"  workloads running as root: {s['root_workloads']}, maybe (image user not "
            f"known): {s['maybe_root_workloads']}; would move into a user namespace: "
            f"{s['would_move']}; could not: {s['could_not_move']}"
        )
        for w in self.blocked:
            out.append(f"    {w.kind} {w.namespace}/{w.name}: {w.reason}: {w.message}")
        return out


def read_user_namespaces(
    api: Any, mode: str, *, timeout: float = READ_SECONDS
) -> UserNamespaceAudit:
    """Read the cluster's Nodes and RuntimeClasses once; the plans use ``always`` and
    ``never`` as configured, and under ``auto`` what the cluster says."""
    cluster = SupportWatch.read_once(api, timeout)
    if cluster.view is None and cluster.state == "unknown":
        cluster = Support.unknown(
            f"{cluster.reason}; grant get, list and watch on nodes and "
            "runtimeclasses.node.k8s.io to read them"
        )
    return UserNamespaceAudit(mode, Support.for_mode(mode, cluster), cluster)
