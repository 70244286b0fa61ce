"""Through a real TLS socket, as the API server calls the webhook, and certificate rotation
with no restart and no dropped request."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import pytest
import pytest_asyncio
from aiohttp import web

from hardener.certs import CertBundle, make_bundle, write_bundle
from hardener.engine import plan
from hardener.webhook import CertReloader, create_app
from tests.webhook.conftest import admission_review, decode_patch
from tests.webhook.test_review import DEPLOYMENT, POD

pytestmark = pytest.mark.asyncio

# What the API server sends: a JSON POST with a ?timeout= matching timeoutSeconds.
API_SERVER_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, */*",
    "User-Agent": "kube-apiserver-admission",
}


def _client_context(*cas: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata="".join(ca.decode() for ca in cas))
    return context


def _der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


class Server:
    def __init__(self, directory: Path, bundle: CertBundle) -> None:
        self.directory = directory
        self.bundle = bundle
        self.reload_results: list[tuple[bool, str | None]] = []
        self.tls = CertReloader(
            directory / "tls.crt",
            directory / "tls.key",
            check_interval=0.0,
            on_reload=lambda ok, error: self.reload_results.append((ok, error)),
        )
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        self.tls.load()
        self.runner = web.AppRunner(create_app(tls=self.tls), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.tls.context)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def url(self, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}/mutate?timeout=5s"

    async def served_cert(self, *cas: bytes, host: str = "localhost") -> bytes:
        """The certificate a fresh connection is served (DER); fails unless ``cas`` trust it."""
        context = _client_context(*cas)
        _, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=context, server_hostname=host
        )
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True)
            assert der is not None
            return bytes(der)
        finally:
            writer.close()
            await writer.wait_closed()


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    bundle = make_bundle(["localhost"], ["127.0.0.1"])
    write_bundle(bundle, tmp_path)
    running = Server(tmp_path, bundle)
    await running.start()
    yield running
    assert running.runner is not None
    await running.runner.cleanup()


async def _post(session: aiohttp.ClientSession, url: str, doc: Any) -> dict[str, Any]:
    async with session.post(url, data=json.dumps(doc), headers=API_SERVER_HEADERS) as resp:
        assert resp.status == 200
        answer: dict[str, Any] = await resp.json()
        return answer


async def test_review_over_tls_as_the_api_server_sends_it(server: Server) -> None:
    connector = aiohttp.TCPConnector(ssl=_client_context(server.bundle.ca_cert))
    async with aiohttp.ClientSession(connector=connector) as session:
        for obj in (POD, DEPLOYMENT):
            doc = admission_review(copy.deepcopy(obj), namespace="shop")
            answer = await _post(session, server.url(), doc)
            response = answer["response"]
            assert response["uid"] == doc["request"]["uid"]
            ops = decode_patch(response)
            assert ops is not None
            assert jsonpatch.apply_patch(obj, ops) == jsonpatch.apply_patch(obj, plan(obj).ops)
            # The API server calls again with the patched object (reinvocationPolicy).
            again = await _post(
                session,
                server.url(),
                admission_review(jsonpatch.apply_patch(obj, ops), namespace="shop"),
            )
            assert "patch" not in again["response"]
        # By IP address too (no SNI is sent then): same certificate, same answer.
        answer = await _post(session, server.url("127.0.0.1"), admission_review(copy.deepcopy(POD)))
        assert decode_patch(answer["response"])
    assert await server.served_cert(server.bundle.ca_cert) == _der(server.bundle.cert)


def _rotate(directory: Path, bundle: CertBundle) -> None:
    """Replace the files the way a plain `cp` does: certificate first, then the key."""
    (directory / "tls.crt").write_bytes(bundle.cert)
    (directory / "tls.key").write_bytes(bundle.key)


async def test_rotated_certificate_is_served_without_restart(server: Server) -> None:
    old = server.bundle
    new = make_bundle(["localhost"], ["127.0.0.1"])
    keep_alive = aiohttp.TCPConnector(ssl=_client_context(old.ca_cert), limit=1)
    async with aiohttp.ClientSession(connector=keep_alive) as session:
        await _post(session, server.url(), admission_review(copy.deepcopy(POD)))
        _rotate(server.directory, new)
        # A new connection gets the new certificate...
        assert await server.served_cert(new.ca_cert) == _der(new.cert)
        # ...and a client that only trusts the old CA can no longer connect.
        with pytest.raises(ssl.SSLCertVerificationError):
            await server.served_cert(old.ca_cert)
        # The connection opened before the rotation is still there and still answers.
        answer = await _post(session, server.url(), admission_review(copy.deepcopy(POD)))
        assert decode_patch(answer["response"])
    assert (True, None) in server.reload_results
    assert server.tls.reloads >= 1


async def test_a_bad_rotation_keeps_the_old_certificate(server: Server) -> None:
    old = server.bundle
    (server.directory / "tls.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n")
    assert await server.served_cert(old.ca_cert) == _der(old.cert)
    assert server.reload_results and server.reload_results[-1][0] is False
    assert "tls.key" in (server.reload_results[-1][1] or "")
    failures = server.tls.failures
    # The same broken files are not retried (nor reported) at every handshake.
    assert await server.served_cert(old.ca_cert) == _der(old.cert)
    assert server.tls.failures == failures
    new = make_bundle(["localhost"], ["127.0.0.1"])
    _rotate(server.directory, new)
    assert await server.served_cert(new.ca_cert) == _der(new.cert)


def _same_size_renewal(old: CertBundle) -> CertBundle:
    """A new certificate and key whose files are exactly as long as ``old``'s (as a renewal
    with the same key type and CA gives): only their content differs."""
    for _ in range(200):
        new = make_bundle(["localhost"], ["127.0.0.1"])
        if len(new.cert) == len(old.cert) and len(new.key) == len(old.key):
            return new
    raise AssertionError("no same-size certificate in 200 tries")


async def test_a_certificate_copied_in_place_with_its_mtime_kept_is_reloaded(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``cp -p`` over the old files: same inode, same size, same mtime; only the content
    (and the ctime) changed. The reload must notice."""
    old = server.bundle
    new = _same_size_renewal(old)
    staging = tmp_path_factory.mktemp("renewed")
    for name, content in (("tls.crt", new.cert), ("tls.key", new.key)):
        target = server.directory / name
        before = os.stat(target)
        source = staging / name
        source.write_bytes(content)
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        subprocess.run(["cp", "-p", str(source), str(target)], check=True)
        after = os.stat(target)
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino,
            before.st_size,
            before.st_mtime_ns,
        )
    assert await server.served_cert(new.ca_cert) == _der(new.cert)
    assert server.reload_results[-1] == (True, None)


