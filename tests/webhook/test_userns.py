"""User namespaces in the webhook, through the real ``aiohttp_client``: the patch follows what
the node watch publishes (read from memory in each review), the warning on a pod whose root
image was kept because support is missing, the rule's decisions by reason as a counter, and
the support state as gauges."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hardener.config import parse_config
from hardener.userns import ClusterView, Support
from hardener.webhook import METRICS_KEY, create_app
from tests.webhook.conftest import admission_review, decode_patch, no_lookups

pytestmark = pytest.mark.asyncio

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

ROOT_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}


def node(name: str, supported: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "nodeInfo": {"operatingSystem": "linux"},
            "runtimeHandlers": [{"name": "", "features": {"userNamespaces": supported}}],
        },
    }


class Published:
    """What a node watch would publish; the test changes it between reviews."""

    def __init__(self, support: Support | None) -> None:
        self.value = support
        self.reads = 0

    def __call__(self) -> Support | None:
        self.reads += 1
        return self.value


def cluster(*supported: bool) -> Support:
    nodes = [node(f"n{i}", ok) for i, ok in enumerate(supported)]
    return Support.of_cluster(ClusterView.from_objects(nodes, []))


async def review(client: Client, obj: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(admission_review(copy.deepcopy(obj), namespace="shop")).encode()
    headers = {"Content-Type": "application/json"}
    async with client.post("/mutate", data=body, headers=headers) as resp:
        assert resp.status == 200
        answer: dict[str, Any] = (await resp.json())["response"]
        return answer


def samples(app: web.Application) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    text = generate_latest(app[METRICS_KEY].registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def decisions(app: web.Application) -> dict[str, float]:
    return {
        labels[0][1]: value
        for (name, labels), value in samples(app).items()
        if name == "hardener_webhook_user_namespace_decisions_total" and value
    }


def gauges(app: web.Application) -> tuple[float, float]:
    found = samples(app)
    return (
        found[("hardener_webhook_user_namespaces_enabled", ())],
        found[("hardener_webhook_user_namespaces_watch_synced", ())],
    )


async def test_the_patch_follows_the_published_support(aiohttp_client: MakeClient) -> None:
    published = Published(cluster(True, True))
    app = create_app(parse_config({}), user_namespaces=published, image_resolver=no_lookups)
    client = await aiohttp_client(app)
    assert gauges(app) == (1.0, 1.0)

    answer = await review(client, ROOT_POD)
    patch = decode_patch(answer)
    assert {"op": "add", "path": "/spec/hostUsers", "value": False} in patch
    assert not [op for op in patch if "runAsNonRoot" in json.dumps(op)]
    assert not [w for w in answer.get("warnings", []) if "runs as root" in w]
    assert "user-namespace" in answer["auditAnnotations"]["rules"]

    # One node stops reporting support: the next review no longer adds it, and the pod whose
    # root image is kept says why.
    published.value = cluster(True, False)
    assert gauges(app) == (0.0, 1.0)
    answer = await review(client, ROOT_POD)
    patch = decode_patch(answer)
    assert not [op for op in patch if op["path"].endswith("/hostUsers")]
    kept = [w for w in answer["warnings"] if w.startswith('hardener: container "web"')]
    assert len(kept) == 1 and "not known" in kept[0]  # no image facts here: the unknown case
    assert (
        'hardener: no user namespace for this pod, in which container "web" could run as root '
        "safely: node n1 reports no user namespace support for the default runtime handler"
    ) in answer["warnings"]

    # Until the watch has listed the nodes, or while the API server cannot be reached: off.
    published.value = Support.unknown("the API server cannot be reached")
    assert gauges(app) == (0.0, 0.0)
    answer = await review(client, ROOT_POD)
    assert not [op for op in decode_patch(answer) if op["path"].endswith("/hostUsers")]
    assert any("the API server cannot be reached" in w for w in answer["warnings"])

    published.value = cluster(True)
    answer = await review(client, ROOT_POD)
    assert {"op": "add", "path": "/spec/hostUsers", "value": False} in decode_patch(answer)
    assert decisions(app) == {"added": 2, "unsupported": 1, "unknown": 1}
    assert published.reads >= 4  # read once per review (and per scrape)


async def test_a_pod_that_cannot_have_one_says_why(aiohttp_client: MakeClient) -> None:
    app = create_app(
        parse_config({}), user_namespaces=Published(cluster(True)), image_resolver=no_lookups
    )
    client = await aiohttp_client(app)
    pod = copy.deepcopy(ROOT_POD)
    pod["spec"]["hostNetwork"] = True
    answer = await review(client, pod)
    assert any(
        "hostUsers: false left out: the pod sets hostNetwork: true, which the API server "
        "rejects next to hostUsers: false" in w
        for w in answer["warnings"]
    )
    pod["spec"].pop("hostNetwork")
    pod["spec"]["hostUsers"] = True
    answer = await review(client, pod)
    assert any("the pod sets hostUsers: true" in w for w in answer["warnings"])
    assert decisions(app) == {"host-network": 1, "host-users-true": 1}


async def test_without_a_watch_auto_is_off_and_always_is_on(aiohttp_client: MakeClient) -> None:
    app = create_app(parse_config({}))
    client = await aiohttp_client(app)
    assert gauges(app) == (0.0, 0.0)
    answer = await review(client, ROOT_POD)
    assert not [op for op in decode_patch(answer) if op["path"].endswith("/hostUsers")]
    assert decisions(app) == {"offline": 1}

    always = create_app(parse_config({"user-namespaces": "always"}))
    client = await aiohttp_client(always)
    assert gauges(always) == (1.0, 0.0)
    answer = await review(client, ROOT_POD)
    assert {"op": "add", "path": "/spec/hostUsers", "value": False} in decode_patch(answer)

    never = create_app(
        parse_config({"user-namespaces": "never"}), user_namespaces=Published(cluster(True))
    )
    client = await aiohttp_client(never)
    assert gauges(never) == (0.0, 0.0)  # no watch in use under never
    answer = await review(client, ROOT_POD)
    assert not [op for op in decode_patch(answer) if op["path"].endswith("/hostUsers")]
    assert decisions(never) == {"never": 1}
