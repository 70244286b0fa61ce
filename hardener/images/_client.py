"""The registry client: the OCI distribution API over aiohttp, read-only.

For one image it resolves the tag to a digest with ``HEAD`` (Docker Hub does not count HEADs
against its pull limit), reads the manifest (an index picks the configured platform, skipping
``unknown/unknown`` attestation entries and descending into nested indexes), reads the config
blob, and, when ``config.User`` is a name, streams layers top first until ``/etc/passwd`` (and
``/etc/group`` for a group name) turns up, within ``max-layer-bytes``. Every manifest and blob is
checked against its digest before it is believed.

Authentication follows the registry's ``Www-Authenticate`` challenge: ``Bearer`` asks the
token server named by ``realm`` (anonymously, or with the auth file's user and password);
``Basic`` sends the auth file's user and password. A token is only ever sent to the origin that
challenged for it: a redirect to blob storage goes bare. ``429`` is retried after
``Retry-After`` when that fits the budget; other failures raise ``LookupFailed`` with a detail
that says what to do.

Each registry origin is probed once (``GET /v2/``); when it cannot be reached, that failure is
remembered for ``failure_ttl`` seconds, so an offline machine pays one timeout per host, and the
lookups queued behind the probe fail at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from hardener.config import ImageSettings
from hardener.image_facts import parse_image_user
from hardener.images._auth import Challenge, Credentials, basic_header, parse_challenge
from hardener.images._cache import CachedFacts, ImageCache
from hardener.images._layers import (
    LayerDecoder,
    LayerFormatError,
    TarScan,
    group_entry,
    passwd_entry,
)
from hardener.images._reference import Reference
from hardener.model import HardenerError

__all__ = ["MANIFEST_ACCEPT", "LookupFailed", "RegistryClient"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
MANIFEST_ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
CONFIG_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
_MAX_DOCUMENT = 4 * 1024 * 1024
"""Manifests and configs larger than this are refused (real ones are a few KiB)."""
_MAX_REDIRECTS = 5
_MAX_429_RETRIES = 2
_MAX_RETRY_AFTER = 5.0
_CHUNK = 64 * 1024


class LookupFailed(HardenerError):
    """An image lookup that failed; ``detail`` says why and what to do next.

    ``host_down`` marks failures of the registry host itself (unreachable, timed out), which
    are remembered per host so that further lookups do not wait for them again."""

    def __init__(self, detail: str, *, host_down: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.host_down = host_down


@dataclass
class _HostState:
    challenge: Challenge | None = None
    failed_at: float | None = None
    failure: str = ""
    probed: bool = False


def _digest_of(data: bytes, digest: str) -> bool:
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha384", "sha512"):
        return False
    return hashlib.new(algorithm, data).hexdigest() == expected


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _origin(url: URL) -> str:
    return f"{url.scheme}://{url.raw_authority}"


class RegistryClient:
    """Looks images up; one per resolver (it holds the tokens and the per-host state)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: ImageSettings,
        credentials: Credentials,
        cache: ImageCache,
        *,
        failure_ttl: float = 30.0,
    ) -> None:
        self._session = session
        self._settings = settings
        self._credentials = credentials
        self._cache = cache
        self._failure_ttl = failure_ttl
        self._hosts: dict[str, _HostState] = {}
        self._host_locks: dict[str, asyncio.Lock] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._challenges: dict[str, Challenge] = {}
        self._ssl: dict[str, ssl.SSLContext] = {}
        self.requests = 0

    # -- where to send requests ---------------------------------------------------------
    def base_url(self, ref: Reference) -> URL:
        settings = self._settings.registries.get(ref.registry)
        if settings is not None and settings.mirror:
            return URL(settings.mirror)
        scheme = "http" if settings is not None and settings.insecure else "https"
        return URL(f"{scheme}://{ref.api_host}")

    def _ssl_for(self, ref: Reference) -> ssl.SSLContext | bool:
        settings = self._settings.registries.get(ref.registry)
        if settings is None or settings.ca_file is None:
            return True
        if settings.ca_file not in self._ssl:
            try:
                self._ssl[settings.ca_file] = ssl.create_default_context(cafile=settings.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise LookupFailed(
                    f"images.registries.{ref.registry}.ca-file {settings.ca_file!r} cannot be "
                    f"loaded: {exc}; fix the path in the config"
                ) from exc
        return self._ssl[settings.ca_file]

    def _url(self, ref: Reference, kind: str, reference: str) -> URL:
        base = self.base_url(ref)
        path = base.path.rstrip("/")
        return base.with_path(f"{path}/v2/{ref.repository}/{kind}/{reference}", encoded=False)

    # -- host probe -----------------------------------------------------------------------
    async def _probe(self, ref: Reference) -> _HostState:
        base = self.base_url(ref)
        origin = _origin(base)
        state = self._hosts.setdefault(origin, _HostState())
        lock = self._host_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if state.failed_at is not None:
                if time.monotonic() - state.failed_at < self._failure_ttl:
                    raise LookupFailed(
                        f"registry {origin} failed moments ago ({state.failure}); not asked "
                        "again for now",
                        host_down=True,
                    )
                state.failed_at, state.probed = None, False
            if state.probed:
                return state
            url = base.with_path(base.path.rstrip("/") + "/v2/", encoded=False)
            # The probe gives up before the lookup's own timeout, so that an unreachable host
            # is recorded as such (and not asked again) instead of as one slow lookup.
            probe_timeout = self._settings.timeout_seconds * 0.8
            try:
                async with asyncio.timeout(probe_timeout):
                    self.requests += 1
                    async with self._session.get(
                        url, allow_redirects=False, ssl=self._ssl_for(ref)
                    ) as response:
                        await response.read()
                        header = response.headers.get("Www-Authenticate")
                        if response.status == 401 and header:
                            state.challenge = parse_challenge(header)
            except TimeoutError as exc:
                state.failed_at, state.failure = time.monotonic(), "timed out"
                raise LookupFailed(
                    f"registry {origin} did not answer within {probe_timeout:g}s; check the "
                    "network or set images.lookup: false",
                    host_down=True,
                ) from exc
            except aiohttp.ClientError as exc:
                state.failed_at, state.failure = time.monotonic(), str(exc) or type(exc).__name__
                raise LookupFailed(
                    f"registry {origin} cannot be reached ({state.failure}); check the network, "
                    "the mirror in images.registries, or set images.lookup: false",
                    host_down=True,
                ) from exc
            state.probed = True
            return state

    # -- authentication -------------------------------------------------------------------
    async def _authorization(
        self, ref: Reference, origin: str, challenge: Challenge | None
    ) -> str | None:
        if challenge is None:
            return None
        host = URL(origin).raw_authority or ""
        creds = self._credentials.for_host(host, ref.registry)
        if challenge.scheme == "basic":
            if creds is None:
                raise LookupFailed(
                    f"registry {origin} asks for a user and password for {ref.name}; add them "
                    "to the auth file ($REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json)"
                )
            return basic_header(creds)
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise LookupFailed(
                f"registry {origin} asks for {challenge.scheme!r} authentication, which "
                "hardener does not speak (Bearer and Basic only)"
            )
        scope = challenge.params.get("scope") or f"repository:{ref.repository}:pull"
        key = (origin, scope)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return f"Bearer {cached[0]}"
        realm = URL(challenge.params["realm"])
        query = {"scope": scope}
        if "service" in challenge.params:
            query["service"] = challenge.params["service"]
        self.requests += 1
        async with self._session.get(
            realm.update_query(query),
            headers={} if creds is None else {"Authorization": basic_header(creds)},
            allow_redirects=False,
        ) as response:
            body = await response.content.read(_MAX_DOCUMENT)
            if response.status != 200:
                who = "anonymously" if creds is None else f"as {creds[0]}"
                raise LookupFailed(
                    f"token server {realm} refused a pull token for {ref.name} {who} "
                    f"(HTTP {response.status}); check the credentials in the auth file"
                )
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
            expires = float(data.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise LookupFailed(f"token server {realm} answered without a token")
        # Tokens live at least 60 s by the token spec; renew a little early.
        self._tokens[key] = (token, time.monotonic() + max(expires, 60.0) - 10.0)
        return f"Bearer {token}"

    # -- one request, with auth, redirects and 429 ---------------------------------------
    @asynccontextmanager
    async def _open(
        self, ref: Reference, method: str, url: URL, accept: str | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        state = await self._probe(ref)
        home = _origin(url)
        challenges = self._challenges  # per origin, learned from probes and 401s
        if state.challenge is not None:
            challenges.setdefault(home, state.challenge)
        tried_auth: set[str] = set()
        hops = retries = 0
        while True:
            origin = _origin(url)
            headers = {"Accept": accept} if accept else {}
            # A token goes only to the origin that challenged for it, never along a redirect.
            auth = await self._authorization(ref, origin, challenges.get(origin))
            if auth is not None:
                headers["Authorization"] = auth
            self.requests += 1
            try:
                response = await self._session.request(
                    method,
                    url,
                    headers=headers,
                    allow_redirects=False,
                    ssl=self._ssl_for(ref) if origin == home else True,
                )
            except aiohttp.ClientError as exc:
                raise LookupFailed(f"{method} {url} failed: {exc or type(exc).__name__}") from exc
            try:
                status = response.status
                if status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    hops += 1
                    if hops > _MAX_REDIRECTS:
                        raise LookupFailed(f"{method} {url}: more than {_MAX_REDIRECTS} redirects")
                    url = url.join(URL(response.headers["Location"]))
                    continue
                if status == 401 and origin not in tried_auth:
                    challenge = parse_challenge(response.headers.get("Www-Authenticate", ""))
                    if challenge is not None:
                        tried_auth.add(origin)
                        challenges[origin] = challenge
                        if auth is not None:  # the token was refused: ask for a fresh one
                            for key in [k for k in self._tokens if k[0] == origin]:
                                del self._tokens[key]
                        continue
                if status == 429:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    if retries < _MAX_429_RETRIES and wait is not None and wait <= _MAX_RETRY_AFTER:
                        retries += 1
                        await asyncio.sleep(wait)
                        continue
                    after = "" if wait is None else f", retry after {wait:g}s"
                    raise LookupFailed(
                        f"registry {home} rate-limits this client (HTTP 429{after}); log in "
                        "(auth file) or use a mirror (images.registries)"
                    )
                if status == 401:
                    raise LookupFailed(
                        f"registry {origin} refused {ref.name} (HTTP 401); add credentials to "
                        "the auth file ($REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json)"
                    )
                if status == 403:
                    raise LookupFailed(f"registry {origin} forbids reading {ref.name} (HTTP 403)")
                if status == 404:
                    raise LookupFailed(
                        f"{ref.name}: {url.path.rsplit('/', 1)[-1]} not found in the registry "
                        "(HTTP 404); check the image name and tag"
                    )
                if status != 200:
                    raise LookupFailed(f"{method} {url} answered HTTP {status}")
                yield response
                return
            finally:
                response.release()

    async def _document(
        self, ref: Reference, kind: str, digest: str, accept: str | None
    ) -> tuple[bytes, str]:
        """A manifest or config blob by digest, verified; with its Content-Type."""
        async with self._open(ref, "GET", self._url(ref, kind, digest), accept) as response:
            body = await response.content.read(_MAX_DOCUMENT + 1)
            media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if len(body) > _MAX_DOCUMENT:
            raise LookupFailed(f"{ref.name}: {digest} is larger than {_MAX_DOCUMENT} bytes")
        if not _digest_of(body, digest):
            raise LookupFailed(
                f"{ref.name}: the content served for {digest} does not match that digest "
                "(a broken mirror or proxy?); not trusted"
            )
        return body, media_type

    # -- the lookup -----------------------------------------------------------------------
    async def resolve_digest(self, ref: Reference) -> str:
        """The digest ``ref`` names: its own, else what the registry says the tag points to."""
        if ref.digest is not None:
            return ref.digest
        url = self._url(ref, "manifests", ref.reference)
        async with self._open(ref, "HEAD", url, MANIFEST_ACCEPT) as response:
            digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        # No digest header: read the manifest and hash it ourselves.
        async with self._open(ref, "GET", url, MANIFEST_ACCEPT) as response:
            body = await response.content.read(_MAX_DOCUMENT)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    async def image_facts(self, ref: Reference, digest: str) -> tuple[CachedFacts, bool]:
        """User, ids and volumes of the image at ``digest`` on the configured platform, and
        whether they are final (a name that could not be resolved is worth another try)."""
        platform = self._settings.platform
        manifest = await self._platform_manifest(ref, digest, platform, depth=0)
        config_desc = manifest.get("config")
        if not isinstance(config_desc, dict) or not isinstance(config_desc.get("digest"), str):
            raise LookupFailed(f"{ref}: the manifest has no config descriptor")
        config_type = config_desc.get("mediaType")
        if config_type not in CONFIG_TYPES:
            raise LookupFailed(
                f"{ref} is not a container image: its config is {config_type!r} (an OCI "
                "artifact?); nothing to learn about its user"
            )
        config_digest = config_desc["digest"]
        blob = self._cache.blob(config_digest)
        if blob is None:
            blob, _ = await self._document(ref, "blobs", config_digest, None)
            self._cache.put_blob(config_digest, blob)
        try:
            config_json = json.loads(blob)
        except ValueError as exc:
            raise LookupFailed(f"{ref}: the image config is not JSON ({exc})") from exc
        inner = config_json.get("config") if isinstance(config_json, dict) else None
        inner = inner if isinstance(inner, dict) else {}  # "config" may be null (image-spec)
        user = inner.get("User") or ""
        if not isinstance(user, str):
            raise LookupFailed(f"{ref}: config.User is not a string")
        volumes = inner.get("Volumes") or {}
        volume_paths = tuple(sorted(volumes)) if isinstance(volumes, dict) else ()
        uid, gid, detail, final = await self._ids(ref, user, manifest)
        return CachedFacts(user, uid, gid, volume_paths, config_digest, detail), final

    async def _platform_manifest(
        self, ref: Reference, digest: str, platform: str, depth: int
    ) -> dict[str, Any]:
        body, media_type = await self._document(ref, "manifests", digest, MANIFEST_ACCEPT)
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise LookupFailed(f"{ref}: manifest {digest} is not JSON") from exc
        if not isinstance(document, dict):
            raise LookupFailed(f"{ref}: manifest {digest} is not a JSON object")
        media_type = media_type or str(document.get("mediaType") or "")
        if media_type in MANIFEST_TYPES:
            return document
        if media_type not in INDEX_TYPES:
            raise LookupFailed(
                f"{ref}: the registry answered a manifest of type {media_type or 'unknown'!r}, "
                "not an OCI or Docker v2 image manifest or index"
            )
        if depth >= 3:
            raise LookupFailed(f"{ref}: indexes nested more than 3 deep")
        chosen = _pick_platform(document.get("manifests"), platform)
        if chosen is None:
            offered = sorted(
                {
                    f"{p.get('os')}/{p.get('architecture')}"
                    for m in document.get("manifests") or []
                    if isinstance(m, dict) and isinstance(p := m.get("platform"), dict)
                }
                - {"unknown/unknown"}
            )
            raise LookupFailed(
                f"{ref} has no {platform} image (it offers {', '.join(offered) or 'none'}); "
                "set images.platform"
            )
        return await self._platform_manifest(ref, chosen, platform, depth + 1)

    async def _ids(
        self, ref: Reference, user: str, manifest: dict[str, Any]
    ) -> tuple[int | None, int | None, str, bool]:
        """uid and gid for ``config.User``; names are looked up in the image's files."""
        parsed = parse_image_user(user)
        group = user.split(":", 1)[1] if ":" in user else None
        gid: int | None = None
        group_name: str | None = None
        if group is not None:
            if group.isdigit():
                gid = int(group)
            elif group:
                group_name = group
        if parsed.name is None and group_name is None:
            return parsed.uid, gid, "", True
        wanted = set()
        if parsed.name is not None:
            wanted.add("etc/passwd")
        if group_name is not None:
            wanted.add("etc/group")
        files, problem = await self._read_files(ref, manifest, frozenset(wanted))
        uid = parsed.uid
        notes: list[str] = []
        if parsed.name is not None:
            entry = (
                passwd_entry(files["etc/passwd"], parsed.name) if "etc/passwd" in files else None
            )
            if entry is None:
                why = problem or (
                    "not in the image's /etc/passwd"
                    if "etc/passwd" in files
                    else "the image has no /etc/passwd"
                )
                notes.append(f"user {parsed.name!r} not resolved: {why}")
            else:
                uid = entry[0]
                if group is None:
                    gid = entry[1]
                notes.append(f"user {parsed.name!r} is uid {uid} in the image's /etc/passwd")
        if group_name is not None:
            found = group_entry(files["etc/group"], group_name) if "etc/group" in files else None
            if found is None:
                notes.append(f"group {group_name!r} not resolved: {problem or 'not in /etc/group'}")
            else:
                gid = found
        return uid, gid, "; ".join(notes), not problem

    async def _read_files(
        self, ref: Reference, manifest: dict[str, Any], wanted: frozenset[str]
    ) -> tuple[dict[str, bytes], str]:
        """The wanted files as the image's merged filesystem shows them, top layer first,
        and a note when that could not be finished."""
        layers = [d for d in manifest.get("layers") or [] if isinstance(d, dict)]
        budget = self._settings.max_layer_bytes
        found: dict[str, bytes] = {}
        open_paths = set(wanted)
        for layer in reversed(layers):
            digest = layer.get("digest")
            if not isinstance(digest, str):
                return found, "a layer descriptor has no digest"
            media_type = str(layer.get("mediaType") or "")
            if "zstd" in media_type:
                return found, f"layer {digest} is zstd-compressed, which this Python cannot read"
            size = layer.get("size")
            if isinstance(size, int) and size > budget:
                return found, (
                    f"layer {digest} ({size} bytes) is beyond the remaining "
                    f"images.max-layer-bytes budget ({budget} bytes)"
                )
            scan = TarScan(frozenset(open_paths))
            try:
                read = await self._scan_layer(ref, digest, scan, budget)
            except LookupFailed as exc:
                return found, exc.detail
            budget -= read
            for path, data in scan.found.items():
                found[path] = data
                open_paths.discard(path)
            for path, target in scan.links.items():
                if path in open_paths:
                    return found, f"/{path} is a link to {target} in layer {digest}"
            open_paths -= scan.hidden
            if not open_paths:
                break
        return found, ""

    async def _scan_layer(self, ref: Reference, digest: str, scan: TarScan, budget: int) -> int:
        hasher = hashlib.new(digest.partition(":")[0]) if digest.startswith("sha") else None
        if hasher is None:
            raise LookupFailed(f"{ref}: layer digest {digest} uses an unknown algorithm")
        decoder = LayerDecoder(max_output=max(budget, 1) * 16)
        read = 0
        async with self._open(ref, "GET", self._url(ref, "blobs", digest)) as response:
            async for chunk in response.content.iter_chunked(_CHUNK):
                read += len(chunk)
                if read > budget:
                    raise LookupFailed(
                        f"{ref}: reading layers for /etc/passwd hit images.max-layer-bytes "
                        f"({self._settings.max_layer_bytes} bytes) in layer {digest}"
                    )
                hasher.update(chunk)
                try:
                    scan.feed(decoder.feed(chunk))
                except LayerFormatError as exc:
                    raise LookupFailed(f"{ref}: layer {digest}: {exc}") from exc
        try:
            scan.feed(decoder.finish())
        except LayerFormatError as exc:
            raise LookupFailed(f"{ref}: layer {digest}: {exc}") from exc
        if hasher.hexdigest() != digest.partition(":")[2]:
            raise LookupFailed(
                f"{ref}: layer {digest} does not match its digest; its files are not trusted"
            )
        return read


def _pick_platform(entries: Any, platform: str) -> str | None:
    """The digest of the index entry for ``os/arch[/variant]``; attestation entries
    (``unknown/unknown``) and unknown media types are skipped."""
    want_os, want_arch, *rest = platform.split("/")
    want_variant = rest[0] if rest else None
    fallback: str | None = None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        if entry.get("mediaType") not in (*INDEX_TYPES, *MANIFEST_TYPES, None):
            continue
        annotations = entry.get("annotations") or {}
        if (
            isinstance(annotations, dict)
            and annotations.get("vnd.docker.reference.type") == "attestation-manifest"
        ):
            continue
        found = entry.get("platform")
        if not isinstance(found, dict):
            continue
        if found.get("os") != want_os or found.get("architecture") != want_arch:
            continue
        variant = found.get("variant")
        if want_variant is None or variant == want_variant:
            return str(entry["digest"])
        if variant is None and fallback is None:
            fallback = str(entry["digest"])
    return fallback
