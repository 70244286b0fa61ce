"""``audit``: read the workloads of a cluster and say what the webhook would do to each.

The kinds listed (``RESOURCES``) are the ones the webhook mutates. ReplicaSets, Jobs and Pods
that a controller owns (an ``ownerReference`` with ``controller: true``) are left out: their
controller (Deployment, CronJob, StatefulSet, ...) re-creates them from its own template, which
is what the audit reports on. Every list is paged (``limit`` and ``continue``). Only ``GET``
requests are made.

The namespace policy follows Pod Security Admission: the ``pod-security.kubernetes.io/enforce``
label gives the level, ``enforce-version`` the version (``latest`` when the level is set without
one). A label value PSA does not accept makes it enforce ``restricted`` (level) or ``latest``
(version), and so does the audit, with a note. Without a label, the configured level and
version are used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from hardener.audit._cluster import (
    ClusterError,
    Connection,
    RequestDenied,
    call,
    list_pages,
)
from hardener.audit._userns import read_user_namespaces
from hardener.config import Config
from hardener.engine import plan
from hardener.image_facts import ImageFacts
from hardener.images import images_of, lookup_run
from hardener.locate import WorkloadKind, kind_named, pod_sites
from hardener.model import InvalidObjectError
from hardener.pss import Violation, evaluate, format_version, parse_version
from hardener.report import (
    AuditReport,
    Denied,
    ImageReport,
    NamespaceAudit,
    Policy,
    RootWorkload,
    WorkloadAudit,
)
from hardener.rules.user_namespace import RULE as USER_NAMESPACE_RULE
from hardener.userns import Support, runs_as_root

__all__ = [
    "ENFORCE_LABEL",
    "ENFORCE_VERSION_LABEL",
    "RESOURCES",
    "Resource",
    "audit",
    "audit_workload",
    "namespace_policy",
]

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
_PSA_LEVELS = ("privileged", "baseline", "restricted")


@dataclass(frozen=True)
class Resource:
    """One kind the audit lists: its shape (``hardener.locate.KINDS``) and how the client lists
    it."""

    workload: WorkloadKind

    @property
    def kind(self) -> str:
        return self.workload.kind

    @property
    def api_version(self) -> str:
        return self.workload.api_version

    @property
    def resource(self) -> str:
        """As in RBAC and error messages: ``deployments.apps``."""
        return self.workload.qualified_resource

    @property
    def skip_owned(self) -> bool:
        return self.workload.owned

    @property
    def api(self) -> Callable[[Any], Any]:
        """The client API class of the kind's group."""
        return _APIS[self.workload.group]

    @property
    def list_all(self) -> str:
        """The client method listing every namespace."""
        return f"list_{_snake(self.kind)}_for_all_namespaces"

    @property
    def list_namespaced(self) -> str:
        return f"list_namespaced_{_snake(self.kind)}"


_APIS: dict[str, Callable[[Any], Any]] = {
    "": k8s.CoreV1Api,
    "apps": k8s.AppsV1Api,
    "batch": k8s.BatchV1Api,
}


