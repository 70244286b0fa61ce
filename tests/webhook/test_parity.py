"""Parity: the webhook's patch, applied with ``jsonpatch``, gives what ``hardener fix`` writes
for the same object, and what the engine's ops give, over every PSS fixture pod and every
workload of the corpus. Posting the patched object again gives no patch (reinvocation), and the
PSS warnings are the evaluator's verdict on the patched object.

The webhook never imports the fixer; this test imports both.
"""

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
from hardener.fixer.run import fix_text
from hardener.model import InvalidObjectError
from hardener.pss import evaluate
from hardener.webhook import create_app
from tests.webhook.conftest import (
    SHARED,
    admission_review,
    as_json,
    corpus_files,
    decode_patch,
    documents,
    objects_of,
    pss_files,
)

pytestmark = pytest.mark.asyncio

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
HEADERS = {"Content-Type": "application/json"}


async def _post(client: Client, doc: dict[str, Any]) -> tuple[int, Any]:
    async with client.post("/mutate", data=json.dumps(doc), headers=HEADERS) as resp:
        return resp.status, await resp.json()


class Tally:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.objects = 0
        self.patched = 0
        self.fixer_compared = 0
        self.kinds: set[str] = set()


async def _check_object(
    client: Client, name: str, obj: dict[str, Any], fixed: Any, tally: Tally
) -> None:
    tally.objects += 1
    tally.kinds.add(obj["kind"])
    namespace = (obj.get("metadata") or {}).get("namespace") or "default"
    review = admission_review(copy.deepcopy(obj), namespace=namespace)
    try:
        expected = jsonpatch.apply_patch(obj, plan(obj, namespace=namespace).ops)
    except InvalidObjectError:
        status, answer = await _post(client, review)
        if status != 400 or "request.object" not in answer.get("error", ""):
            tally.problems.append(f"{name}: the engine rejects it, the webhook said {status}")
        return
    status, answer = await _post(client, review)
    if status != 200:
        tally.problems.append(f"{name}: HTTP {status}: {answer}")
        return
    ops = decode_patch(answer["response"])
    got = jsonpatch.apply_patch(obj, ops) if ops else obj
    tally.patched += bool(ops)
    if got != expected:
        tally.problems.append(f"{name}: the webhook's result differs from the engine's")
    if fixed is not None:
        tally.fixer_compared += 1
        if got != as_json(fixed):
            tally.problems.append(f"{name}: the webhook's result differs from `hardener fix`")
    # The warnings report what the PSS evaluator finds in the patched object.
    violations = {v.check for v in evaluate(got, level="restricted", version="latest")}
    audit = answer["response"].get("auditAnnotations", {})
    reported = audit["pss-violations"].split(",") if "pss-violations" in audit else []
    if set(reported) != violations or len(reported) != len(violations):
        tally.problems.append(f"{name}: pss-violations {reported} != {sorted(violations)}")
    # Reinvocation: the API server may call again with the patched object.
    status, again = await _post(client, admission_review(copy.deepcopy(got), namespace=namespace))
    if status != 200 or "patch" in again["response"]:
        tally.problems.append(f"{name}: reinvocation gave a patch again")


async def _check_file(client: Client, name: str, text: str, tally: Tally) -> None:
    originals = documents(text)
    result = fix_text(text, name)
    fixed_documents: list[Any] | None = None
    if result.error is None and result.skipped is None:
        fixed_documents = documents(result.fixed) if result.fixed is not None else originals
        if len(fixed_documents) != len(originals):
            tally.problems.append(f"{name}: `hardener fix` changed the number of documents")
            fixed_documents = None
    for index, doc in enumerate(originals):
        fixed_objects = (
            list(objects_of(fixed_documents[index])) if fixed_documents is not None else None
        )
        for position, obj in enumerate(objects_of(doc)):
            fixed = fixed_objects[position] if fixed_objects is not None else None
            await _check_object(client, f"{name}#{index}.{position}", as_json(obj), fixed, tally)


async def test_parity_over_the_pss_fixture_pods(aiohttp_client: MakeClient) -> None:
    files = pss_files()
    assert len(files) > 50, "the PSS fixtures are missing (tests/data/pss)"
    client = await aiohttp_client(create_app(default_config()))
    tally = Tally()
    for name, text in files:
        await _check_file(client, name, text, tally)
    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.kinds == {"Pod"}
    assert tally.patched > tally.objects // 2
    assert tally.fixer_compared == tally.objects


async def test_parity_over_the_corpus_workloads(aiohttp_client: MakeClient) -> None:
    files = corpus_files()
    client = await aiohttp_client(create_app(default_config()))
    tally = Tally()
    for name, text in files:
        await _check_file(client, name, text, tally)
    assert not tally.problems, "\n".join(tally.problems[:20])
    assert {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "Pod",
    } <= tally.kinds
    if (SHARED / "corpus").is_dir():
        assert tally.objects > 200
    # Files the fixer leaves alone (Helm-style templates) are the only ones not compared.
    assert tally.fixer_compared > tally.objects * 0.9