async def test_kubelet_style_symlink_swap_is_followed(tmp_path: Path) -> None:
    # A Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>; an update writes
    # a new timestamped directory and flips ..data in one rename.
    def publish(bundle: CertBundle, name: str) -> None:
        write_bundle(bundle, tmp_path / name)
        os.symlink(name, tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")

    first = make_bundle(["localhost"])
    publish(first, "..2024_01_01")
    for file in ("tls.crt", "tls.key"):
        os.symlink(f"..data/{file}", tmp_path / file)
    running = Server(tmp_path, first)
    await running.start()
    try:
        assert await running.served_cert(first.ca_cert) == _der(first.cert)
        second = make_bundle(["localhost"])
        publish(second, "..2024_02_01")
        assert await running.served_cert(second.ca_cert) == _der(second.cert)
    finally:
        assert running.runner is not None
        await running.runner.cleanup()


async def test_no_request_is_dropped_while_certificates_rotate(server: Server) -> None:
    bundles = [make_bundle(["localhost"], ["127.0.0.1"]) for _ in range(3)]
    trusted = _client_context(server.bundle.ca_cert, *(b.ca_cert for b in bundles))
    statuses: list[int] = []
    stop = asyncio.Event()

    async def client(new_connection_each_time: bool) -> None:
        connector = aiohttp.TCPConnector(ssl=trusted, force_close=new_connection_each_time)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not stop.is_set():
                doc = admission_review(copy.deepcopy(POD))
                async with session.post(
                    server.url(), data=json.dumps(doc), headers=API_SERVER_HEADERS
                ) as resp:
                    answer = await resp.json()
                    statuses.append(resp.status)
                    assert answer["response"]["uid"] == doc["request"]["uid"]

    tasks = [asyncio.create_task(client(flag)) for flag in (True, True, False, False)]
    for bundle in bundles:
        await asyncio.sleep(0.15)
        _rotate(server.directory, bundle)
    await asyncio.sleep(0.15)
    stop.set()
    await asyncio.gather(*tasks)
    assert statuses and set(statuses) == {200}
    assert await server.served_cert(bundles[-1].ca_cert) == _der(bundles[-1].cert)
    assert server.tls.reloads >= 1
