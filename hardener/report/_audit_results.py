"""What an audit found: per namespace, per workload, the changes, the findings and the verdict,
and what it learnt of the cluster's support for user namespaces.

These records are what every audit ``--format`` renders (``_audit``); ``hardener.audit``
fills them in. ``AuditReport.to_json`` is the JSON output, a contract that tools parse: fields
may be added, never renamed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from hardener.model import Change, Finding, Operation
from hardener.pss import Violation
from hardener.report._images import ImageReport
from hardener.userns import NodeSupport, Support

__all__ = [
    "AuditReport",
    "Denied",
    "NamespaceAudit",
    "Policy",
    "RootWorkload",
    "UserNamespaceAudit",
    "WorkloadAudit",
]

_MOVED = ("added",)
_INSIDE = ("set",)


@dataclass(frozen=True)
class Policy:
    """The Pod Security Standards level a namespace enforces and where that came from.

    ``source`` is ``label`` (its ``pod-security.kubernetes.io/enforce`` label), ``config`` (no
    label: the configured level) or ``unknown`` (the namespace could not be read: the configured
    level). ``note`` explains anything odd, such as a label value Pod Security Admission would not
    accept.
    """

    level: str
    version: str
    source: str
    note: str | None = None

    def describe(self) -> str:
        return f"{self.level} ({self.version})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _pss_json(item: Violation | Finding) -> dict[str, Any]:
    """What a violation, and a finding after its rule, say in the JSON output."""
    return {
        "check": item.check,
        "level": item.level,
        "container": item.container,
        "pointer": item.pointer,
        "message": item.message,
        "fixable": item.fixable,
    }


@dataclass
class WorkloadAudit:
    """One workload as read from the cluster and what hardener makes of it.

    ``ops`` are RFC 6902 operations relative to the object as the API server stores it.
    ``before`` and ``after`` are the namespace policy's violations of the object as it runs and
    as the webhook would leave it. ``exempt`` says why hardener leaves it alone (config
    exemption), ``error`` why it could not be audited (a field of the wrong type).
    """

    kind: str
    api_version: str
    namespace: str
    name: str
    policy: Policy
    ops: list[Operation] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    before: list[Violation] = field(default_factory=list)
    after: list[Violation] = field(default_factory=list)
    exempt: str | None = None
    error: str | None = None
    obj: dict[str, Any] = field(default_factory=dict, repr=False)
    """The object as read, for ``--format diff`` manifests."""
    hardened: Any = field(default=None, repr=False)
    """The object as ``ops`` leave it (the engine's ``Plan.hardened``; ``None`` for an exempt
    workload or an error): read-only, it shares what the ops do not touch with ``obj``."""
    user_namespace: str | None = None
    """What the ``user-namespace`` rule decided for its pod (``added``, or why not)."""
    user_namespace_why: str = ""
    root: bool | None = False
    """A container runs as root (``True``), may (``None``: its image's user is not known),
    or none does (``False``)."""

    @property
    def allowed_before(self) -> bool:
        return self.policy.level == "privileged" or not self.before

    @property
    def allowed_after(self) -> bool:
        return self.policy.level == "privileged" or not self.after

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "apiVersion": self.api_version,
            "namespace": self.namespace,
            "name": self.name,
            "exempt": self.exempt,
            "error": self.error,
            "ops": [dict(op) for op in self.ops],
            "changes": [
                {
                    "rule": c.rule,
                    "pointer": c.pointer,
                    "container": c.container,
                    "message": c.message,
                    "before": c.before,
                    "after": c.after,
                }
                for c in self.changes
            ],
            "findings": [{"rule": f.rule, **_pss_json(f)} for f in self.findings],
            "user_namespace": {
                "decision": self.user_namespace,
                "message": self.user_namespace_why,
                "runs_as_root": {True: "yes", False: "no", None: "maybe"}[self.root],
            },
            "pss": {
                **self.policy.to_json(),
                "allowed_now": self.allowed_before,
                "allowed_after_hardening": self.allowed_after,
                "now": [_pss_json(v) for v in self.before],
                "after_hardening": [_pss_json(v) for v in self.after],
            },
        }


@dataclass
class NamespaceAudit:
    name: str
    policy: Policy
    workloads: list[WorkloadAudit] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "policy": self.policy.to_json(),
            "workloads": [w.to_json() for w in self.workloads],
        }


@dataclass(frozen=True)
class Denied:
    """A request the audit could not make: ``resource`` (``deployments.apps``, ``namespaces``,
    ...) in ``namespace`` (``None``: all namespaces or cluster scope), the HTTP status, the
    Status reason and the server's message."""

    resource: str
    namespace: str | None
    code: int
    reason: str
    message: str

    @property
    def forbidden(self) -> bool:
        return self.code == 403

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.resource}{where}: {self.code} {self.reason}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
    """The cluster's support for user namespaces (``spec.hostUsers: false``) as the audit read
    it, and what it means for the workloads audited: those that run as root (or may: an image
    whose user is not known) and would move into a user namespace, and those that could not,
    with the reason the ``user-namespace`` rule gave."""

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


@dataclass
class AuditReport:
    """Everything one ``hardener audit`` run saw."""

    server: str
    context: str | None
    scope: str | None  # the namespace audited, None for all namespaces
    level: str
    version: str
    namespaces: list[NamespaceAudit] = field(default_factory=list)
    denied: list[Denied] = field(default_factory=list)
    skipped_owned: Counter[str] = field(default_factory=Counter)
    """Objects left out because a controller owns them, by the owner's kind."""
    user_namespaces: UserNamespaceAudit | None = None
    """The cluster's support for user namespaces and what it means for the workloads."""
    images: ImageReport | None = None
    """What the audit learnt about the images the workloads name."""

    @property
    def workloads(self) -> list[WorkloadAudit]:
        return [w for ns in self.namespaces for w in ns.workloads]

    @property
    def forbidden(self) -> list[Denied]:
        return [d for d in self.denied if d.forbidden]

    def summary(self) -> dict[str, Any]:
        workloads = self.workloads
        return {
            "namespaces": len(self.namespaces),
            "workloads": len(workloads),
            "would_change": sum(1 for w in workloads if w.ops),
            "changes": sum(len(w.changes) for w in workloads),
            "findings": sum(len(w.findings) for w in workloads),
            "unfixable_findings": sum(1 for w in workloads for f in w.findings if not f.fixable),
            "not_allowed_now": sum(1 for w in workloads if not w.allowed_before),
            "not_allowed_after_hardening": sum(1 for w in workloads if not w.allowed_after),
            "exempt": sum(1 for w in workloads if w.exempt),
            "errors": sum(1 for w in workloads if w.error),
            "skipped_owned": sum(self.skipped_owned.values()),
            "forbidden": len(self.forbidden),
            **(
                {"user_namespaces": self.user_namespaces.summary()}
                if self.user_namespaces is not None
                else {}
            ),
            **({"images": self.images.counts()} if self.images is not None else {}),
        }

    def to_json(self, version: str) -> dict[str, Any]:
        return {
            "version": version,
            "command": "audit",
            "server": self.server,
            "context": self.context,
            "namespace": self.scope,
            "config": {"level": self.level, "version": self.version},
            "summary": self.summary(),
            "namespaces": [ns.to_json() for ns in self.namespaces],
            "denied": [d.to_json() for d in self.denied],
            "skipped_owned": dict(sorted(self.skipped_owned.items())),
            "user_namespaces": self.user_namespaces.to_json()
            if self.user_namespaces is not None
            else None,
            "images": self.images.to_json() if self.images is not None else None,
        }
