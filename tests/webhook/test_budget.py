"""The body budget (``webhook.max-bytes-in-flight``): the large bodies held at once are
bounded, first come first served, abandoned work included; a body with no room by the
deadline is answered 429 unread, and small reviews never wait for room."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import hardener.webhook._review as review_module
from hardener.certs import make_bundle, write_bundle
from hardener.config import parse_config
from hardener.webhook import OFFLOAD_BYTES, STATE_KEY, create_app
from hardener.webhook._budget import BodyBudget
from tests.webhook.conftest import admission_review, decode_patch
from tests.webhook.test_handler import MakeClient, _metrics_text, _post, _samples
from tests.webhook.test_review import POD
from tests.webhook.test_tls import Server as TlsServer

pytestmark = pytest.mark.asyncio


def _later(seconds: float) -> float:
    return time.monotonic() + seconds


async def test_leases_are_granted_while_they_fit_and_given_back_with_the_last_holder() -> None:
    budget = BodyBudget(100)
    first = await budget.take(60, _later(1))
    second = await budget.take(40, _later(1))
    assert first is not None and second is not None
    assert budget.held == 100
    first.keep()  # a worker thread goes on with the body after the handler
    first.release()
    assert budget.held == 100
    first.release()
    assert budget.held == 40
    second.release()
    assert budget.held == 0


async def test_a_body_larger_than_the_budget_gets_in_when_nothing_else_is_held() -> None:
    budget = BodyBudget(100)
    alone = await budget.take(500, _later(1))
    assert alone is not None and budget.held == 500
    assert await budget.take(1, _later(0.05)) is None
    alone.release()
    assert budget.held == 0


async def test_waiters_get_in_first_come_first_served_as_room_is_given_back() -> None:
    budget = BodyBudget(100)
    held = await budget.take(100, _later(1))
    assert held is not None
    order: list[str] = []

    async def wait(name: str, size: int) -> None:
        lease = await budget.take(size, _later(5))
        assert lease is not None
        order.append(name)

    big = asyncio.ensure_future(wait("big", 80))
    await asyncio.sleep(0)
    small = asyncio.ensure_future(wait("small", 10))
    await asyncio.sleep(0.05)
    # The small one would fit after the big one, never before it: no overtaking.
    assert order == [] and budget.held == 100
    held.release()
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.held == 90


async def test_a_waiter_that_times_out_leaves_the_queue_and_lets_the_next_in() -> None:
    budget = BodyBudget(100)
    held = await budget.take(50, _later(1))
    assert held is not None
    # 80 does not fit beside 50; it waits at the head and gives up at its deadline.
    timed_out = asyncio.ensure_future(budget.take(80, _later(0.1)))
    await asyncio.sleep(0)
    behind = asyncio.ensure_future(budget.take(30, _later(5)))
    assert await timed_out is None
    lease = await asyncio.wait_for(behind, 1)
    assert lease is not None and budget.held == 80
    cancelled = asyncio.ensure_future(budget.take(100, _later(5)))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    held.release()
    lease.release()
    assert budget.held == 0


def _big_review(annotation_bytes: int) -> bytes:
    pod = copy.deepcopy(POD)
    pod["metadata"]["annotations"] = {"example.com/blob": "x" * annotation_bytes}
    return json.dumps(admission_review(pod)).encode()


async def _send_headers(client: Any, body: bytes) -> tuple[asyncio.StreamWriter, Any]:
    """Send a large review's headers and first bytes, and hold the rest back."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /mutate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:100]
    )
    await writer.drain()
    return writer, reader


