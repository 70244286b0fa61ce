"""Parity over image facts learned from a real registry: for the same facts, the webhook's
patch, the file ``hardener fix`` writes and the object ``audit_workload`` plans are the same
hardened object.

The webhook learns the facts itself, from Debian's ``docker-registry`` on loopback
(``tests/images/conftest.py``): named users resolved through ``/etc/passwd``, numeric users
with VOLUMEs, root, a multi-platform index, whiteouts, a layer over the byte budget, an OCI
artifact that is no image. The same resolver then hands the facts it cached to ``fix`` and to
``audit``, and the three hardened objects are compared whole, for the default policy and for
``images.root: run-as-user`` with ``images.unknown: assume-nonroot``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from hardener.audit import RESOURCES, Policy, audit_workload
from hardener.config import Config, parse_config
from hardener.fixer.run import FixOptions, fix_text
from hardener.image_facts import ImageFacts
from hardener.webhook import STATE_KEY, create_app
from tests.conftest import load_all
from tests.images.conftest import Registries
from tests.webhook.conftest import admission_review, decode_patch

# The webhook looks the images up in a loopback registry.
pytestmark = pytest.mark.usefixtures("images_online")

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

IMAGES = ("named", "named-group", "numeric", "root", "multi", "whiteout", "opaque", "huge")


def _objects(images: dict[str, str]) -> list[dict[str, Any]]:
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name.replace("-", ""), "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": images[name]}]},
        }
        for name in (*IMAGES, "artifact")
    ]
    mixed = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "mixed", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "mixed"}},
            "template": {
                "metadata": {"labels": {"app": "mixed"}},
                "spec": {
                    "initContainers": [{"name": "init", "image": images["root"]}],
                    "containers": [
                        {"name": "web", "image": images["named"]},
                        {"name": "data", "image": images["numeric"]},
                        {"name": "odd", "image": images["huge"]},
                        {"name": "chart", "image": images["artifact"]},
                    ],
                },
            },
        },
    }
    return [*pods, mixed]


def _by_fix(obj: dict[str, Any], config: Config, facts: dict[str, ImageFacts]) -> Any:
    text = yaml.safe_dump(obj, sort_keys=False)
    result = fix_text(text, "obj.yaml", FixOptions(config=config, write=False, images=facts))
    assert result.error is None, result.error
    (fixed,) = load_all(result.fixed if result.fixed is not None else text)
    return fixed


def _by_audit(obj: dict[str, Any], config: Config, facts: dict[str, ImageFacts]) -> Any:
    resource = next(
        r for r in RESOURCES if r.kind == obj["kind"] and r.api_version == obj["apiVersion"]
    )
    audited = audit_workload(
        copy.deepcopy(obj), resource, Policy("restricted", "latest", "config"), config, images=facts
    )
    assert audited.error is None, audited.error
    return jsonpatch.apply_patch(obj, audited.ops)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "policy", [{}, {"root": "keep"}, {"root": "run-as-user", "unknown": "assume-nonroot"}]
)
async def test_webhook_fix_and_audit_harden_alike_from_looked_up_facts(
    aiohttp_client: MakeClient, registries: Registries, tmp_path: Path, policy: dict[str, str]
) -> None:
    host = registries.anonymous.host
    config = parse_config(
        {
            "images": {
                **policy,
                "registries": {host: {"insecure": True}},
                "cache-dir": str(tmp_path / "cache"),
                # The huge image's /etc/passwd lies past this budget: its name stays unresolved.
                "max-layer-bytes": 100_000,
            }
        }
    )
    app = create_app(config)
    client = await aiohttp_client(app)
    objects = _objects(registries.images)
    by_webhook = []
    for obj in objects:
        review = admission_review(copy.deepcopy(obj), namespace="shop")
        async with client.post("/mutate", json=review) as resp:
            assert resp.status == 200
            answer = (await resp.json())["response"]
        ops = decode_patch(answer)
        failed = [w for w in answer.get("warnings", []) if "lookup failed" in w]
        # Only the artifact's lookup fails (the registry serves no image there), and says so.
        artifact = registries.images["artifact"]
        assert all(w.startswith(f"hardener: image {artifact}: lookup failed") for w in failed)
        assert ("artifact" in json.dumps(obj)) == bool(failed), failed
        by_webhook.append(jsonpatch.apply_patch(obj, ops) if ops else obj)

    resolver = app[STATE_KEY].images
    assert resolver is not None
    facts = await resolver.lookup_many(registries.images[name] for name in (*IMAGES, "artifact"))
    # What the webhook learnt, now from its cache: the facts are the registry's.
    assert facts[registries.images["named"]].uid == 101
    assert facts[registries.images["huge"]].uid is None
    assert facts[registries.images["artifact"]].source == "unknown"

    decisions = 0
    for obj, webhook in zip(objects, by_webhook, strict=True):
        fixed = _by_fix(obj, config, facts)
        audited = _by_audit(obj, config, facts)
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        assert webhook == fixed, f"{name}: the webhook and fix differ"
        assert webhook == audited, f"{name}: the webhook and audit differ"
        decisions += webhook != obj
    assert decisions == len(objects)
    named = by_webhook[0]["spec"]["containers"][0]["securityContext"]
    assert named["runAsUser"] == 101
