"""The MutatingWebhookConfiguration that sends hardener its AdmissionReviews.

One builder for every place that writes one: ``hardener serve`` prints it (``url:`` client
config), ``hardener install`` applies it (service or url), and ``deploy/base`` holds the same
webhooks as YAML (a test keeps them equal). Two webhooks: pods (CREATE, and the
``pods/ephemeralcontainers`` subresource) and the workload kinds (CREATE and UPDATE), so an
overlay can drop the second.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hardener.locate import KINDS

__all__ = [
    "CONFIGURATION_NAME",
    "SKIP_LABEL",
    "SYSTEM_NAMESPACES",
    "WEBHOOK_NAMES",
    "webhook_configuration",
]

CONFIGURATION_NAME = "hardener"
WEBHOOK_NAMES: tuple[str, str] = ("pods.hardener.dev", "workloads.hardener.dev")
SYSTEM_NAMESPACES: tuple[str, ...] = ("kube-system", "kube-public", "kube-node-lease")
SKIP_LABEL = "hardener.dev/skip"
"""A label (the API server's selectors read labels) that keeps a namespace or object away."""


def _controller_resources() -> dict[str, list[str]]:
    """The resources of the controllers the webhook hardens, by API group (``hardener.locate``
    owns the list)."""
    by_group: dict[str, list[str]] = {}
    for kind in KINDS:
        if kind.admitted and kind.template:
            by_group.setdefault(kind.group, []).append(kind.resource)
    return by_group


def _rule(group: str, operations: list[str], resources: list[str]) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": ["v1"],
        "operations": operations,
        "resources": resources,
        "scope": "Namespaced",
    }


def webhook_configuration(
    client_config: Mapping[str, Any],
    *,
    own_namespace: str | None = None,
    failure_policy: str = "Ignore",
    timeout_seconds: int = 5,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The configuration, calling ``client_config`` (``service`` or ``url``, with ``caBundle``).

    ``own_namespace``, where the webhook runs, is left out by the namespace selector, like the
    system namespaces, so the webhook never waits on itself.
    """
    if failure_policy not in ("Ignore", "Fail"):
        raise ValueError(f"failure policy {failure_policy!r}: use Ignore or Fail")
    excluded = [*SYSTEM_NAMESPACES, *([own_namespace] if own_namespace else [])]
    skip = {"key": SKIP_LABEL, "operator": "NotIn", "values": ["true"]}
    common: dict[str, Any] = {
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "timeoutSeconds": timeout_seconds,
        "reinvocationPolicy": "IfNeeded",
        "matchPolicy": "Equivalent",
        "failurePolicy": failure_policy,
        "clientConfig": dict(client_config),
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded},
                dict(skip),
            ]
        },
        "objectSelector": {"matchExpressions": [dict(skip)]},
    }
    metadata: dict[str, Any] = {"name": CONFIGURATION_NAME}
    if labels:
        metadata["labels"] = dict(labels)
    # Each webhook gets its own copy: shared objects would come out as YAML anchors.
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": [
            {
                "name": WEBHOOK_NAMES[0],
                **copy.deepcopy(common),
                "rules": [
                    _rule("", ["CREATE"], ["pods"]),
                    _rule("", ["UPDATE"], ["pods/ephemeralcontainers"]),
                ],
            },
            {
                "name": WEBHOOK_NAMES[1],
                **copy.deepcopy(common),
                "rules": [
                    _rule(group, ["CREATE", "UPDATE"], resources)
                    for group, resources in _controller_resources().items()
                ],
            },
        ],
    }
