"""Live clusters, through the official ``kubernetes`` client: ``audit`` reads the workloads that
already run and says what the webhook would change, what it cannot fix and what Pod Security
Admission thinks of each, before and after; ``apply_configuration`` and
``delete_configuration`` install and remove the webhook's ``MutatingWebhookConfiguration``.

Errors: ``ClusterError`` (no kubeconfig, unreachable server, rejected credentials) ends a
command; ``InstallError`` is input ``install`` cannot use or a change the server refused; both
derive from ``hardener.model.HardenerError``. A request refused for one resource during an audit
(403, 404) is recorded in ``AuditReport.denied`` and the audit goes on.

Nothing here changes the cluster except ``apply_configuration`` and ``delete_configuration``.

The records an audit fills in (``AuditReport``, ``WorkloadAudit``, ``Policy``, ...) and their
formats (``render_audit``) live in ``hardener.report``; the records are re-exported here.
"""

from hardener.audit._audit import RESOURCES, Resource, audit, audit_workload, namespace_policy
from hardener.audit._cluster import ClusterError, Connection, connect
from hardener.audit._install import (
    CONFIGURATION_NAME,
    FIELD_MANAGER,
    NODE_READER_RULES,
    RBAC_NAME,
    WEBHOOK_NAMES,
    Applied,
    InstallError,
    apply_configuration,
    apply_rbac,
    delete_configuration,
    delete_rbac,
    install_webhook_configuration,
    rbac_objects,
    read_ca_bundle,
)
from hardener.report import AuditReport, Denied, NamespaceAudit, Policy, WorkloadAudit

__all__ = [
    "CONFIGURATION_NAME",
    "FIELD_MANAGER",
    "NODE_READER_RULES",
    "RBAC_NAME",
    "RESOURCES",
    "WEBHOOK_NAMES",
    "Applied",
    "AuditReport",
    "ClusterError",
    "Connection",
    "Denied",
    "InstallError",
    "NamespaceAudit",
    "Policy",
    "Resource",
    "WorkloadAudit",
    "apply_configuration",
    "apply_rbac",
    "audit",
    "audit_workload",
    "connect",
    "delete_configuration",
    "delete_rbac",
    "install_webhook_configuration",
    "namespace_policy",
    "rbac_objects",
    "read_ca_bundle",
]
