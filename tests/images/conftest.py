"""Real registries for the image tests: Debian's ``docker-registry`` (CNCF Distribution),
started once per session in three set-ups (anonymous, htpasswd basic auth, bearer tokens from a
token server written here), filled through the registry's own HTTP API.

Images are built here byte by byte: config blobs, gzip tar layers holding ``etc/passwd`` and
``etc/group``, Docker and OCI manifests, and OCI indexes with several platforms, a nested index
and a BuildKit-style attestation entry.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from hardener.config import ImageSettings, RegistrySettings
from tests.conftest import free_port

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
USER = ("tester", "s3cret-pass")
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nweb:x:101:102:web:/srv:/bin/false\n"
GROUP = b"root:x:0:\nweb:x:102:\nstaff:x:50:web\n"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes], *, compress: bool = True) -> bytes:
    """A tar layer (gzip unless told otherwise) holding ``files`` (path -> content)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(content))
    data = raw.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def image_config(user: str | None, volumes: tuple[str, ...] = ()) -> bytes:
    inner: dict[str, Any] = {"Env": ["PATH=/usr/bin"]}
    if user is not None:
        inner["User"] = user
    if volumes:
        inner["Volumes"] = {v: {} for v in volumes}
    return json.dumps(
        {"architecture": "amd64", "os": "linux", "config": inner, "rootfs": {"type": "layers"}}
    ).encode()


# -- JWTs for distribution's `auth: token` --------------------------------------------------
@dataclass
class TokenSigner:
    key: ec.EllipticCurvePrivateKey
    cert_der: bytes
    cert_pem: bytes
    issuer: str = "hardener-tests"
    service: str = "test-registry"

    @classmethod
    def create(cls) -> TokenSigner:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hardener test token signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(
            key=key,
            cert_der=cert.public_bytes(serialization.Encoding.DER),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        )

    def token(self, scope: str) -> str:
        """A JWT as distribution's token auth verifies it: ES256, the cert in ``x5c``."""
        access = []
        for item in scope.split(" "):
            parts = item.split(":")
            if len(parts) >= 3 and parts[0] == "repository":
                access.append(
                    {
                        "type": "repository",
                        "name": ":".join(parts[1:-1]),
                        "actions": parts[-1].split(","),
                    }
                )
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": "tester",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class BackgroundServer:
    """An aiohttp app on 127.0.0.1 in its own thread and loop, for the whole session."""

    def __init__(self, app: web.Application) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "the test server did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def token_app(signer: TokenSigner, requests: list[dict[str, Any]]) -> web.Application:
    """The token server: anonymous pulls are allowed; a user must give USER's password."""

    async def token(request: web.Request) -> web.Response:
        requests.append(
            {"query": dict(request.query), "auth": request.headers.get("Authorization")}
        )
        auth = request.headers.get("Authorization")
        if auth is not None:
            expected = "Basic " + base64.b64encode(":".join(USER).encode()).decode()
            if auth != expected:
                return web.json_response({"errors": [{"code": "DENIED"}]}, status=401)
        scope = request.query.get("scope", "")
        return web.json_response({"token": signer.token(scope), "expires_in": 300})

    app = web.Application()
    app.router.add_get("/token", token)
    return app


