"""The cluster's support for user namespaces (``spec.hostUsers: false``), as the audit reads it:
every node, per runtime handler, with and without ``userNamespaces``, and its kernel (idmapped
mounts of every volume type need Linux 6.3 or later); read once through the node watch's own
lists (``SupportWatch.read_once``). What the report says of it is
``hardener.report.UserNamespaceAudit``.

Nodes that cannot be read (no ``list`` on ``nodes``) are said there, with what to grant: they
do not make the audit incomplete, they leave ``user-namespaces: auto`` off.
"""

from __future__ import annotations

from typing import Any

from hardener.nodewatch import SupportWatch
from hardener.report import UserNamespaceAudit
from hardener.userns import Support

__all__ = ["READ_SECONDS", "read_user_namespaces"]

READ_SECONDS = 30.0


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
