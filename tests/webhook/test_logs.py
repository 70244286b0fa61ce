"""The JSON log lines: one line per review with its fields, written in batches by the handler
``configure_logging`` installs, yet never late (the flush interval), never out of order with
the other records, and never lost when the handler is flushed or closed."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hardener.engine import plan
from hardener.webhook import JsonFormatter, JsonLineHandler, configure_logging, create_app
from hardener.webhook._logs import log_event, log_review
from tests.webhook.conftest import admission_review
from tests.webhook.test_review import POD

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

HEADERS = {"Content-Type": "application/json"}
REVIEW_FIELDS = [
    "time",
    "level",
    "logger",
    "event",
    "uid",
    "kind",
    "namespace",
    "name",
    "operation",
    "subresource",
    "outcome",
    "rules",
    "ops",
    "violations",
    "image_fallbacks",
    "latency_ms",
]


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def _post(client: Client, doc: Any) -> None:
    async with client.post("/mutate", data=json.dumps(doc), headers=HEADERS) as resp:
        assert resp.status == 200
        await resp.read()


async def _written(stream: io.StringIO, count: int) -> list[dict[str, Any]]:
    """The lines of ``stream`` once it holds ``count`` of them (nothing else flushes it)."""
    async with asyncio.timeout(10):
        while len(stream.getvalue().splitlines()) < count:
            await asyncio.sleep(0.01)
    return _lines(stream)


@pytest.mark.asyncio
@pytest.mark.usefixtures("restore_logging")
async def test_review_lines_reach_the_stream_on_their_own(aiohttp_client: MakeClient) -> None:
    stream = io.StringIO()
    handler = configure_logging(stream)
    assert isinstance(handler, JsonLineHandler)
    client = await aiohttp_client(create_app())
    docs = [admission_review(copy.deepcopy(POD), namespace="shop") for _ in range(3)]
    for doc in docs:
        await _post(client, doc)
    # No other record and no explicit flush: the handler's timer writes the batch.
    lines = await _written(stream, 3)
    assert [line["uid"] for line in lines] == [doc["request"]["uid"] for doc in docs]
    for line in lines:
        assert list(line) == REVIEW_FIELDS
        assert line["level"] == "info"
        assert line["logger"] == "hardener.webhook"
        assert line["event"] == "review"
        assert (line["kind"], line["namespace"], line["name"]) == ("Pod", "shop", "web-7d9f8c6b5d-")
        assert line["operation"] == "CREATE"
        assert line["subresource"] is None
        assert line["outcome"] == "patched"
        assert line["rules"] == list(dict.fromkeys(c.rule for c in plan(POD).changes))
        assert line["ops"] == len(plan(POD).ops)
        # The images' users are not known: runAsNonRoot is left out (images.unknown: keep).
        assert line["violations"] == ["runAsNonRoot"]
        assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
        assert line["time"].endswith("Z") and len(line["time"]) == len("2024-05-01T10:00:00.123Z")


@pytest.mark.asyncio
@pytest.mark.usefixtures("restore_logging")
async def test_other_records_keep_their_place_after_queued_review_lines(
    aiohttp_client: MakeClient,
) -> None:
    stream = io.StringIO()
    configure_logging(stream)
    client = await aiohttp_client(create_app())
    doc = admission_review(copy.deepcopy(POD))
    await _post(client, doc)
    log_event(logging.getLogger("hardener.webhook"), logging.WARNING, "after", n=1)
    # Written at once, review line first: nothing waits for the timer.
    assert [(line["event"], line.get("uid")) for line in _lines(stream)] == [
        ("review", doc["request"]["uid"]),
        ("after", None),
    ]
    assert _lines(stream)[1] == {**_lines(stream)[1], "level": "warning", "n": 1}


@pytest.mark.usefixtures("restore_logging")
def test_queued_lines_are_written_on_flush_and_close() -> None:
    stream = io.StringIO()
    handler = configure_logging(stream)

    async def queue(uid: str) -> None:
        log_review({"uid": uid})

    with asyncio.Runner() as runner:
        runner.run(queue("a"))
        handler.flush()
        assert [line["uid"] for line in _lines(stream)] == ["a"]
        runner.run(queue("b"))
        # A new configure_logging (or the process exiting, through logging.shutdown) does
        # not lose what the old handler still holds.
        replaced = io.StringIO()
        configure_logging(replaced).close()
    assert [line["uid"] for line in _lines(stream)] == ["a", "b"]
    assert replaced.getvalue() == ""


@pytest.mark.usefixtures("restore_logging")
def test_without_an_event_loop_a_review_line_is_written_at_once() -> None:
    stream = io.StringIO()
    configure_logging(stream)
    log_review({"uid": "u", "rules": ("a", "b"), "latency_ms": 0.5, "name": "wé☃"})
    [line] = _lines(stream)
    assert line == {**line, "uid": "u", "rules": ["a", "b"], "latency_ms": 0.5, "name": "wé☃"}
    assert "wé☃" in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_review_lines_go_through_logging_when_others_listen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    configure_logging(stream)
    # Someone else wants the webhook's records too: the line becomes an ordinary record.
    logging.getLogger("hardener").propagate = True
    with caplog.at_level(logging.INFO, logger="hardener.webhook"):
        log_review({"uid": "u", "outcome": "skipped"})
    [record] = [r for r in caplog.records if r.getMessage() == "review"]
    assert json.loads(JsonFormatter().format(record))["uid"] == "u"
    assert _lines(stream)[0]["uid"] == "u"

    # A filter on the handler is honoured the same way.
    logging.getLogger("hardener").propagate = False
    handler = logging.getLogger("hardener").handlers[0]
    handler.addFilter(lambda record: record.getMessage() != "review")
    log_review({"uid": "filtered"})
    handler.flush()
    assert [line["uid"] for line in _lines(stream)] == ["u"]

    # Below INFO nothing is rendered at all.
    logging.getLogger("hardener").setLevel(logging.WARNING)
    handler.filters.clear()
    log_review({"uid": "quiet"})
    handler.flush()
    assert [line["uid"] for line in _lines(stream)] == ["u"]


def _body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.asyncio
@pytest.mark.usefixtures("restore_logging")
async def test_echoed_values_and_log_fields_are_clipped(aiohttp_client: MakeClient) -> None:
    """A request carrying a 2 MB string gets an answer and a log line of a few hundred bytes,
    not 2 MB ones: nothing the caller sent is echoed whole."""
    stream = io.StringIO()
    handler = configure_logging(stream)
    client = await aiohttp_client(create_app())
    huge = "A" * (2 * 1024 * 1024)
    bad = admission_review(copy.deepcopy(POD))
    bad["apiVersion"] = huge
    async with client.post("/mutate", data=io.BytesIO(_body(bad)), headers=HEADERS) as resp:
        assert resp.status == 400
        assert len(await resp.read()) < 1024
    long_uid = admission_review(copy.deepcopy(POD), uid=huge)
    async with client.post("/mutate", data=io.BytesIO(_body(long_uid)), headers=HEADERS) as resp:
        assert resp.status == 400
        assert len(await resp.read()) < 1024
    pod = copy.deepcopy(POD)
    pod["metadata"]["generateName"] = huge
    named = admission_review(pod, namespace="shop")
    named["request"]["kind"]["kind"] = "Pod"
    async with client.post("/mutate", data=io.BytesIO(_body(named)), headers=HEADERS) as resp:
        assert resp.status == 200
        response = (await resp.json())["response"]
        assert len(json.dumps(response)) < 16 * 1024
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert all(len(line) < 4096 for line in lines), [len(line) for line in lines]
    assert json.loads(lines[-1])["name"].endswith("...")


@pytest.mark.asyncio
@pytest.mark.usefixtures("restore_logging")
async def test_framing_errors_are_one_warning_line_without_the_bytes(
    aiohttp_client: MakeClient,
) -> None:
    """aiohttp logs a request it cannot parse at ERROR with a traceback quoting the bytes
    received; the client's garbage is a WARNING of one line, without them."""
    stream = io.StringIO()
    handler = configure_logging(stream)
    client = await aiohttp_client(create_app())
    body = json.dumps(admission_review(copy.deepcopy(POD))).encode()
    requests = [
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 1" + b"B" * 3000 + b"\r\n\r\n",
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nX-Bad\x01: " + b"C" * 3000 + b"\r\n\r\n",
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: " + str(len(body) + 4).encode() + b"\r\n\r\n"
        b"\x1f\x8b\x08\x00" + body,
    ]
    for raw in requests:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.read(65536), 10)
        assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.1)
    handler.flush()
    lines = _lines(stream)
    assert lines
    for line in lines:
        assert line["level"] == "warning", line
        assert "exception" not in line, line
        text = json.dumps(line)
        assert "BBBB" not in text and "CCCC" not in text, line
        assert len(text) < 1024
    framing = [line for line in lines if line["logger"] == "aiohttp.server"]
    assert framing and all(line["event"] == "bad HTTP request" for line in framing)
    assert any(
        "could not be read" in line.get("error", "") and "gzip" in line["error"] for line in lines
    ), lines