# -- the registry processes -----------------------------------------------------------------
@dataclass
class Registry:
    host: str
    """``127.0.0.1:PORT``"""
    process: subprocess.Popen[bytes]
    auth: Callable[[str], str | None] = lambda scope: None
    pushed: dict[str, str] = field(default_factory=dict)
    """image reference -> manifest digest"""

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def _request(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], scope: str
    ) -> tuple[int, dict[str, str]]:
        auth = self.auth(scope)
        if auth is not None:
            headers = {**headers, "Authorization": auth}
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {url}: {exc.code} {exc.read()[:300]!r}") from exc

    def push_blob(self, repo: str, data: bytes) -> str:
        scope = f"repository:{repo}:pull,push"
        digest = sha256(data)
        _, headers = self._request("POST", f"{self.base}/v2/{repo}/blobs/uploads/", b"", {}, scope)
        location = headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        status, _ = self._request(
            "PUT",
            f"{location}{sep}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream"},
            scope,
        )
        assert status == 201, status
        return digest

    def push_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        scope = f"repository:{repo}:pull,push"
        status, headers = self._request(
            "PUT",
            f"{self.base}/v2/{repo}/manifests/{reference}",
            body,
            {"Content-Type": media_type},
            scope,
        )
        assert status == 201, status
        digest = sha256(body)
        assert headers.get("Docker-Content-Digest") == digest
        self.pushed[f"{self.host}/{repo}:{reference}"] = digest
        return digest

    def push_image(
        self,
        repo: str,
        tag: str | None,
        config: bytes,
        layers: list[bytes],
        *,
        oci: bool = True,
        config_type: str | None = None,
    ) -> tuple[str, int]:
        """Push config, layers and manifest; the manifest's digest and size."""
        descriptors = [
            {
                "mediaType": OCI_LAYER if oci else DOCKER_LAYER,
                "digest": self.push_blob(repo, data),
                "size": len(data),
            }
            for data in layers
        ]
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
                "config": {
                    "mediaType": config_type or (OCI_CONFIG if oci else DOCKER_CONFIG),
                    "digest": self.push_blob(repo, config),
                    "size": len(config),
                },
                "layers": descriptors,
            }
        ).encode()
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        digest = self.push_manifest(repo, tag or sha256(manifest), manifest, media_type)
        return digest, len(manifest)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(directory: Path, auth: dict[str, Any] | None) -> Registry:
    if not Path(REGISTRY_BINARY).exists():
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if auth is not None:
        config["auth"] = auth
    path = directory / "config.yml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    with open(directory / "registry.log", "wb") as log_file:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(path)], stdout=subprocess.DEVNULL, stderr=log_file
        )
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for auth
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (directory / "registry.log").read_text(errors="replace")
                raise AssertionError(f"docker-registry did not start:\n{log}") from None
            time.sleep(0.05)
    return Registry(host=f"127.0.0.1:{port}", process=process)


@dataclass
class Registries:
    anonymous: Registry
    basic: Registry
    token: Registry
    token_requests: list[dict[str, Any]]
    signer: TokenSigner
    auth_file: Path
    images: dict[str, str]
    """name -> image string in the anonymous registry"""


