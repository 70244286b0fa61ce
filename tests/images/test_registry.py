"""Image lookups against real registries (Debian's docker-registry) on loopback: anonymous,
htpasswd basic auth, bearer tokens, platforms, named users, budgets, failures."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardener.config import RegistrySettings
from hardener.images import ImageResolver
from tests.conftest import free_port
from tests.images.conftest import USER, Registries, settings_for

pytestmark = pytest.mark.asyncio


async def test_anonymous_lookups_read_user_ids_and_volumes(
    registries: Registries, tmp_path: Path
) -> None:
    images = registries.images
    async with ImageResolver(
        settings_for(registries.anonymous.host), cache_dir=tmp_path
    ) as resolver:
        facts = await resolver.lookup_many(images.values())

    numeric = facts[images["numeric"]]
    assert (numeric.source, numeric.user, numeric.uid, numeric.gid) == (
        "registry",
        "1000",
        1000,
        None,
    )
    assert numeric.volumes == ("/cache", "/data")
    assert numeric.digest == registries.anonymous.pushed[images["numeric"]]

    named = facts[images["named"]]  # a Docker v2 manifest; the name resolved in /etc/passwd
    assert (named.user, named.uid, named.gid) == ("web", 101, 102)
    assert "uid 101 in the image's /etc/passwd" in named.detail

    grouped = facts[images["named-group"]]  # user:group, the group from /etc/group
    assert (grouped.user, grouped.uid, grouped.gid) == ("web:staff", 101, 50)

    root = facts[images["root"]]
    assert (root.source, root.user, root.uid) == ("registry", "", None)

    # A whiteout in the upper layer deletes the lower /etc/passwd: the name stays unresolved.
    whiteout = facts[images["whiteout"]]
    assert (whiteout.user, whiteout.uid) == ("ghost", None)
    assert "not resolved: the image has no /etc/passwd" in whiteout.detail
    # An opaque /etc with its own passwd: the upper file counts, the lower one is hidden.
    assert facts[images["opaque"]].uid == 4321

    # The index: the attestation entry and arm64 are skipped, amd64 sits in a nested index.
    multi = facts[images["multi"]]
    assert (multi.user, multi.uid) == ("3000", 3000)
    assert multi.digest == registries.anonymous.pushed[images["multi"]]

    artifact = facts[images["artifact"]]
    assert artifact.source == "unknown" and not artifact.known
    assert "is not a container image" in artifact.detail
    assert "application/vnd.cncf.helm.config.v1+json" in artifact.detail
    assert resolver.metrics.outcomes["registry"] == len(images) - 1
    assert resolver.metrics.outcomes["unknown"] == 1


async def test_the_configured_platform_is_picked_and_a_missing_one_is_named(
    registries: Registries,
) -> None:
    image = registries.images["multi"]
    async with ImageResolver(
        settings_for(registries.anonymous.host, platform="linux/arm64"), cache_dir=None
    ) as resolver:
        assert (await resolver.lookup(image)).uid == 2000
    async with ImageResolver(
        settings_for(registries.anonymous.host, platform="windows/amd64"), cache_dir=None
    ) as resolver:
        facts = await resolver.lookup(image)
    assert facts.source == "unknown"
    assert "has no windows/amd64 image (it offers linux/amd64, linux/arm64)" in facts.detail


async def test_a_huge_layer_stops_at_the_byte_budget(registries: Registries) -> None:
    image = registries.images["huge"]
    async with ImageResolver(
        settings_for(registries.anonymous.host, max_layer_bytes=100_000), cache_dir=None
    ) as resolver:
        facts = await resolver.lookup(image)
    # The user is known from the config; only its uid is not, and the detail says why.
    assert (facts.source, facts.user, facts.uid) == ("registry", "big", None)
    assert "images.max-layer-bytes" in facts.detail and "user 'big' not resolved" in facts.detail


async def test_htpasswd_basic_auth_uses_the_auth_file_and_names_what_is_missing(
    registries: Registries, tmp_path: Path
) -> None:
    image = f"{registries.basic.host}/app/numeric:1"
    settings = settings_for(registries.basic.host)
    async with ImageResolver(settings, cache_dir=None, auth_file=registries.auth_file) as resolver:
        facts = await resolver.lookup(image)
    assert (facts.source, facts.uid) == ("registry", 1000)

    empty = tmp_path / "none.json"
    empty.write_text('{"auths": {}}', encoding="utf-8")
    async with ImageResolver(settings, cache_dir=None, auth_file=empty) as resolver:
        facts = await resolver.lookup(image)
    assert facts.source == "unknown"
    assert "asks for a user and password" in facts.detail and "auth file" in facts.detail

    wrong = tmp_path / "wrong.json"
    encoded = base64.b64encode(f"{USER[0]}:nope".encode()).decode()
    wrong.write_text(json.dumps({"auths": {registries.basic.host: {"auth": encoded}}}))
    async with ImageResolver(settings, cache_dir=None, auth_file=wrong) as resolver:
        facts = await resolver.lookup(image)
    assert facts.source == "unknown" and "HTTP 401" in facts.detail


async def test_bearer_tokens_anonymous_and_with_credentials(
    registries: Registries, tmp_path: Path
) -> None:
    image = f"{registries.token.host}/app/named:1"
    settings = settings_for(registries.token.host)
    registries.token_requests.clear()
    empty = tmp_path / "none.json"
    empty.write_text("{}", encoding="utf-8")
    async with ImageResolver(settings, cache_dir=None, auth_file=empty) as resolver:
        facts = await resolver.lookup(image)
    assert (facts.source, facts.user, facts.uid) == ("registry", "web", 101)
    assert registries.token_requests, "the token server was asked"
    first = registries.token_requests[0]
    assert first["auth"] is None
    assert first["query"] == {"scope": "repository:app/named:pull", "service": "test-registry"}
    # One token serves the whole lookup (HEAD, manifest, config, layer).
    assert len(registries.token_requests) == 1

    registries.token_requests.clear()
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"auths": {registries.token.host: {"username": USER[0], "password": USER[1]}}})
    )
    async with ImageResolver(settings, cache_dir=None, auth_file=good) as resolver:
        assert (await resolver.lookup(image)).uid == 101
    assert registries.token_requests[0]["auth"].startswith("Basic ")

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"auths": {registries.token.host: {"username": USER[0], "password": "x"}}})
    )
    async with ImageResolver(settings, cache_dir=None, auth_file=bad) as resolver:
        facts = await resolver.lookup(image)
    assert facts.source == "unknown"
    assert "refused a pull token" in facts.detail and f"as {USER[0]}" in facts.detail


async def test_a_missing_tag_or_repository_is_a_404_with_a_hint(registries: Registries) -> None:
    host = registries.anonymous.host
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        facts = await resolver.lookup_many([f"{host}/app/numeric:nope", f"{host}/no/such:1"])
    for item in facts.values():
        assert item.source == "unknown"
        assert "HTTP 404" in item.detail and "check the image name and tag" in item.detail


async def test_a_mirror_replaces_scheme_and_host_and_keeps_the_path(
    registries: Registries,
) -> None:
    # `app/numeric:1` is docker.io/app/numeric:1; the mirror serves the same repository path.
    settings = settings_for(
        registries={"docker.io": RegistrySettings(mirror=registries.anonymous.base, insecure=True)}
    )
    async with ImageResolver(settings, cache_dir=None) as resolver:
        facts = await resolver.lookup_many(["app/numeric:1", "nginx:1.27"])
    assert facts["app/numeric:1"].reference == "docker.io/app/numeric:1"
    assert facts["app/numeric:1"].uid == 1000
    # nginx is not on the mirror: the offline table answers, and says so.
    nginx = facts["nginx:1.27"]
    assert (nginx.source, nginx.user) == ("table", "")
    assert nginx.writable_paths == ("/var/cache/nginx", "/var/run")
    assert "HTTP 404" in nginx.detail and "offline table" in nginx.detail


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a black-holed registry)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


async def test_an_unreachable_registry_costs_one_attempt_per_host(registries: Registries) -> None:
    dead = f"127.0.0.1:{free_port()}"
    images = [f"{dead}/app/a{i}:1" for i in range(6)]
    async with ImageResolver(settings_for(dead), cache_dir=None) as resolver:
        facts = await resolver.lookup_many(images)
        again = await resolver.lookup(f"{dead}/app/later:1")
    assert all(f.source == "unknown" for f in facts.values())
    assert all(
        "cannot be reached" in f.detail or "failed moments ago" in f.detail for f in facts.values()
    )
    assert "failed moments ago" in again.detail
    assert resolver.requests == 1, "one probe for the host, then the remembered failure"
    assert resolver.metrics.failures["host-down"] == 7


async def test_a_silent_registry_costs_one_timeout_per_run(
    registries: Registries, silent_port: int
) -> None:
    host = f"127.0.0.1:{silent_port}"
    images = [f"{host}/app/a{i}:1" for i in range(20)]
    started = time.monotonic()
    async with ImageResolver(
        settings_for(host, timeout_seconds=0.5), cache_dir=None, concurrency=4
    ) as resolver:
        facts = await resolver.lookup_many(images)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"20 lookups on a silent host took {elapsed:.2f}s"
    assert all(f.source == "unknown" for f in facts.values())
    assert sum("did not answer within 0.4s" in f.detail for f in facts.values()) == 1
    assert resolver.requests == 1, "one probe; the others wait for it and share its failure"


async def test_the_overall_deadline_answers_with_the_table_or_unknown(
    registries: Registries, silent_port: int
) -> None:
    host = f"127.0.0.1:{silent_port}"
    settings = settings_for(
        host,
        timeout_seconds=5.0,
        registries={"docker.io": RegistrySettings(mirror=f"http://{host}", insecure=True)},
    )
    started = time.monotonic()
    async with ImageResolver(settings, cache_dir=None) as resolver:
        facts = await resolver.lookup_many([f"{host}/x:1", "redis:7"], deadline=0.3)
    assert time.monotonic() - started < 2
    assert facts[f"{host}/x:1"].source == "unknown"
    assert "overall lookup deadline (0.3s)" in facts[f"{host}/x:1"].detail
    assert (facts["redis:7"].source, facts["redis:7"].volumes) == ("table", ("/data",))
    await asyncio.sleep(0)