async def test_a_large_body_with_no_room_by_the_deadline_is_a_429_and_small_ones_pass(
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large review is answered at the deadline, but its worker thread still holds the
    parsed body: its bytes stay counted until the thread is done. A second large body waits
    for room meanwhile and at its deadline gets a 429 that says why, unread; a small review
    is served at once; once the thread is done the room is back."""
    real_plan = review_module.plan
    slow = True

    def slow_plan(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if slow and "example.com/blob" in obj["metadata"].get("annotations", {}):
            time.sleep(1.5)
        return real_plan(obj, *args, **kwargs)

    monkeypatch.setattr(review_module, "plan", slow_plan)
    body = _big_review(OFFLOAD_BYTES * 4)
    config = parse_config(
        {"webhook": {"deadline-seconds": 0.5, "max-bytes-in-flight": len(body) + 100}}
    )
    app = create_app(config)
    client = await aiohttp_client(app)
    budget = app[STATE_KEY].budget
    status, answer = await _post(client, body)
    assert status == 200
    assert answer["response"]["auditAnnotations"] == {"outcome": "deadline"}
    assert budget.held == len(body)

    started = time.monotonic()
    second = asyncio.ensure_future(_post(client, body))
    status, answer = await _post(client, admission_review(copy.deepcopy(POD)))
    assert status == 200 and decode_patch(answer["response"])
    status, error = await second
    assert status == 429, error
    assert "no room for this body within the 0.5s deadline" in error["error"]
    assert "webhook.max-bytes-in-flight" in error["error"]
    assert time.monotonic() - started >= 0.45
    counted = _samples(await _metrics_text(app))
    assert counted[("hardener_webhook_requests_total", (("outcome", "busy"),))] == 1

    for _ in range(300):
        if not budget.held:
            break
        await asyncio.sleep(0.01)
    assert budget.held == 0
    slow = False
    status, answer = await _post(client, body)
    assert status == 200 and decode_patch(answer["response"])
    assert budget.held == 0


async def test_a_body_waiting_for_room_gets_in_when_the_room_is_given_back(
    aiohttp_client: MakeClient,
) -> None:
    body = _big_review(OFFLOAD_BYTES * 4)
    config = parse_config(
        {"webhook": {"deadline-seconds": 3.0, "max-bytes-in-flight": len(body) + 100}}
    )
    app = create_app(config)
    client = await aiohttp_client(app)
    writer, reader = await _send_headers(client, body)
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(_post(client, body))
    await asyncio.sleep(0.2)
    assert not second.done()
    writer.write(body[100:])
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    status, answer = await asyncio.wait_for(second, 10)
    assert status == 200 and decode_patch(answer["response"])
    writer.close()
    await writer.wait_closed()


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    """The webhook over TLS on a port of its own (default config)."""
    bundle = make_bundle(["localhost"], ["127.0.0.1"])
    write_bundle(bundle, tmp_path)
    running = TlsServer(tmp_path, bundle)
    await running.start()
    yield running
    assert running.runner is not None
    await running.runner.cleanup()


async def test_a_client_closing_mid_body_over_tls_is_a_bad_request_not_an_error(
    server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Half a large body over TLS, then the connection closed: aiohttp's read raises
    ConnectionResetError, which once escaped the handler (an ERROR with a traceback, and a
    500 written to nobody). Now it is a bad request like any unreadable body, and the room
    in the budget is back at once."""
    assert server.runner is not None
    app = server.runner.app
    budget = app[STATE_KEY].budget
    body = _big_review(OFFLOAD_BYTES * 4)
    caplog.set_level(logging.INFO)
    context = ssl.create_default_context(cadata=server.bundle.ca_cert.decode())
    for _ in range(3):
        _, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname="localhost"
        )
        writer.write(
            b"POST /mutate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        await writer.drain()
        for _ in range(100):
            if budget.held:
                break
            await asyncio.sleep(0.01)
        writer.transport.abort()
    for _ in range(300):
        if not budget.held:
            break
        await asyncio.sleep(0.01)
    assert budget.held == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    for _ in range(100):
        counted = _samples(await _metrics_text(app))
        if counted[("hardener_webhook_requests_total", (("outcome", "bad_request"),))] == 3:
            break
        await asyncio.sleep(0.01)
    assert counted[("hardener_webhook_requests_total", (("outcome", "bad_request"),))] == 3