def _fill_anonymous(reg: Registry) -> dict[str, str]:
    base = layer({"etc/passwd": PASSWD, "etc/group": GROUP, "bin/sh": b"#!"})
    app = layer({"srv/app.py": b"print('hi')\n"})
    images: dict[str, str] = {}

    reg.push_image("app/numeric", "1", image_config("1000", ("/data", "/cache")), [base, app])
    images["numeric"] = f"{reg.host}/app/numeric:1"

    reg.push_image("app/named", "1", image_config("web"), [base, app], oci=False)
    images["named"] = f"{reg.host}/app/named:1"

    reg.push_image("app/named-group", "1", image_config("web:staff"), [base, app])
    images["named-group"] = f"{reg.host}/app/named-group:1"

    reg.push_image("app/root", "1", image_config(None), [base])
    images["root"] = f"{reg.host}/app/root:1"

    # The upper layer deletes /etc/passwd: the lower one must not be believed.
    ghost = layer({"etc/passwd": b"ghost:x:1234:1234::/:/bin/sh\n"})
    gone = layer({"etc/.wh.passwd": b""})
    reg.push_image("app/whiteout", "1", image_config("ghost"), [ghost, gone])
    images["whiteout"] = f"{reg.host}/app/whiteout:1"

    # An opaque /etc in the upper layer, with its own passwd: that one counts.
    upper = layer({"etc/.wh..wh..opq": b"", "etc/passwd": b"ghost:x:4321:4321::/:/bin/sh\n"})
    reg.push_image("app/opaque", "1", image_config("ghost"), [ghost, upper])
    images["opaque"] = f"{reg.host}/app/opaque:1"

    # A big incompressible first member, then etc/passwd: the budget decides.
    big = layer({"blob.bin": os.urandom(300_000), "etc/passwd": b"big:x:4242:4242::/:/bin/sh\n"})
    reg.push_image("app/huge", "1", image_config("big"), [big])
    images["huge"] = f"{reg.host}/app/huge:1"

    # An OCI artifact (a Helm chart), not a container image.
    reg.push_image(
        "app/artifact",
        "1",
        b'{"name": "chart"}',
        [layer({"Chart.yaml": b"name: chart\n"})],
        config_type="application/vnd.cncf.helm.config.v1+json",
    )
    images["artifact"] = f"{reg.host}/app/artifact:1"

    # Several platforms, an attestation entry, and amd64 behind a nested index.
    arm_digest, arm_size = reg.push_image("app/multi", None, image_config("2000"), [base])
    amd_digest, amd_size = reg.push_image("app/multi", None, image_config("3000"), [base])
    att_digest, att_size = reg.push_image(
        "app/multi",
        None,
        b'{"predicateType": "x"}',
        [layer({"p.json": b"{}"})],
        config_type="application/vnd.oci.image.config.v1+json",
    )
    nested = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": amd_digest,
                    "size": amd_size,
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()
    nested_digest = reg.push_manifest("app/multi", sha256(nested), nested, OCI_INDEX)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": att_digest,
                    "size": att_size,
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": arm_digest,
                    "size": arm_size,
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
                {
                    "mediaType": OCI_INDEX,
                    "digest": nested_digest,
                    "size": len(nested),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
            ],
        }
    ).encode()
    reg.push_manifest("app/multi", "1", index, OCI_INDEX)
    images["multi"] = f"{reg.host}/app/multi:1"
    return images


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    root = tmp_path_factory.mktemp("registries")
    started: list[Registry] = []
    servers: list[BackgroundServer] = []
    try:
        (root / "anon").mkdir()
        anonymous = start_registry(root / "anon", None)
        started.append(anonymous)
        images = _fill_anonymous(anonymous)

        (root / "basic").mkdir()
        htpasswd = root / "basic" / "htpasswd"
        subprocess.run(
            ["htpasswd", "-B", "-b", "-c", str(htpasswd), *USER],
            check=True,
            capture_output=True,
        )
        basic = start_registry(
            root / "basic", {"htpasswd": {"realm": "hardener-tests", "path": str(htpasswd)}}
        )
        basic.auth = lambda scope: "Basic " + base64.b64encode(":".join(USER).encode()).decode()
        started.append(basic)
        basic.push_image("app/numeric", "1", image_config("1000"), [layer({"a": b"a"})])

        signer = TokenSigner.create()
        (root / "token").mkdir()
        (root / "token" / "root.pem").write_bytes(signer.cert_pem)
        token_requests: list[dict[str, Any]] = []
        token_server = BackgroundServer(token_app(signer, token_requests))
        servers.append(token_server)
        token = start_registry(
            root / "token",
            {
                "token": {
                    "realm": f"http://127.0.0.1:{token_server.port}/token",
                    "service": signer.service,
                    "issuer": signer.issuer,
                    "rootcertbundle": str(root / "token" / "root.pem"),
                }
            },
        )
        token.auth = lambda scope: f"Bearer {signer.token(scope)}"
        started.append(token)
        base = layer({"etc/passwd": PASSWD, "etc/group": GROUP})
        token.push_image("app/named", "1", image_config("web"), [base])

        auth_file = root / "auth.json"
        encoded = base64.b64encode(":".join(USER).encode()).decode()
        auth_file.write_text(
            json.dumps({"auths": {f"http://{basic.host}": {"auth": encoded}}}), encoding="utf-8"
        )
        yield Registries(
            anonymous=anonymous,
            basic=basic,
            token=token,
            token_requests=token_requests,
            signer=signer,
            auth_file=auth_file,
            images=images,
        )
    finally:
        for registry in started:
            registry.stop()
        for server in servers:
            server.stop()


def settings_for(*hosts: str, **changes: Any) -> ImageSettings:
    """Settings that reach each host over plain HTTP (as loopback test registries speak)."""
    registries = {host: RegistrySettings(insecure=True) for host in hosts}
    registries.update(changes.pop("registries", {}))
    return ImageSettings(registries=registries, **changes)
