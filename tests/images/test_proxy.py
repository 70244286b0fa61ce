"""Registry behaviour that a well-behaved local registry never shows: rate limits (429 with
``Retry-After``), blobs redirected to storage, content that does not match its digest, a
manifest of the wrong media type, server errors. A small loopback aiohttp proxy, written here,
stands in front of the real docker-registry and injects exactly these; everything else is the
registry's own answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hardener.images import ImageResolver
from tests.images.conftest import Registries, settings_for

pytestmark = pytest.mark.asyncio

MakeServer = Callable[..., Awaitable[TestServer]]


@dataclass
class Proxy:
    upstream: str
    manifest_429: list[str] = field(default_factory=list)
    """Retry-After values to answer manifest requests with, one per request, before passing."""
    redirect_blobs: bool = False
    corrupt: str | None = None
    """``config`` or ``manifest``: flip the body of that kind of answer."""
    content_type: str | None = None
    status_500: bool = False
    redirect_to: str | None = None
    """Send manifest and blob requests to this other registry origin (as registry.k8s.io
    does)."""
    seen: list[dict[str, Any]] = field(default_factory=list)
    storage_auth: list[str | None] = field(default_factory=list)
    port: int = 0


def _session(holder: dict[str, aiohttp.ClientSession]) -> aiohttp.ClientSession:
    if "s" not in holder:
        holder["s"] = aiohttp.ClientSession()
    return holder["s"]


def proxy_app(proxy: Proxy, storage_token: Callable[[str], str | None]) -> web.Application:
    session: dict[str, aiohttp.ClientSession] = {}

    async def forward(request: web.Request, headers: dict[str, str]) -> tuple[int, Any, bytes]:
        client = _session(session)
        async with client.request(
            request.method,
            proxy.upstream + request.path_qs,
            headers=headers,
            allow_redirects=False,
        ) as upstream:
            return upstream.status, upstream.headers, await upstream.read()

    async def v2(request: web.Request) -> web.StreamResponse:
        path = request.path
        proxy.seen.append(
            {"method": request.method, "path": path, "auth": request.headers.get("Authorization")}
        )
        if proxy.redirect_to and path != "/v2/":
            raise web.HTTPTemporaryRedirect(proxy.redirect_to + path)
        if proxy.status_500 and "/manifests/" in path:
            return web.Response(status=500, text="boom")
        if "/manifests/" in path and proxy.manifest_429:
            return web.Response(status=429, headers={"Retry-After": proxy.manifest_429.pop(0)})
        if proxy.redirect_blobs and "/blobs/" in path and request.method == "GET":
            repo, digest = path[len("/v2/") :].split("/blobs/")
            # Another origin (localhost vs 127.0.0.1): storage, which must get no token.
            raise web.HTTPTemporaryRedirect(
                f"http://localhost:{proxy.port}/storage/{repo}/{digest}"
            )
        headers = {k: v for k, v in request.headers.items() if k in ("Accept", "Authorization")}
        status, upstream_headers, body = await forward(request, headers)
        out = {
            k: v
            for k, v in upstream_headers.items()
            if k.lower() in ("content-type", "docker-content-digest", "www-authenticate")
        }
        is_config = "/blobs/" in path and body.startswith(b"{")
        if status == 200 and proxy.corrupt == "config" and is_config:
            body = body.replace(b"{", b"{ ", 1)
        if status == 200 and proxy.corrupt == "manifest" and "/manifests/" in path:
            body = body.replace(b"{", b"{ ", 1)
        if status == 200 and proxy.content_type and "/manifests/" in path:
            out["Content-Type"] = proxy.content_type
        if request.method == "HEAD":
            out["Content-Length"] = str(len(body))
            return web.Response(status=status, headers=out)
        return web.Response(status=status, headers=out, body=body)

    async def storage(request: web.Request) -> web.Response:
        proxy.storage_auth.append(request.headers.get("Authorization"))
        repo, digest = request.match_info["repo"], request.match_info["digest"]
        headers = {}
        token = storage_token(f"repository:{repo}:pull")
        if token is not None:
            headers["Authorization"] = token
        client = _session(session)
        async with client.get(f"{proxy.upstream}/v2/{repo}/blobs/{digest}", headers=headers) as up:
            return web.Response(status=up.status, body=await up.read())

    async def close(_: web.Application) -> None:
        if "s" in session:
            await session["s"].close()

    app = web.Application()
    app.router.add_route("*", "/storage/{repo:.+}/{digest}", storage)
    app.router.add_route("*", "/v2/{tail:.*}", v2)
    app.on_cleanup.append(close)
    return app


async def start(
    aiohttp_server: MakeServer, proxy: Proxy, storage_token: Callable[[str], str | None]
) -> str:
    server = await aiohttp_server(proxy_app(proxy, storage_token), host="127.0.0.1")
    proxy.port = server.port
    return f"127.0.0.1:{server.port}"


async def test_429_with_a_short_retry_after_is_retried(
    registries: Registries, aiohttp_server: MakeServer
) -> None:
    proxy = Proxy(upstream=registries.anonymous.base, manifest_429=["0", "0.1"])
    host = await start(aiohttp_server, proxy, lambda s: None)
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        facts = await resolver.lookup(f"{host}/app/numeric:1")
    assert (facts.source, facts.uid) == ("registry", 1000)
    assert not proxy.manifest_429, "both 429s were answered, then the lookup went on"


async def test_429_with_a_long_retry_after_falls_back_at_once(
    registries: Registries, aiohttp_server: MakeServer
) -> None:
    proxy = Proxy(upstream=registries.anonymous.base, manifest_429=["120"])
    host = await start(aiohttp_server, proxy, lambda s: None)
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        facts = await resolver.lookup(f"{host}/app/numeric:1")
    assert facts.source == "unknown"
    assert "HTTP 429, retry after 120s" in facts.detail and "mirror" in facts.detail


async def test_a_redirected_blob_is_fetched_without_the_token(
    registries: Registries, aiohttp_server: MakeServer
) -> None:
    signer = registries.signer
    proxy = Proxy(upstream=registries.token.base, redirect_blobs=True)
    host = await start(aiohttp_server, proxy, lambda scope: f"Bearer {signer.token(scope)}")
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        facts = await resolver.lookup(f"{host}/app/named:1")
    assert (facts.source, facts.user, facts.uid) == ("registry", "web", 101), facts.detail
    assert any(s["auth"] and s["auth"].startswith("Bearer ") for s in proxy.seen), (
        "the registry got the token"
    )
    assert len(proxy.storage_auth) == 2, "the config blob and the layer went through storage"
    assert proxy.storage_auth == [None, None], "storage never saw the registry's token"


@pytest.mark.parametrize("kind", ["config", "manifest"])
async def test_content_that_does_not_match_its_digest_is_not_believed(
    registries: Registries, aiohttp_server: MakeServer, kind: str
) -> None:
    proxy = Proxy(upstream=registries.anonymous.base, corrupt=kind)
    host = await start(aiohttp_server, proxy, lambda s: None)
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        facts = await resolver.lookup(f"{host}/app/numeric:1")
    assert facts.source == "unknown"
    assert "does not match that digest" in facts.detail and "not trusted" in facts.detail


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.docker.distribution.manifest.v1+prettyjws", "text/html"],
)
async def test_a_manifest_of_the_wrong_media_type_is_refused(
    registries: Registries, aiohttp_server: MakeServer, content_type: str
) -> None:
    proxy = Proxy(upstream=registries.anonymous.base, content_type=content_type)
    host = await start(aiohttp_server, proxy, lambda s: None)
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        facts = await resolver.lookup(f"{host}/app/numeric:1")
    assert facts.source == "unknown"
    assert f"a manifest of type {content_type!r}" in facts.detail


async def test_a_server_error_falls_back_to_the_table(
    registries: Registries, aiohttp_server: MakeServer
) -> None:
    from hardener.config import ImageTableEntry

    proxy = Proxy(upstream=registries.anonymous.base, status_500=True)
    host = await start(aiohttp_server, proxy, lambda s: None)
    table = {f"{host}/app/numeric": ImageTableEntry(user="1000", writable_paths=("/tmp",))}
    async with ImageResolver(settings_for(host, table=table), cache_dir=None) as resolver:
        facts = await resolver.lookup(f"{host}/app/numeric:1")
    assert (facts.source, facts.user, facts.uid, facts.writable_paths) == (
        "table",
        "1000",
        1000,
        ("/tmp",),
    )
    assert "answered HTTP 500" in facts.detail and "offline table" in facts.detail


async def test_requests_redirected_to_another_registry_follow_its_challenge(
    registries: Registries, aiohttp_server: MakeServer
) -> None:
    # The front answers anonymously and sends everything to the token registry, which asks
    # for its own bearer token: that token goes to that origin only.
    proxy = Proxy(upstream=registries.anonymous.base, redirect_to=registries.token.base)
    host = await start(aiohttp_server, proxy, lambda scope: None)
    registries.token_requests.clear()
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        facts = await resolver.lookup(f"{host}/app/named:1")
    assert (facts.source, facts.uid) == ("registry", 101), facts.detail
    assert facts.digest == registries.token.pushed[f"{registries.token.host}/app/named:1"]
    assert len(registries.token_requests) == 1, "one token, reused for every redirected request"
    assert [s["path"] for s in proxy.seen][:2] == ["/v2/", "/v2/app/named/manifests/1"]
    assert all(s["auth"] is None for s in proxy.seen), "the front never got the token"
