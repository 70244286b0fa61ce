"""The webhook learns each image's facts from a real registry (Debian's ``docker-registry`` on
loopback, see ``tests/images/conftest.py``) and hardens with them: a named user becomes its
uid from the image's ``/etc/passwd``, a numeric user keeps ``runAsNonRoot``; a registry that
accepts and never answers costs a review no more than its lookup budget, answers with the
fallback and a warning, and holds up no other review; every lookup is counted."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from hardener.config import Config, parse_config
from hardener.webhook import (
    LOOKUP_SHARE,
    METRICS_KEY,
    STATE_KEY,
    create_app,
    create_metrics_app,
)
from tests.images.conftest import Registries
from tests.webhook.conftest import admission_review, decode_patch

# These tests look images up in a loopback registry.
pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("images_online")]

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def pod(*images: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app"},
        "spec": {
            "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
        },
    }


def config_for(tmp_path: Path, *hosts: str, **images: Any) -> Config:
    block: dict[str, Any] = {
        "registries": {host: {"insecure": True} for host in hosts},
        "cache-dir": str(tmp_path / "cache"),
        **images,
    }
    deadline = block.pop("deadline", 3.0)
    return parse_config({"images": block, "webhook": {"deadline-seconds": deadline}})


async def post(client: Client, obj: dict[str, Any]) -> dict[str, Any]:
    async with client.post("/mutate", json=admission_review(obj)) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = (await resp.json())["response"]
        return answer


def container_context(ops: list[dict[str, Any]], index: int = 0) -> dict[str, Any]:
    for op in ops:
        if op["path"] == f"/spec/containers/{index}/securityContext":
            value: dict[str, Any] = op["value"]
            return value
    return {}


def pod_context(ops: list[dict[str, Any]]) -> dict[str, Any]:
    for op in ops:
        if op["path"] == "/spec/securityContext":
            value: dict[str, Any] = op["value"]
            return value
    return {}


def samples(app: web.Application) -> dict[str, float]:
    """Every sample of the app's metrics, by name and labels as the text format writes them."""
    found: dict[str, float] = {}
    for line in generate_latest(app[METRICS_KEY].registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def lookups(app: web.Application, outcome: str) -> float:
    return samples(app)[f'hardener_image_lookups_total{{outcome="{outcome}"}}']


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


async def test_a_named_user_becomes_its_uid_from_etc_passwd(
    aiohttp_client: MakeClient, registries: Registries, tmp_path: Path
) -> None:
    host = registries.anonymous.host
    app = create_app(config_for(tmp_path, host))
    client = await aiohttp_client(app)
    image = registries.images["named"]  # User "web"; /etc/passwd says web is uid 101
    answer = await post(client, pod(image))
    ops = decode_patch(answer)
    assert ops is not None
    assert container_context(ops)["runAsUser"] == 101
    assert pod_context(ops)["runAsNonRoot"] is True
    said = " ".join(answer["warnings"])
    assert 'runs as user "web", uid 101' in said
    assert "lookup failed" not in said
    assert lookups(app, "registry") == 1
    # The next review of the image is answered from the cache, with the same patch.
    again = await post(client, pod(image))
    assert decode_patch(again) == ops
    assert lookups(app, "cache") == 1
    found = samples(app)
    assert found['hardener_image_cache_hits_total{kind="facts"}'] >= 1
    assert found["hardener_image_lookup_duration_seconds_count"] == 2
    assert found['hardener_image_lookup_duration_seconds_bucket{le="+Inf"}'] == 2
    assert app[STATE_KEY].images is not None and app[STATE_KEY].images.requests > 0


async def test_a_numeric_user_keeps_run_as_non_root_and_its_volumes(
    aiohttp_client: MakeClient, registries: Registries, tmp_path: Path
) -> None:
    app = create_app(config_for(tmp_path, registries.anonymous.host))
    client = await aiohttp_client(app)
    answer = await post(client, pod(registries.images["numeric"]))  # User "1000"
    ops = decode_patch(answer)
    assert ops is not None
    assert pod_context(ops)["runAsNonRoot"] is True
    assert "runAsUser" not in container_context(ops) and "runAsUser" not in pod_context(ops)
    mounts = next(op["value"] for op in ops if op["path"] == "/spec/containers/0/volumeMounts")
    # The image's VOLUMEs stay writable under the read-only root filesystem.
    assert {"/data", "/cache"} <= {mount["mountPath"] for mount in mounts}
    assert lookups(app, "registry") == 1


async def test_a_root_image_is_kept_and_reported(
    aiohttp_client: MakeClient, registries: Registries, tmp_path: Path
) -> None:
    config = config_for(tmp_path, registries.anonymous.host, root="keep")
    client = await aiohttp_client(create_app(config))
    answer = await post(client, pod(registries.images["root"]))
    ops = decode_patch(answer) or []
    assert "runAsNonRoot" not in pod_context(ops)
    assert "runAsNonRoot" not in container_context(ops)
    assert any("runs as root" in w for w in answer["warnings"])


async def test_a_silent_registry_costs_the_budget_not_the_loop(
    aiohttp_client: MakeClient, registries: Registries, silent_registry: str, tmp_path: Path
) -> None:
    deadline = 1.5
    config = config_for(
        tmp_path,
        registries.anonymous.host,
        silent_registry,
        deadline=deadline,
        **{"timeout-seconds": 10.0},
    )
    app = create_app(config)
    client = await aiohttp_client(app)
    warm = registries.images["numeric"]
    await post(client, pod(warm))  # cached: answered from memory from now on
    silent = f"{silent_registry}/team/app:1"

    started = time.monotonic()
    stalled = asyncio.ensure_future(post(client, pod(silent, warm)))
    await asyncio.sleep(0.05)
    # Another review answers while the first waits on the silent registry.
    other = await post(client, pod(warm))
    other_done = time.monotonic()
    assert not stalled.done(), "the silent lookup must still be waiting"
    assert decode_patch(other) is not None
    answer = await stalled
    took = time.monotonic() - started
    assert other_done - started < deadline * LOOKUP_SHARE
    # The lookup's share of the deadline, then the engine: within the deadline (with room for
    # a loaded machine, the client's own time included).
    assert deadline * LOOKUP_SHARE <= took < deadline + 1.0
    assert answer["auditAnnotations"]["outcome"] == "patched"
    first = answer["warnings"][0]
    assert first.startswith(f"hardener: image {silent}: lookup failed, facts unknown")
    assert "no answer within the webhook's lookup budget" in first
    ops = decode_patch(answer)
    assert ops is not None
    # images.unknown: keep: no runAsNonRoot on the container whose image is unknown, and the
    # known numeric image's container gets it.
    assert "runAsNonRoot" not in pod_context(ops)
    assert container_context(ops, 1)["runAsNonRoot"] is True
    assert "runAsNonRoot" not in container_context(ops, 0)
    found = samples(app)
    assert found['hardener_image_lookups_total{outcome="fallback"}'] == 1
    assert found['hardener_image_lookup_failures_total{kind="deadline"}'] == 1
    assert found['hardener_webhook_requests_total{outcome="deadline"}'] == 0


async def test_a_failed_lookup_falls_back_to_the_table(
    aiohttp_client: MakeClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on the mirror: the host is down, and nginx's facts come from the table.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = config_for(
        tmp_path,
        registries={"docker.io": {"mirror": f"http://127.0.0.1:{port}", "insecure": True}},
    )
    app = create_app(config)
    client = await aiohttp_client(app)
    caplog.set_level(logging.INFO, logger="hardener.webhook")
    answer = await post(client, pod("nginx:1.27"))
    first = answer["warnings"][0]
    assert first.startswith("hardener: image nginx:1.27: lookup failed, using the offline table")
    assert lookups(app, "fallback") == 1
    assert samples(app)['hardener_image_lookup_failures_total{kind="host-down"}'] == 1
    # The review's log line names the image too.
    (line,) = [r for r in caplog.records if r.getMessage() == "review"]
    assert line.__dict__["fields"]["image_fallbacks"] == ("nginx:1.27",)


async def test_concurrent_reviews_of_one_image_share_one_lookup(
    aiohttp_client: MakeClient, registries: Registries, tmp_path: Path
) -> None:
    image = registries.images["multi"]
    single = create_app(config_for(tmp_path / "one", registries.anonymous.host))
    client = await aiohttp_client(single)
    await post(client, pod(image))
    one_lookup = single[STATE_KEY].images.requests  # type: ignore[union-attr]
    assert one_lookup > 0

    app = create_app(config_for(tmp_path / "many", registries.anonymous.host))
    client = await aiohttp_client(app)
    answers = await asyncio.gather(*(post(client, pod(image)) for _ in range(10)))
    assert app[STATE_KEY].images.requests == one_lookup  # type: ignore[union-attr]
    patches = [decode_patch(answer) for answer in answers]
    assert all(patch == patches[0] for patch in patches)
    assert lookups(app, "registry") == 10  # one lookup, ten reviews answered by it


async def test_lookups_off_use_the_table_and_ask_no_registry(
    aiohttp_client: MakeClient, registries: Registries, tmp_path: Path
) -> None:
    app = create_app(config_for(tmp_path, registries.anonymous.host, lookup=False))
    client = await aiohttp_client(app)
    answer = await post(client, pod("nginx:1.27", registries.images["named"]))
    assert app[STATE_KEY].images.requests == 0  # type: ignore[union-attr]
    assert lookups(app, "table") == 1 and lookups(app, "unknown") == 1
    assert lookups(app, "fallback") == 0
    assert not any("lookup failed" in w for w in answer["warnings"])


async def test_the_metrics_port_exports_the_lookup_series(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    app = create_app(config_for(tmp_path, lookup=False))
    await aiohttp_client(app)
    metrics = await aiohttp_client(create_metrics_app(app))
    async with metrics.get("/metrics") as resp:
        text = await resp.text()
    for outcome in ("registry", "cache", "table", "unknown", "fallback"):
        assert f'hardener_image_lookups_total{{outcome="{outcome}"}} 0.0' in text
    assert 'hardener_image_lookup_failures_total{kind="timeout"} 0.0' in text
    assert 'hardener_image_cache_hits_total{kind="facts"} 0.0' in text
    assert "hardener_image_lookup_duration_seconds_bucket" in text


async def test_the_resolver_lives_from_startup_to_cleanup(tmp_path: Path) -> None:
    app = create_app(config_for(tmp_path, lookup=False))
    assert app[STATE_KEY].images is None
    server = TestServer(app)
    await server.start_server()
    resolver = app[STATE_KEY].images
    assert resolver is not None and resolver.offline
    await server.close()
    assert app[STATE_KEY].images is None


async def test_a_missing_image_is_not_asked_again_within_the_failure_ttl(
    aiohttp_client: MakeClient, registries: Registries, tmp_path: Path
) -> None:
    app = create_app(config_for(tmp_path, registries.anonymous.host))
    client = await aiohttp_client(app)
    missing = f"{registries.anonymous.host}/app/missing:1"
    first = await post(client, pod(missing))
    resolver = app[STATE_KEY].images
    assert resolver is not None
    asked = resolver.requests
    assert asked > 0
    second = await post(client, pod(missing))
    # The same fallback and warning, from memory: no request, no wait.
    assert resolver.requests == asked
    assert first["warnings"][0] == second["warnings"][0]
    assert "HTTP 404" in first["warnings"][0]
    found = samples(app)
    assert found['hardener_image_lookups_total{outcome="fallback"}'] == 2
    assert found['hardener_image_lookup_failures_total{kind="registry"}'] == 1
    assert found['hardener_image_cache_hits_total{kind="answer"}'] == 1
