"""Parity: the webhook's patch, applied with ``jsonpatch``, gives what ``hardener fix`` writes
for the same object, and what the engine's ops give, over every PSS fixture pod and every
workload of the corpus (the server learning no image facts, as ``fix`` without them). Posting
the patched object again gives no patch (reinvocation), and the PSS warnings are the
evaluator's verdict on the patched object. Given the same image facts, the webhook's review
and ``fix`` make the same decisions, and the webhook's warnings carry them.

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

from hardener.config import default_config, parse_config
from hardener.engine import plan
from hardener.fixer.run import FixOptions, fix_text
from hardener.image_facts import ImageFacts
from hardener.model import InvalidObjectError
from hardener.pss import evaluate
from hardener.webhook import create_app, decode_review, review
from tests._shared import shared
from tests.webhook.conftest import (
    admission_review,
    as_json,
    corpus_files,
    decode_patch,
    documents,
    no_lookups,
    objects_of,
    pss_files,
)

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


@pytest.mark.asyncio
async def test_parity_over_the_pss_fixture_pods(aiohttp_client: MakeClient) -> None:
    files = pss_files()
    assert len(files) > 50, "the PSS fixtures are missing (tests/data/pss)"
    client = await aiohttp_client(create_app(default_config(), image_resolver=no_lookups))
    tally = Tally()
    for name, text in files:
        await _check_file(client, name, text, tally)
    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.kinds == {"Pod"}
    assert tally.patched > tally.objects // 2
    assert tally.fixer_compared == tally.objects


@pytest.mark.asyncio
async def test_parity_over_the_corpus_workloads(aiohttp_client: MakeClient) -> None:
    files = corpus_files()
    client = await aiohttp_client(create_app(default_config(), image_resolver=no_lookups))
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
    if shared("corpus") is not None:
        assert tally.objects > 200
    # Files the fixer leaves alone (Helm-style templates) are the only ones not compared.
    assert tally.fixer_compared > tally.objects * 0.9


# -- the same decisions from the same image facts ---------------------------------------------

_PALETTE = (
    ImageFacts(reference="root", source="registry", user=""),
    ImageFacts(reference="numeric", source="registry", user="101:0"),
    ImageFacts(reference="named", source="registry", user="memcache", uid=11211),
    ImageFacts(reference="unresolved", source="table", user="nobody"),
    ImageFacts(reference="volumes", source="cache", user="999", volumes=("/data",)),
    ImageFacts.unknown("unknown", "lookup failed"),
)


def _images_of(files: list[tuple[str, str]]) -> dict[str, ImageFacts]:
    """Facts for every image string of the files, spread over every kind of image user."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            image = value.get("image")
            if isinstance(image, str) and "name" in value:
                names.add(image)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for _, text in files:
        for doc in documents(text):
            walk(doc)
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(sorted(names))}


@pytest.mark.parametrize("policy", [{}, {"root": "run-as-user", "unknown": "assume-nonroot"}])
def test_webhook_and_fix_decide_the_same_from_the_same_facts(policy: dict[str, str]) -> None:
    # Every tenth file of ../shared/corpus keeps this test quick; the image strings still cover
    # every palette entry. Without it, the local samples run whole.
    files = corpus_files()[:: 10 if shared("corpus") is not None else 1]
    images = _images_of(files)
    assert len(images) >= len(_PALETTE)
    config = parse_config({"images": policy})
    compared = notes = 0
    problems: list[str] = []
    for name, text in files:
        result = fix_text(text, name, FixOptions(config=config, images=images))
        if result.error is not None or result.skipped is not None:
            continue
        originals = documents(text)
        fixed_docs = documents(result.fixed) if result.fixed is not None else originals
        for index, doc in enumerate(originals):
            fixed_objects = list(objects_of(fixed_docs[index]))
            for position, obj in enumerate(objects_of(doc)):
                obj = as_json(obj)
                namespace = (obj.get("metadata") or {}).get("namespace") or "default"
                raw = admission_review(copy.deepcopy(obj), namespace=namespace)
                request = decode_review(json.dumps(raw).encode())
                try:
                    engine_ops = plan(obj, config, namespace=namespace, images=images).ops
                except InvalidObjectError:
                    continue
                answer = review(request, config, images=images)
                ops = decode_patch(dict(answer.response)) or []
                if ops != engine_ops:
                    problems.append(f"{name}#{index}.{position}: webhook ops differ from plan")
                got = jsonpatch.apply_patch(obj, ops)
                if got != as_json(fixed_objects[position]):
                    problems.append(f"{name}#{index}.{position}: webhook and fix differ")
                compared += 1
                said = " ".join(answer.response.get("warnings", []))
                notes += "runs as root" in said or "not known" in said
    assert not problems, "\n".join(problems[:20])
    # The local samples hold 9 objects; every tenth corpus file, many more.
    assert compared >= (11 if shared("corpus") is not None else 9)
    if not policy:
        assert notes > 0, "the image decisions must travel as webhook warnings"
