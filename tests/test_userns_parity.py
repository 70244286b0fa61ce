"""Parity for user namespaces: the webhook, ``fix`` with ``user-namespaces: always`` and
``audit`` decide the same for the same pod, image facts and support.

The webhook and the audit take the support a node watch publishes; ``fix`` has no cluster and
takes it from the config: ``always`` where every node supports user namespaces, and ``auto``
(off) where they do not. Each face's result is the object it would leave: the webhook's patch
applied to the request's object, the file ``fix`` writes read back, and the audit's ops
applied to the object the API server returned.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import pytest
import yaml

from hardener import parse_config
from hardener.audit import RESOURCES, Policy, audit_workload
from hardener.config import Config
from hardener.fixer.run import FixOptions, fix_text
from hardener.image_facts import ImageFacts
from hardener.userns import ClusterView, Support
from hardener.webhook import review
from tests.conftest import load_all

FACTS = {
    "nginx:1.27": ImageFacts(reference="docker.io/library/nginx:1.27", source="registry", user=""),
    "app:1": ImageFacts(reference="example.com/app:1", source="registry", user="1000"),
    "memcached:1.6": ImageFacts(
        reference="docker.io/library/memcached:1.6", source="registry", user="memcache", uid=11211
    ),
    "odd:1": ImageFacts(reference="example.com/odd:1", source="registry", user="odd"),
    "secret:1": ImageFacts.unknown("example.com/secret:1", "401 Unauthorized"),
}


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "web", "image": "nginx:1.27"}])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


PODS = {
    "root": _pod("root"),
    "mixed": _pod(
        "mixed",
        initContainers=[{"name": "init", "image": "odd:1"}],
        containers=[
            {"name": "web", "image": "nginx:1.27"},
            {"name": "app", "image": "app:1"},
            {"name": "cache", "image": "memcached:1.6"},
            {"name": "secret", "image": "secret:1"},
        ],
    ),
    "host network": _pod("net", hostNetwork=True),
    "host users true": _pod("mine", hostUsers=True),
    "privileged": _pod(
        "priv",
        containers=[{"name": "w", "image": "app:1", "securityContext": {"privileged": True}}],
    ),
    "windows": _pod("win", os={"name": "windows"}),
    "runtime class": _pod("rc", runtimeClassName="fast"),
    "explicit root user": _pod("uid0", securityContext={"runAsUser": 0, "runAsNonRoot": False}),
}


def _view(supported: bool) -> Support:
    node = {
        "metadata": {"name": "n1"},
        "status": {
            "nodeInfo": {"operatingSystem": "linux"},
            "runtimeHandlers": [
                {"name": "", "features": {"userNamespaces": supported}},
                {"name": "crun", "features": {"userNamespaces": supported}},
            ],
        },
    }
    runtime_classes = [{"metadata": {"name": "fast"}, "handler": "crun"}]
    return Support.of_cluster(ClusterView.from_objects([node], runtime_classes))


def _by_webhook(obj: dict[str, Any], config: Config, support: Support) -> dict[str, Any]:
    request = {
        "uid": "b9f1d6a5-0000-4000-8000-000000000001",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "namespace": "shop",
        "object": copy.deepcopy(obj),
    }
    result = review(request, config, images=FACTS, user_namespaces=support)  # type: ignore[arg-type]
    response = result.response
    if "patch" not in response:
        return copy.deepcopy(obj)
    ops = json.loads(base64.b64decode(response["patch"]))
    patched: dict[str, Any] = jsonpatch.apply_patch(obj, ops)
    return patched


def _by_fix(obj: dict[str, Any], config: Config) -> dict[str, Any]:
    text = yaml.safe_dump(obj, sort_keys=False)
    result = fix_text(text, "pod.yaml", FixOptions(config=config, write=False, images=FACTS))
    assert result.error is None, result.error
    (fixed,) = load_all(result.fixed if result.fixed is not None else text)
    return dict(fixed)


def _by_audit(obj: dict[str, Any], config: Config, support: Support) -> dict[str, Any]:
    pods = next(r for r in RESOURCES if r.kind == "Pod")
    audited = audit_workload(
        copy.deepcopy(obj),
        pods,
        Policy("restricted", "latest", "config"),
        config,
        images=FACTS,
        user_namespaces=support,
    )
    assert audited.error is None, audited.error
    patched: dict[str, Any] = jsonpatch.apply_patch(obj, audited.ops)
    return patched


@pytest.mark.parametrize("name", list(PODS))
@pytest.mark.parametrize("supported", [True, False])
def test_the_three_faces_decide_the_same(name: str, supported: bool) -> None:
    obj = PODS[name]
    auto = parse_config({})
    support = _view(supported)
    webhook = _by_webhook(obj, auto, support)
    audit = _by_audit(obj, auto, support)
    fix = _by_fix(obj, parse_config({"user-namespaces": "always" if supported else "auto"}))
    assert webhook == fix == audit
    eligible = name in ("root", "mixed", "runtime class", "explicit root user")
    assert (webhook["spec"].get("hostUsers") is False) == (
        (eligible and supported) or obj["spec"].get("hostUsers") is False
    )
