"""The aiohttp app through the real ``aiohttp_client`` fixture: answers, bad input, probes,
metrics, logs, the deadline and the worker-thread path."""

from __future__ import annotations

import asyncio
import copy
import gc
import io
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

import hardener.webhook._app as app_module
import hardener.webhook._review as review_module
from hardener.certs import make_bundle, write_bundle
from hardener.config import parse_config
from hardener.engine import plan
from hardener.webhook import (
    METRICS_KEY,
    OFFLOAD_BYTES,
    OFFLOAD_CONTAINERS,
    CertReloader,
    JsonFormatter,
    create_app,
    create_metrics_app,
)
from tests.webhook.conftest import admission_review, decode_patch
from tests.webhook.test_review import POD

pytestmark = pytest.mark.asyncio

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


async def _post(client: Client, doc: Any) -> tuple[int, Any]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    # aiohttp's client warns of a large body given as bytes: it copies it on its event loop.
    data = io.BytesIO(body) if len(body) > 1024 * 1024 else body
    async with client.post("/mutate", data=data, headers=HEADERS) as resp:
        return resp.status, await resp.json(content_type=None)


async def _start_slow_post(
    client: Client,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Open a connection and send a review's headers and the first 100 bytes of its body;
    returns the rest of the body too."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    body = json.dumps(admission_review(copy.deepcopy(POD))).encode()
    writer.write(
        b"POST /mutate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:100]
    )
    await writer.drain()
    return reader, writer, body[100:]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_valid_review_gets_the_engine_patch(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(create_app())
    doc = admission_review(copy.deepcopy(POD), namespace="shop")
    status, answer = await _post(client, doc)
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == doc["request"]["uid"]
    assert response["allowed"] is True
    ops = decode_patch(response)
    assert jsonpatch.apply_patch(POD, ops) == jsonpatch.apply_patch(POD, plan(POD).ops)


def _bad_cases(pod: dict[str, Any]) -> list[tuple[str, bytes, dict[str, str], str]]:
    valid = admission_review(copy.deepcopy(pod))

    def changed(**fields: Any) -> bytes:
        doc = copy.deepcopy(valid)
        for key, value in fields.items():
            if value is None:
                del doc[key]
            else:
                doc[key] = value
        return json.dumps(doc).encode()

    def request_changed(**fields: Any) -> bytes:
        doc = copy.deepcopy(valid)
        for key, value in fields.items():
            if value is None:
                del doc["request"][key]
            else:
                doc["request"][key] = value
        return json.dumps(doc).encode()

    good = json.dumps(valid).encode()
    return [
        ("non-JSON", b"<AdmissionReview/>", HEADERS, "not valid JSON"),
        ("NaN", good.replace(b'"dryRun": false', b'"dryRun": NaN'), HEADERS, "NaN is not valid"),
        (
            "lone surrogate",
            good.replace(b'"name": "web"', b'"name": "web\\udfff"'),
            HEADERS,
            "surrogate",
        ),
        ("invalid UTF-8", good.replace(b'"web"', b'"w\xffb"'), HEADERS, "not UTF-8 at byte"),
        ("too deep", b"[" * 2000 + b"]" * 2000, HEADERS, "nested too deeply"),
        ("an array", b"[]", HEADERS, "must be a JSON object"),
        ("wrong apiVersion", changed(apiVersion="admission.k8s.io/v1beta1"), HEADERS, "apiVersion"),
        ("wrong kind", changed(kind="Pod"), HEADERS, "kind: must be 'AdmissionReview'"),
        ("missing request", changed(request=None), HEADERS, "request: is required"),
        ("missing uid", request_changed(uid=None), HEADERS, "request.uid: is required"),
        (
            "apiVersion nested 1000 deep",
            good.replace(b'"admission.k8s.io/v1"', DEEP, 1),
            HEADERS,
            "apiVersion: must be 'admission.k8s.io/v1', got an array of 1 item",
        ),
        (
            "kind nested 1000 deep",
            good.replace(b'"AdmissionReview"', DEEP_OBJECT, 1),
            HEADERS,
            "kind: must be 'AdmissionReview', got an object of 1 key",
        ),
        (
            "uid nested 1000 deep",
            good.replace(json.dumps(valid["request"]["uid"]).encode(), DEEP, 1),
            HEADERS,
            "request.uid: must be a non-empty string, not an array of 1 item",
        ),
        ("uid too long", request_changed(uid="u" * 300), HEADERS, "request.uid: is 300 char"),
        (
            "corrupt gzip",
            b"\x1f\x8b\x08\x00" + good[:64],
            {**HEADERS, "Content-Encoding": "gzip"},
            "the body could not be read",
        ),
        ("wrong content type", good, {"Content-Type": "text/plain"}, "Content-Type"),
        ("no content type", good, {}, "Content-Type"),
        ("over the limit", good + b" " * 8192, HEADERS, "over the limit"),
    ]


DEEP = b"[" * 1000 + b'"x"' + b"]" * 1000
"""A value nested 1000 deep: under orjson's limit of 1024, over what ``repr`` survives."""
DEEP_OBJECT = b'{"":' * 1000 + b'"x"' + b"}" * 1000


def _unhardenable_cases(pod: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """Well-formed reviews whose object hardener cannot harden: (name, body, needle)."""

    def with_object(obj: Any, *, deep: bytes | None = None) -> bytes:
        body = json.dumps(admission_review(obj, kind="Pod")).encode()
        return body if deep is None else body.replace(b'"DEEP"', deep)

    def pod_with(**spec: Any) -> dict[str, Any]:
        return {**copy.deepcopy(pod), "spec": spec}

    container = {"name": "web", "image": "registry.example.com/web:1"}
    return [
        (
            "only ephemeral containers",
            with_object(pod_with(ephemeralContainers=[{**container, "name": "debug"}])),
            "request.object/spec/containers: must be an array of containers, not null",
        ),
        (
            "pod spec without containers",
            with_object(pod_with(volumes=[])),
            "request.object/spec/containers: must be an array of containers",
        ),
        (
            "containers is a string",
            with_object(pod_with(containers="web")),
            "request.object/spec/containers: must be an array",
        ),
        (
            "securityContext is an array",
            with_object(pod_with(containers=[{**container, "securityContext": []}])),
            "request.object/spec/containers/0/securityContext: must be an object",
        ),
        ("object is a string", with_object("pod"), "request.object: must be the Pod object"),
        (
            "object.kind nested 1000 deep",
            with_object({**copy.deepcopy(pod), "kind": "DEEP"}, deep=DEEP),
            'request.object.kind: is an array of 1 item but request.kind.kind is "Pod"',
        ),
    ]


async def test_an_object_that_cannot_be_hardened_is_admitted_unchanged_with_a_warning(
    aiohttp_client: MakeClient,
) -> None:
    """A valid envelope whose object hardener cannot harden: allowed, no patch, a warning
    that says what was left alone and why, ``outcome: not-hardened`` (never a 400, which the
    API server turns into an opaque error that hides its own validation message)."""
    app = create_app()
    client = await aiohttp_client(app)
    cases = _unhardenable_cases(POD)
    for name, body, needle in cases:
        async with client.post("/mutate", data=body, headers=HEADERS) as resp:
            assert resp.status == 200, name
            response = (await resp.json())["response"]
        assert response["allowed"] is True, name
        assert "patch" not in response and "patchType" not in response, name
        assert response["auditAnnotations"] == {"outcome": "not-hardened"}, name
        (warning,) = response["warnings"]
        assert warning.startswith("hardener: Pod not hardened, admitted unchanged: "), name
        assert needle in warning, (name, warning)
    counted = _samples(await _metrics_text(app))
    assert counted[("hardener_webhook_requests_total", (("outcome", "not-hardened"),))] == len(
        cases
    )
    assert counted[("hardener_webhook_requests_total", (("outcome", "bad_request"),))] == 0
    assert counted[("hardener_webhook_requests_total", (("outcome", "error"),))] == 0


async def test_bad_input_gets_a_400_that_says_why_and_the_server_stays_healthy(
    aiohttp_client: MakeClient,
) -> None:
    config = parse_config({"webhook": {"max-body-bytes": 8192}})
    app = create_app(config)
    client = await aiohttp_client(app)
    cases = _bad_cases(POD)
    for name, body, headers, needle in cases:
        async with client.post("/mutate", data=body, headers=headers) as resp:
            assert resp.status == 400, name
            assert resp.content_type == "application/json", name
            error = await resp.json()
            assert needle in error["error"], (name, error)
            assert set(error) == {"error", "field"}

    # A body over the limit sent without Content-Length (chunked) is refused the same way.
    async def chunks() -> Any:
        for _ in range(16):
            yield b" " * 1024

    async with client.post("/mutate", data=chunks(), headers=HEADERS) as resp:
        assert resp.status == 400
        assert "over the limit" in (await resp.json())["error"]
    status, answer = await _post(client, admission_review(copy.deepcopy(POD)))
    assert status == 200
    assert decode_patch(answer["response"])
    counted = _samples(await _metrics_text(app))
    assert (
        counted[("hardener_webhook_requests_total", (("outcome", "bad_request"),))]
        == len(cases) + 1
    )
    assert counted[("hardener_webhook_requests_total", (("outcome", "patched"),))] == 1


async def _metrics_text(app: web.Application) -> str:
    from prometheus_client import generate_latest

    return generate_latest(app[METRICS_KEY].registry).decode()


async def test_an_unexpected_failure_admits_unchanged_never_500(
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(review_module, "plan", broken)
    client = await aiohttp_client(create_app())
    doc = admission_review(copy.deepcopy(POD))
    with caplog.at_level(logging.ERROR, logger="hardener.webhook"):
        status, answer = await _post(client, doc)
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is True
    assert response["uid"] == doc["request"]["uid"]
    assert "patch" not in response
    assert "internal error" in response["warnings"][0]
    assert any("engine bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_probes(aiohttp_client: MakeClient, tmp_path: Path) -> None:
    write_bundle(make_bundle(["localhost"]), tmp_path)
    tls = CertReloader(tmp_path / "tls.crt", tmp_path / "tls.key")
    client = await aiohttp_client(create_app(tls=tls))
    async with client.get("/healthz") as resp:
        assert resp.status == 200
    async with client.get("/readyz") as resp:
        assert resp.status == 503
        assert "certificate" in (await resp.json())["reason"]
    tls.load()
    async with client.get("/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json()) == {"status": "ready"}


async def test_metrics_port_app(aiohttp_client: MakeClient) -> None:
    app = create_app()
    client = await aiohttp_client(app)
    metrics_client = await aiohttp_client(create_metrics_app(app))
    # A second app in the same process has metrics of its own.
    other = await aiohttp_client(create_app())
    await _post(client, admission_review(copy.deepcopy(POD)))
    hardened = jsonpatch.apply_patch(POD, plan(POD).ops)
    await _post(client, admission_review(hardened))
    await _post(
        client,
        admission_review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    )
    await _post(other, admission_review(copy.deepcopy(POD)))
    async with metrics_client.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    found = _samples(text)

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("hardener_webhook_requests_total", outcome="patched") == 1
    assert value("hardener_webhook_requests_total", outcome="unchanged") == 1
    assert value("hardener_webhook_requests_total", outcome="skipped") == 1
    for rule in {c.rule for c in plan(POD).changes}:
        assert value("hardener_webhook_patches_total", rule=rule) == 1
    assert value("hardener_webhook_request_duration_seconds_count") == 3
    assert value("hardener_webhook_requests_in_flight") == 0
    async with metrics_client.get("/readyz") as resp:
        assert resp.status == 200


async def test_patches_by_rule_and_requests_in_flight_add_up_across_scrapes(
    aiohttp_client: MakeClient,
) -> None:
    app = create_app()
    client = await aiohttp_client(app)
    partly = copy.deepcopy(POD)
    partly["spec"]["securityContext"] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "Localhost"},
    }
    expected: dict[str, float] = {}
    for pod, times in ((POD, 2), (partly, 1), (POD, 1)):
        for _ in range(times):
            status, answer = await _post(client, admission_review(copy.deepcopy(pod)))
            assert status == 200 and decode_patch(answer["response"])
            for rule in dict.fromkeys(c.rule for c in plan(pod).changes):
                expected[rule] = expected.get(rule, 0) + 1
        # Every scrape sees the counts so far, and scraping does not count anything twice.
        for _ in range(2):
            found = _samples(await _metrics_text(app))
            counted = {
                labels[0][1]: value
                for (name, labels), value in found.items()
                if name == "hardener_webhook_patches_total" and value
            }
            assert counted == expected
    assert expected["seccomp-runtime-default"] == 3 and expected["drop-all-capabilities"] == 4
    assert all(
        ("hardener_webhook_patches_created", (("rule", rule),)) in found for rule in expected
    )

    # A request whose body is still arriving is in flight.
    reader, writer, rest = await _start_slow_post(client)
    in_flight = ("hardener_webhook_requests_in_flight", ())
    async with asyncio.timeout(10):
        while _samples(await _metrics_text(app))[in_flight] != 1:
            await asyncio.sleep(0.01)
    writer.write(rest)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()
    await writer.wait_closed()
    assert _samples(await _metrics_text(app))[in_flight] == 0


async def test_one_json_log_line_per_review(
    aiohttp_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(create_app())
    doc = admission_review(copy.deepcopy(POD), namespace="shop")
    with caplog.at_level(logging.INFO, logger="hardener.webhook"):
        await _post(client, doc)
    records = [r for r in caplog.records if r.getMessage() == "review"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["event"] == "review"
    assert line["level"] == "info"
    assert line["uid"] == doc["request"]["uid"]
    assert line["kind"] == "Pod"
    assert line["namespace"] == "shop"
    assert line["name"] == "web-7d9f8c6b5d-"
    assert line["operation"] == "CREATE"
    assert line["outcome"] == "patched"
    assert line["rules"] == list(dict.fromkeys(c.rule for c in plan(POD).changes))
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert "\n" not in JsonFormatter().format(records[0])


async def test_deadline_admits_unchanged_with_a_warning(aiohttp_client: MakeClient) -> None:
    config = parse_config({"webhook": {"deadline-seconds": 1e-9}})
    client = await aiohttp_client(create_app(config))
    doc = admission_review(copy.deepcopy(POD))
    status, answer = await _post(client, doc)
    assert status == 200
    response = answer["response"]
    assert response["uid"] == doc["request"]["uid"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert "deadline" in response["warnings"][0]


def _big_pod() -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    pod["metadata"]["annotations"] = {"example.com/blob": "x" * (OFFLOAD_BYTES + 1024)}
    return pod


async def test_big_bodies_are_hardened_in_a_worker_thread(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(create_app())
    pod = _big_pod()
    status, answer = await _post(client, admission_review(copy.deepcopy(pod)))
    assert status == 200
    assert jsonpatch.apply_patch(pod, decode_patch(answer["response"])) == jsonpatch.apply_patch(
        pod, plan(pod).ops
    )


async def test_a_slow_big_review_is_answered_at_the_deadline(
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_plan = review_module.plan

    def slow_plan(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(review_module, "plan", slow_plan)
    config = parse_config({"webhook": {"deadline-seconds": 0.3}})
    client = await aiohttp_client(create_app(config))
    doc = admission_review(_big_pod())
    status, answer = await _post(client, doc)
    assert status == 200
    assert answer["response"]["uid"] == doc["request"]["uid"]
    assert "patch" not in answer["response"]
    assert "deadline" in answer["response"]["warnings"][0]
    # The event loop was never blocked: health answers while the worker is still busy.
    async with client.get("/healthz") as resp:
        assert resp.status == 200


async def test_a_body_that_does_not_arrive_in_time_is_a_400(aiohttp_client: MakeClient) -> None:
    config = parse_config({"webhook": {"deadline-seconds": 0.2}})
    client = await aiohttp_client(create_app(config))
    reader, writer, _ = await _start_slow_post(client)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 400")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    error = json.loads(await reader.readexactly(length))
    assert "did not arrive within the 0.2s deadline" in error["error"]
    writer.close()
    await writer.wait_closed()
    status, answer = await _post(client, admission_review(copy.deepcopy(POD)))
    assert status == 200 and decode_patch(answer["response"])


def _pod_of(containers: int, *, annotation_bytes: int = 0) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"] = [{"name": f"c{i}", "image": "i"} for i in range(containers)]
    if annotation_bytes:
        pod["metadata"]["annotations"] = {"example.com/blob": "x" * annotation_bytes}
    return pod


async def _latencies(clients: list[Client], until: asyncio.Future[Any]) -> list[float]:
    """GET /healthz on each client, one after the other, until ``until`` is done."""
    seen: list[float] = []
    while not until.done():
        for probe in clients:
            started = time.monotonic()
            async with probe.get("/healthz") as resp:
                assert resp.status == 200
            seen.append(time.monotonic() - started)
        await asyncio.sleep(0.01)
    return seen


async def test_a_review_of_many_small_containers_never_stalls_the_event_loop(
    aiohttp_client: MakeClient,
) -> None:
    """7,800 tiny containers (a body under the old 256 KB offload threshold, once hardened on
    the event loop for seconds): the probes on both ports answer within 100 ms throughout, and
    the review gets its answer at the deadline."""
    # The deadline leaves room for the body to arrive and be decoded on a loaded machine
    # (a slower arrival is a 400); hardening 7,800 containers takes well over a second.
    config = parse_config({"webhook": {"deadline-seconds": 0.6, "max-containers": 10000}})
    app = create_app(config)
    client = await aiohttp_client(app)
    metrics_client = await aiohttp_client(create_metrics_app(app))
    body = json.dumps(admission_review(_pod_of(7800))).encode()
    assert len(body) < 256 * 1024
    started = time.monotonic()
    posted = asyncio.ensure_future(_post(client, body))
    latencies = await _latencies([client, metrics_client], posted)
    status, answer = await posted
    took = time.monotonic() - started
    assert status == 200
    assert answer["response"]["auditAnnotations"] == {"outcome": "deadline"}
    assert took < 0.6 + 0.4, took
    assert len(latencies) >= 4
    # The probes share the server's loop: hardening on it would hold one probe for the whole
    # work (over the 0.6 s deadline), and a loop starved by the worker thread would delay many
    # probes. A busy machine may deschedule the whole process once, which delays one probe by a
    # few hundred milliseconds and is neither.
    assert sorted(latencies)[-2] < 0.1, sorted(latencies)[-3:]
    assert max(latencies) < 0.5, sorted(latencies)[-3:]


async def _lags(until: asyncio.Future[Any], step: float = 0.005) -> list[float]:
    """How late the event loop wakes from each ``step``-second sleep until ``until`` is done:
    a stall shows here even when it falls between two probes."""
    seen: list[float] = []
    while not until.done():
        started = time.monotonic()
        await asyncio.sleep(step)
        seen.append(time.monotonic() - started - step)
    return seen


@pytest.mark.parametrize("filler", ["lists", "objects", "numbers"])
async def test_a_body_of_a_million_tiny_values_never_stalls_the_event_loop(
    aiohttp_client: MakeClient, filler: str, request: pytest.FixtureRequest
) -> None:
    """A body at the size limit made of tiny JSON values, the costliest to parse (each one an
    object the parser makes while it holds the GIL): the event loop never waits 100 ms, the
    probes answer throughout, and the review is admitted unchanged, over the limit on values,
    without the server parsing it (a worker process does)."""
    app = create_app()
    client = await aiohttp_client(app)
    limit = 3 * 1024 * 1024
    item = {"lists": [0], "objects": {"a": 0}, "numbers": 0}[filler]
    pod = _pod_of(1)
    one = len(json.dumps(item, separators=(",", ":"))) + 1
    base = len(json.dumps(admission_review(pod), separators=(",", ":")))
    pod["spec"]["containers"][0]["args"] = [item] * ((limit - base - 200) // one)
    body = json.dumps(admission_review(pod), separators=(",", ":")).encode()
    assert limit - 4096 < len(body) <= limit
    parsed: list[int] = []
    real_loads = review_module.orjson.loads

    def loads(data: bytes) -> Any:
        parsed.append(len(data))
        return real_loads(data)

    # serve freezes its start-up heap out of the collector's passes (_server.py): freeze what
    # this process holds so far too (the earlier tests' objects), or a full pass over it, due
    # at any time, holds the GIL for as long as it takes here, which serve never pays.
    gc.freeze()
    request.addfinalizer(gc.unfreeze)
    for attempt in range(2):  # the first starts the worker process; the second reuses it
        review_module.orjson.loads = loads  # type: ignore[assignment]
        try:
            posted = asyncio.ensure_future(_post(client, body))
            lags, latencies = await asyncio.gather(_lags(posted), _latencies([client], posted))
            status, answer = await posted
        finally:
            review_module.orjson.loads = real_loads  # type: ignore[assignment]
        assert status == 200
        assert answer["response"]["auditAnnotations"] == {"outcome": "not-hardened"}
        assert "JSON values" in answer["response"]["warnings"][0]
        assert parsed == [], "the server parsed the body itself"
        assert len(latencies) >= 2 and len(lags) >= 4
        # As above: one wake-up may be late by the machine descheduling the whole process.
        assert sorted(lags)[-2] < 0.1, (attempt, sorted(lags)[-3:])
        assert sorted(latencies)[-2] < 0.1, (attempt, sorted(latencies)[-3:])
        assert max(lags + latencies) < 0.5, sorted(lags + latencies)[-3:]


async def test_a_body_of_many_commas_in_strings_is_hardened_after_all(
    aiohttp_client: MakeClient,
) -> None:
    """Commas inside strings make a body look like one of many values: the worker process
    finds the object within the limits, and the server hardens it as any other."""
    client = await aiohttp_client(create_app())
    pod = _pod_of(2)
    pod["metadata"]["annotations"] = {"example.com/csv": "," * 150_000}
    status, answer = await _post(client, admission_review(copy.deepcopy(pod)))
    assert status == 200
    response = answer["response"]
    assert response["auditAnnotations"]["outcome"] == "patched"
    assert jsonpatch.apply_patch(pod, decode_patch(response)) == plan(pod).hardened


async def test_a_malformed_envelope_decoded_by_the_worker_is_a_400_that_says_why(
    aiohttp_client: MakeClient,
) -> None:
    """The worker process's verdict on the envelope reaches the answer whole: its field and
    its words."""
    client = await aiohttp_client(create_app())
    doc = admission_review(_pod_of(1))
    doc["apiVersion"] = "admission.k8s.io/v1beta1"
    doc["request"]["object"]["spec"]["containers"][0]["args"] = [0] * 150_000
    status, answer = await _post(client, json.dumps(doc, separators=(",", ":")).encode())
    assert status == 400
    assert answer["field"] == "apiVersion"
    assert "admissionReviewVersions: [v1]" in answer["error"]


async def test_reviews_of_more_than_a_few_containers_are_hardened_off_the_event_loop(
    aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offloading is decided by the work, not only by the bytes: a small body with more
    than ``OFFLOAD_CONTAINERS`` containers goes to a worker thread too."""
    threads: list[str] = []
    real_finish = app_module.finish_review

    def finish(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(app_module, "finish_review", finish)
    client = await aiohttp_client(create_app())
    for containers in (2, OFFLOAD_CONTAINERS + 1):
        body = json.dumps(admission_review(_pod_of(containers))).encode()
        assert len(body) <= OFFLOAD_BYTES
        status, answer = await _post(client, body)
        assert status == 200 and decode_patch(answer["response"])
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith("hardener-review")


async def test_reviews_over_the_limits_are_answered_at_once_and_never_delay_the_next(
    aiohttp_client: MakeClient,
) -> None:
    """Two reviews of 20,000 containers each (once hardened for many seconds in both worker
    threads, past the deadline, while the next review waited for a thread): with the default
    limits they are admitted unchanged at once, and a legitimate 270 KB review sent right
    after is hardened."""
    # A deadline with room for decoding three bodies at once on a loaded machine: what is
    # tested is that the limits answer before any hardening, not how fast JSON is decoded.
    config = parse_config({"webhook": {"deadline-seconds": 3.0}})
    client = await aiohttp_client(create_app(config))
    hostile = json.dumps(admission_review(_pod_of(20_000))).encode()
    legitimate_pod = _pod_of(2, annotation_bytes=270_000)
    legitimate = json.dumps(admission_review(copy.deepcopy(legitimate_pod))).encode()
    flood = [asyncio.ensure_future(_post(client, hostile)) for _ in range(2)]
    await asyncio.sleep(0.05)
    status, answer = await _post(client, legitimate)
    assert status == 200
    assert answer["response"].get("auditAnnotations", {}).get("outcome") == "patched"
    assert jsonpatch.apply_patch(
        legitimate_pod, decode_patch(answer["response"])
    ) == jsonpatch.apply_patch(legitimate_pod, plan(legitimate_pod).ops)
    for done in await asyncio.gather(*flood):
        status, answer = done
        assert status == 200
        response = answer["response"]
        assert response["auditAnnotations"] == {"outcome": "not-hardened"}
        assert "20000 containers, over the limit of 250" in response["warnings"][0]
