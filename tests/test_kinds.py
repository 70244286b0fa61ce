"""``hardener.locate.KINDS`` is the one list of the kinds that hold a pod: every face sees each
of them, so adding a kind there is enough."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from hardener import locate
from hardener.audit import RESOURCES
from hardener.config import parse_config
from hardener.fixer.documents import holds_pods, object_skip_reason
from hardener.fixer.run import FixOptions, fix_text
from hardener.webhook import WORKLOAD_KINDS, decode_review, review
from hardener.webhook_config import webhook_configuration
from tests.webhook.conftest import admission_review

CONFIG = parse_config({"images": {"unknown": "assume-nonroot"}})


def _object(kind: locate.WorkloadKind) -> dict[str, Any]:
    pod = {"containers": [{"name": "app", "image": "example.com/app:1"}]}
    obj: dict[str, Any] = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": "x", "namespace": "default"},
    }
    # Build the object from the kind's own template path, so the test follows the table.
    holder = obj
    for key in kind.template:
        holder = holder.setdefault(key, {})
    holder["spec"] = pod
    if kind.template:
        holder["metadata"] = {"labels": {"app": "x"}}
    return obj


@pytest.mark.parametrize("kind", locate.KINDS, ids=lambda k: k.kind)
def test_the_engine_and_the_fixer_find_the_pod(kind: locate.WorkloadKind) -> None:
    obj = _object(kind)
    sites = locate.pod_sites(obj)
    assert [s.spec_path for s in sites] == [(*kind.template, "spec")]
    assert [path for path, _ in locate.pod_spec_places(obj)] == [(*kind.template, "spec")]
    assert holds_pods(obj) and object_skip_reason(obj) is None
    result = fix_text(yaml.safe_dump(obj), "x.yaml", FixOptions(config=CONFIG))
    assert result.fixed is not None
    fixed = yaml.safe_load(result.fixed)
    holder = fixed
    for key in (*kind.template, "spec"):
        holder = holder[key]
    assert holder["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("kind", [k for k in locate.KINDS if k.admitted], ids=lambda k: k.kind)
def test_the_webhook_hardens_every_admitted_kind(kind: locate.WorkloadKind) -> None:
    body = json.dumps(admission_review(_object(kind))).encode()
    result = review(decode_review(body), CONFIG)
    assert result.outcome == "patched", result
    rules = [
        rule
        for hook in webhook_configuration({"url": "https://127.0.0.1/mutate"})["webhooks"]
        for rule in hook["rules"]
    ]
    assert any(
        kind.group in rule["apiGroups"]
        and kind.resource in rule["resources"]
        and "CREATE" in rule["operations"]
        for rule in rules
    ), (kind, rules)
    if kind.template:
        assert (kind.group, kind.kind) in WORKLOAD_KINDS


def test_the_audit_lists_every_admitted_kind() -> None:
    listed = {r.kind for r in RESOURCES}
    admitted = {k.kind for k in locate.KINDS if k.admitted}
    assert admitted == listed
    for resource in RESOURCES:
        api = resource.api(None)
        assert callable(getattr(api, resource.list_all))
        assert callable(getattr(api, resource.list_namespaced))
