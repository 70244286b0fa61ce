"""Parity: the webhook's patch, applied with ``jsonpatch``, gives what the engine (and so
``hardener fix``) gives for the same object, over every PSS fixture pod and every workload of
the corpus; posting the patched object again gives no patch (reinvocation)."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonpatch
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hardener.config import default_config
from hardener.engine import plan
from hardener.model import InvalidObjectError
from hardener.pss import evaluate
from hardener.webhook import create_app
from tests.webhook.conftest import (
    SHARED,
    admission_review,
    corpus_objects,
    decode_patch,
    pss_pods,
)

pytestmark = pytest.mark.asyncio

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
HEADERS = {"Content-Type": "application/json"}


async def _post(client: Client, doc: dict[str, Any]) -> tuple[int, Any]:
    async with client.post("/mutate", data=json.dumps(doc), headers=HEADERS) as resp:
        return resp.status, await resp.json()


async def _check_parity(client: Client, name: str, obj: dict[str, Any]) -> list[str]:
    """Problems with one object; an empty list when the webhook and the engine agree."""
    problems: list[str] = []
    namespace = (obj.get("metadata") or {}).get("namespace") or "default"
    try:
        expected = jsonpatch.apply_patch(obj, plan(obj, namespace=namespace).ops)
    except InvalidObjectError:
        status, answer = await _post(
            client, admission_review(copy.deepcopy(obj), namespace=namespace)
        )
        if status != 400 or "request.object" not in answer.get("error", ""):
            problems.append(f"{name}: engine rejects the object, webhook said {status} {answer}")
        return problems
    status, answer = await _post(client, admission_review(copy.deepcopy(obj), namespace=namespace))
    if status != 200:
        return [f"{name}: HTTP {status}: {answer}"]
    ops = decode_patch(answer["response"])
    got = jsonpatch.apply_patch(obj, ops) if ops else obj
    if got != expected:
        problems.append(f"{name}: webhook result differs from the engine's")
    # The warnings report what the PSS evaluator finds in the patched object.
    violations = {v.check for v in evaluate(expected, level="restricted", version="latest")}
    audit = answer["response"].get("auditAnnotations", {})
    reported = audit.get("pss-violations", "").split(",") if "pss-violations" in audit else []
    if set(reported) != violations or len(reported) != len(violations):
        problems.append(f"{name}: pss-violations {reported} != {sorted(violations)}")
    # Reinvocation: the API server may call again with the patched object.
    status, again = await _post(client, admission_review(copy.deepcopy(got), namespace=namespace))
    if status != 200 or "patch" in again["response"]:
        problems.append(f"{name}: reinvocation gave a patch again: {again}")
    return problems


def _fixer_text_function() -> Callable[[str], str] | None:
    """``hardener fix`` on a text, when the fixer exposes it (written in parallel)."""
    try:
        from hardener.fixer import fix_text  # type: ignore[attr-defined]
    except ImportError:
        return None
    return fix_text  # type: ignore[no-any-return]


async def test_parity_over_the_pss_fixture_pods(aiohttp_client: MakeClient) -> None:
    pods = pss_pods()
    assert len(pods) > 50, "the PSS fixtures are missing (tests/data/pss)"
    client = await aiohttp_client(create_app(default_config()))
    problems: list[str] = []
    patched = 0
    for name, pod in pods:
        problems += await _check_parity(client, name, pod)
        if plan(pod).ops:
            patched += 1
    assert not problems, "\n".join(problems[:20])
    assert patched > len(pods) // 2


async def test_parity_over_the_corpus_workloads(aiohttp_client: MakeClient) -> None:
    objects = corpus_objects()
    kinds = {obj["kind"] for _, obj in objects}
    assert {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "Pod",
    } <= kinds
    if (SHARED / "corpus").is_dir():
        assert len(objects) > 200
    client = await aiohttp_client(create_app(default_config()))
    problems: list[str] = []
    for name, obj in objects:
        problems += await _check_parity(client, name, obj)
    assert not problems, "\n".join(problems[:20])
