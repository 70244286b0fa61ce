"""Work that outlives its deadline: a review answered at the deadline never delays the next
one, work still queued for a worker thread when its deadline passes never starts, and the
garbage collector of ``hardener serve`` does not multiply the time a large body takes."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonpatch
import pytest

import hardener.webhook._app as app_module
from hardener.config import parse_config
from hardener.engine import plan
from hardener.webhook import STATE_KEY, create_app
from hardener.webhook._server import tune_gc
from tests.webhook.conftest import admission_review, decode_patch
from tests.webhook.test_handler import MakeClient, _pod_of, _post

pytestmark = pytest.mark.asyncio


async def test_a_review_past_the_deadline_does_not_delay_a_legitimate_one_after_it(
    aiohttp_client: MakeClient,
) -> None:
    """A review of 7,800 containers (allowed by a raised webhook.max-containers) takes
    seconds: it is answered at the deadline while its worker thread goes on. A legitimate
    270 KB review sent right after is hardened as usual, its patch the engine's, answered
    well before its own deadline."""
    deadline = 1.0
    config = parse_config({"webhook": {"deadline-seconds": deadline, "max-containers": 10_000}})
    app = create_app(config)
    client = await aiohttp_client(app)
    slow = json.dumps(admission_review(_pod_of(7800))).encode()
    status, answer = await _post(client, slow)
    assert status == 200
    assert answer["response"]["auditAnnotations"] == {"outcome": "deadline"}
    # The worker is still hardening the 7,800 containers.
    assert any(t.name.startswith("hardener-review") for t in threading.enumerate())

    legitimate_pod = _pod_of(2, annotation_bytes=270_000)
    legitimate = json.dumps(admission_review(copy.deepcopy(legitimate_pod))).encode()
    assert len(legitimate) > 270_000
    started = time.monotonic()
    status, answer = await _post(client, legitimate)
    took = time.monotonic() - started
    assert status == 200
    response = answer["response"]
    assert response["auditAnnotations"]["outcome"] == "patched", response
    assert jsonpatch.apply_patch(legitimate_pod, decode_patch(response)) == jsonpatch.apply_patch(
        legitimate_pod, plan(legitimate_pod).ops
    )
    # It shares the GIL with the worker left running, so it takes longer than alone; the
    # margin is for a loaded machine: what matters is that it never waits for that worker.
    assert took < deadline * 0.8, took


async def test_work_queued_for_a_thread_past_its_deadline_never_starts(
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every worker thread busy past the deadline, the reviews queued behind them are
    answered at their deadline, and their decoding and hardening are dropped, not run late."""
    real_prepare = app_module.prepare_review
    prepared: list[str] = []

    def prepare(request: Any, *args: Any, **kwargs: Any) -> Any:
        prepared.append(request["uid"])
        if request["uid"] == "slow":
            time.sleep(1.0)
        return real_prepare(request, *args, **kwargs)

    monkeypatch.setattr(app_module, "prepare_review", prepare)
    config = parse_config({"webhook": {"deadline-seconds": 0.3}})
    app = create_app(config)
    # One worker thread: the slow review holds it, the others queue behind it.
    app[STATE_KEY].executor = ThreadPoolExecutor(max_workers=1)
    client = await aiohttp_client(app)
    pod = _pod_of(2, annotation_bytes=20_000)
    bodies = [
        json.dumps(admission_review(copy.deepcopy(pod), uid=uid)).encode()
        for uid in ("slow", "queued-1", "queued-2")
    ]
    # The slow review first, and holding the thread, before the others arrive (on a busy
    # machine three requests sent at once may reach the server in any order).
    slow = asyncio.ensure_future(_post(client, bodies[0]))
    for _ in range(500):
        if prepared:
            break
        await asyncio.sleep(0.01)
    assert prepared == ["slow"]
    queued = await asyncio.gather(*(_post(client, body) for body in bodies[1:]))
    answers = [await slow, *queued]
    for status, error in answers:
        assert status == 400
        assert "could not be decoded within the deadline" in error["error"]
    await asyncio.sleep(1.2)  # the slow one is done, the thread free
    assert prepared == ["slow"]
    status, answer = await _post(client, bodies[1])
    assert status == 200 and decode_patch(answer["response"])


async def test_serve_keeps_what_was_loaded_out_of_the_collectors_walks() -> None:
    """After ``tune_gc`` the collector no longer tracks the objects loaded at start-up (it
    walked them all at every full collection while a large body was parsed), and its
    thresholds are the default ones (collecting less often let garbage cycles holding the
    read buffers of closed connections pile up)."""
    thresholds = gc.get_threshold()
    gc.collect()
    tracked = len(gc.get_objects())
    try:
        tune_gc()
        assert gc.get_freeze_count() >= tracked * 0.9
        assert len(gc.get_objects()) < tracked * 0.1
        assert gc.get_threshold() == thresholds
    finally:
        gc.unfreeze()
