"""The MutatingWebhookConfiguration: every property the API server and an outage depend on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_support import TARGETS, Obj, pick

Rendered = dict[str, list[Obj]]

SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease", "hardener-system"}
SKIP = {"key": "hardener.dev/skip", "operator": "NotIn", "values": ["true"]}
WORKLOADS = {
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("", "replicationcontrollers"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
}


def webhooks(rendered: Rendered, target: str) -> dict[str, dict[str, Any]]:
    config = pick(rendered[target], "MutatingWebhookConfiguration", "hardener")
    entries: list[dict[str, Any]] = config["webhooks"]
    by_name = {w["name"]: w for w in entries}
    assert len(by_name) == len(entries), "webhook names must be unique"
    return by_name


def rule_set(webhook: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(group, version, resource, operation) for every rule of one webhook entry."""
    out = set()
    for rule in webhook["rules"]:
        assert rule.get("scope") == "Namespaced"
        for group in rule["apiGroups"]:
            for version in rule["apiVersions"]:
                for resource in rule["resources"]:
                    for operation in rule["operations"]:
                        out.add((group, version, resource, operation))
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_common_properties(rendered: Rendered, target: str) -> None:
    for name, webhook in webhooks(rendered, target).items():
        assert webhook["admissionReviewVersions"] == ["v1"], name
        assert webhook["sideEffects"] == "None", name
        assert webhook["timeoutSeconds"] == 5, name
        assert webhook["reinvocationPolicy"] == "IfNeeded", name
        assert webhook["matchPolicy"] == "Equivalent", name
        assert webhook["clientConfig"]["service"]["path"] == "/mutate", name
        assert "url" not in webhook["clientConfig"], name


@pytest.mark.parametrize("target", TARGETS)
def test_failure_policy(rendered: Rendered, target: str) -> None:
    expected = "Fail" if "fail-closed" in target else "Ignore"
    for name, webhook in webhooks(rendered, target).items():
        assert webhook["failurePolicy"] == expected, f"{target}: {name}"


@pytest.mark.parametrize("target", TARGETS)
def test_namespace_selector_excludes_system_and_skipped(rendered: Rendered, target: str) -> None:
    for name, webhook in webhooks(rendered, target).items():
        selector = webhook["namespaceSelector"]
        assert set(selector) == {"matchExpressions"}, name
        expressions = selector["matchExpressions"]
        by_name = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
        assert len(by_name) == 1
        assert by_name[0]["operator"] == "NotIn"
        assert set(by_name[0]["values"]) == SYSTEM_NAMESPACES
        assert SKIP in expressions
        assert len(expressions) == 2


@pytest.mark.parametrize("target", TARGETS)
def test_object_selector_skips_labelled_objects(rendered: Rendered, target: str) -> None:
    for name, webhook in webhooks(rendered, target).items():
        assert webhook["objectSelector"] == {"matchExpressions": [SKIP]}, name


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Label selector semantics for the In/NotIn/Exists/DoesNotExist expressions."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


@pytest.mark.parametrize(
    ("labels", "selected"),
    [
        ({"kubernetes.io/metadata.name": "team-a"}, True),
        ({"kubernetes.io/metadata.name": "team-a", "hardener.dev/skip": "false"}, True),
        ({"kubernetes.io/metadata.name": "team-a", "hardener.dev/skip": "true"}, False),
        ({"kubernetes.io/metadata.name": "kube-system"}, False),
        ({"kubernetes.io/metadata.name": "kube-public"}, False),
        ({"kubernetes.io/metadata.name": "kube-node-lease"}, False),
        ({"kubernetes.io/metadata.name": "hardener-system"}, False),
    ],
)
def test_namespace_selection(rendered: Rendered, labels: dict[str, str], selected: bool) -> None:
    for webhook in webhooks(rendered, "base").values():
        assert labels_match(webhook["namespaceSelector"], labels) is selected


def test_own_namespace_is_skipped_twice(rendered: Rendered) -> None:
    # By name in the selector and by label, so renaming one still keeps the webhook off itself.
    namespace = pick(rendered["base"], "Namespace", "hardener-system")
    labels = {**namespace["metadata"]["labels"], "kubernetes.io/metadata.name": "renamed"}
    for webhook in webhooks(rendered, "base").values():
        assert not labels_match(webhook["namespaceSelector"], labels)


@pytest.mark.parametrize("target", TARGETS)
def test_pods_entry(rendered: Rendered, target: str) -> None:
    pods = webhooks(rendered, target)["pods.hardener.dev"]
    assert rule_set(pods) == {
        ("", "v1", "pods", "CREATE"),
        ("", "v1", "pods/ephemeralcontainers", "UPDATE"),
    }


@pytest.mark.parametrize("target", TARGETS)
def test_workloads_entry(rendered: Rendered, target: str) -> None:
    entries = webhooks(rendered, target)
    if "pods-only" in target:
        assert list(entries) == ["pods.hardener.dev"]
        return
    assert list(entries) == ["pods.hardener.dev", "workloads.hardener.dev"]
    expected = {
        (group, "v1", resource, operation)
        for group, resource in WORKLOADS
        for operation in ("CREATE", "UPDATE")
    }
    assert rule_set(entries["workloads.hardener.dev"]) == expected


@pytest.mark.parametrize("target", TARGETS)
def test_ca_bundle_source(rendered: Rendered, target: str) -> None:
    config = pick(rendered[target], "MutatingWebhookConfiguration", "hardener")
    annotations = config["metadata"].get("annotations", {})
    bundles = [w["clientConfig"].get("caBundle") for w in config["webhooks"]]
    if target == "base":
        assert annotations == {} and bundles == [None] * len(bundles)
    elif target.startswith("self-managed"):
        assert "cert-manager.io/inject-ca-from" not in annotations
        assert all(bundles)
    else:
        assert annotations["cert-manager.io/inject-ca-from"] == "hardener-system/hardener-serving"
        assert bundles == [None] * len(bundles)