def _snake(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


RESOURCES: tuple[Resource, ...] = tuple(
    Resource(workload)
    for name in (
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicationController",
        "ReplicaSet",
        "CronJob",
        "Job",
        "Pod",
    )
    if (workload := kind_named(name)) is not None
)


def namespace_policy(labels: Any, config: Config) -> Policy:
    """The level and version a namespace with these labels enforces (see the module doc)."""
    labels = labels if isinstance(labels, dict) else {}
    level_label = labels.get(ENFORCE_LABEL)
    version_label = labels.get(ENFORCE_VERSION_LABEL)
    notes: list[str] = []
    source = "config"
    level, version = config.level, config.version
    if level_label is not None:
        source = "label"
        if level_label in _PSA_LEVELS:
            level = str(level_label)
            version = "latest"
        else:
            level = "restricted"
            notes.append(
                f"invalid {ENFORCE_LABEL} label {level_label!r} (use one of "
                f"{', '.join(_PSA_LEVELS)}): Pod Security Admission enforces restricted"
            )
    if version_label is not None:
        try:
            version = format_version(parse_version(version_label, strict=True))
        except ValueError as exc:
            version = "latest"
            notes.append(
                f"{ENFORCE_VERSION_LABEL} label: {exc}; Pod Security Admission enforces latest"
            )
    return Policy(level, version, source, "; ".join(notes) or None)


def _controller(metadata: dict[str, Any]) -> str | None:
    """The kind of the controller that owns an object, if one does."""
    for owner in metadata.get("ownerReferences") or []:
        if isinstance(owner, dict) and owner.get("controller") is True:
            return str(owner.get("kind") or "unknown")
    return None


def _violations(obj: Any, policy: Policy) -> list[Violation]:
    if policy.level == "privileged":
        return []
    return evaluate(obj, level=policy.level, version=policy.version)


def audit_workload(
    obj: dict[str, Any],
    resource: Resource,
    policy: Policy,
    config: Config,
    *,
    images: Mapping[str, ImageFacts] | None = None,
    user_namespaces: Support | None = None,
) -> WorkloadAudit:
    """What the webhook would do to one object as the API server returned it, given the facts
    of its images and the cluster's support for user namespaces (as the webhook has them)."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    namespace = str(metadata.get("namespace") or "")
    name = str(metadata.get("name") or "")
    result = WorkloadAudit(
        kind=resource.kind,
        api_version=resource.api_version,
        namespace=namespace,
        name=name,
        policy=policy,
        obj=obj,
    )
    try:
        result.before = _violations(obj, policy)
        if config.is_exempt(namespace, name):
            result.exempt = "exempt by the config (exempt namespaces or names)"
            result.after = list(result.before)
            return result
        decided = plan(
            obj, config, namespace=namespace, images=images, user_namespaces=user_namespaces
        )
        result.ops = decided.ops
        result.changes = decided.changes
        result.findings = decided.findings
        for decision in decided.decisions:
            if decision.rule == USER_NAMESPACE_RULE.id:
                result.user_namespace = decision.reason
                result.user_namespace_why = decision.message
                break
        roots = [v for site in pod_sites(obj) for v in runs_as_root(site, images).values()]
        result.root = True if True in roots else (None if None in roots else False)
        result.after = _violations(decided.hardened, policy)
        result.hardened = decided.hardened
    except InvalidObjectError as exc:
        result.error = f"{resource.kind} {namespace}/{name}: {exc}"
        result.ops, result.changes, result.findings = [], [], []
    return result


class _Policies:
    """Namespace policies, read once: all namespaces with a paged list, or the one asked for."""

    def __init__(self, connection: Connection, config: Config, report: AuditReport) -> None:
        self.connection = connection
        self.config = config
        self.report = report
        self.known: dict[str, Policy] = {}
        self.unreadable: str | None = None

    def load(self, namespace: str | None, limit: int) -> None:
        core = k8s.CoreV1Api(self.connection.api)
        try:
            if namespace is not None:
                _, item = call(self.connection, core.read_namespace, name=namespace)
                self._add(item)
            else:
                for page in list_pages(self.connection, core.list_namespace, limit=limit):
                    for item in page:
                        self._add(item)
        except RequestDenied as exc:
            if namespace is not None and exc.code == 404:
                raise ClusterError(
                    f"namespace {namespace!r} not found on {self.connection.describe()}"
                ) from exc
            self.report.denied.append(
                Denied("namespaces", namespace, exc.code, exc.reason, exc.message)
            )
            self.unreadable = f"namespace labels could not be read ({exc.code} {exc.reason})"

    def _add(self, item: Any) -> None:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        if isinstance(metadata, dict) and metadata.get("name"):
            self.known[str(metadata["name"])] = namespace_policy(
                metadata.get("labels"), self.config
            )

    def get(self, namespace: str) -> Policy:
        if namespace not in self.known:
            note = self.unreadable or "namespace not found in the namespace list"
            self.known[namespace] = Policy(
                self.config.level, self.config.version, "unknown", f"{note}: configured level"
            )
        return self.known[namespace]


def audit(
    connection: Connection,
    config: Config,
    *,
    namespace: str | None = None,
    chunk_size: int = 500,
    offline: bool = False,
) -> AuditReport:
    """Audit every workload of ``namespace`` (``None``: all namespaces).

    The images the workloads name are looked up as ``fix`` looks them up (``offline``: the
    cache and the offline table only), all at once after the lists and before any plan.

    Requests the server refuses (403, 404, ...) are recorded in ``AuditReport.denied`` and the
    audit goes on; ``ClusterError`` (no server, rejected credentials, a namespace that does not
    exist) ends it.
    """
    report = AuditReport(
        server=connection.server,
        context=connection.context,
        scope=namespace,
        level=config.level,
        version=config.version,
    )
    policies = _Policies(connection, config, report)
    policies.load(namespace, chunk_size)
    userns = report.user_namespaces = read_user_namespaces(connection.api, config.user_namespaces)
    listed: list[tuple[Resource, dict[str, Any], str]] = []
    for resource in RESOURCES:
        api = resource.api(connection.api)
        kwargs: dict[str, Any] = {}
        if namespace is None:
            method = getattr(api, resource.list_all)
        else:
            method = getattr(api, resource.list_namespaced)
            kwargs["namespace"] = namespace
        try:
            for page in list_pages(connection, method, limit=chunk_size, **kwargs):
                for item in page:
                    metadata = item.get("metadata")
                    metadata = metadata if isinstance(metadata, dict) else {}
                    owner = _controller(metadata) if resource.skip_owned else None
                    if owner is not None:
                        report.skipped_owned[owner] += 1
                        continue
                    # List items carry no kind or apiVersion; a manifest printed from one needs
                    # them. The engine's pointers all lie under /spec and /metadata.
                    obj = {"apiVersion": resource.api_version, "kind": resource.kind, **item}
                    listed.append(
                        (resource, obj, str(metadata.get("namespace") or namespace or ""))
                    )
        except RequestDenied as exc:
            report.denied.append(
                Denied(resource.resource, namespace, exc.code, exc.reason, exc.message)
            )
    # Every image of every workload, looked up at once, before any is planned.
    found = lookup_run(images_of(obj for _, obj, _ in listed), config.images, offline=offline)
    report.images = ImageReport(found.facts, found.offline, found.requests, found.seconds)
    by_namespace: dict[str, NamespaceAudit] = {}
    for resource, obj, ns in listed:
        policy = policies.get(ns)
        if ns not in by_namespace:
            by_namespace[ns] = NamespaceAudit(ns, policy)
        audited = audit_workload(
            obj, resource, policy, config, images=found.facts, user_namespaces=userns.support
        )
        by_namespace[ns].workloads.append(audited)
        if audited.root is not False and audited.user_namespace is not None:
            userns.workloads.append(
                RootWorkload(
                    ns,
                    resource.kind,
                    audited.name,
                    audited.root is True,
                    audited.user_namespace,
                    audited.user_namespace_why,
                )
            )
    report.namespaces = [by_namespace[name] for name in sorted(by_namespace)]
    return report
