"""The image cache: in memory, and on disk under ``images.cache-dir``.

Three kinds of entry::

    blobs/sha256/<hex>               config blobs, by digest; re-hashed when read
    facts/<hex>-<os>_<arch>.json     what a manifest digest means on a platform (user, ids,
                                     volumes): content-addressed, so it never goes stale
    tags/<sha256 of name:tag>.json   tag -> digest, with the time it was learned

Writes go to a temporary file in the same directory and are renamed into place, so a reader
never sees half an entry; an entry that does not parse or hash is ignored (and looked up again).
A cache that cannot be written (read-only home) only costs speed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CachedFacts", "ImageCache"]


@dataclass(frozen=True)
class CachedFacts:
    user: str
    uid: int | None
    gid: int | None
    volumes: tuple[str, ...]
    config_digest: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "uid": self.uid,
            "gid": self.gid,
            "volumes": list(self.volumes),
            "config_digest": self.config_digest,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Any) -> CachedFacts | None:
        if not isinstance(data, dict):
            return None
        user, uid, gid, volumes = (data.get(k) for k in ("user", "uid", "gid", "volumes"))
        digest, detail = data.get("config_digest"), data.get("detail", "")
        if (
            not isinstance(user, str)
            or not all(v is None or (isinstance(v, int) and v >= 0) for v in (uid, gid))
            or not isinstance(volumes, list)
            or not all(isinstance(v, str) for v in volumes)
            or not isinstance(digest, str)
            or not isinstance(detail, str)
        ):
            return None
        return cls(user, uid, gid, tuple(volumes), digest, detail)


def _hex(digest: str) -> str | None:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        return None
    return value


class ImageCache:
    """Memory first, then disk (``directory`` is ``None``: memory only)."""

    def __init__(self, directory: Path | None, tag_ttl: float = 60.0) -> None:
        self.directory = directory
        self.tag_ttl = tag_ttl
        self._blobs: dict[str, bytes] = {}
        self._facts: dict[str, CachedFacts] = {}
        self._tags: dict[str, tuple[str, float]] = {}

    # -- config blobs -------------------------------------------------------------------
    def blob(self, digest: str) -> bytes | None:
        if digest in self._blobs:
            return self._blobs[digest]
        value = _hex(digest)
        if value is None or self.directory is None:
            return None
        data = self._read(self.directory / "blobs" / "sha256" / value)
        if data is None or hashlib.sha256(data).hexdigest() != value:
            return None
        self._blobs[digest] = data
        return data

    def put_blob(self, digest: str, data: bytes) -> None:
        self._blobs[digest] = data
        value = _hex(digest)
        if value is not None and self.directory is not None:
            self._write(self.directory / "blobs" / "sha256" / value, data)

    # -- facts per manifest digest and platform ------------------------------------------
    def _facts_key(self, digest: str, platform: str) -> str:
        return f"{digest}|{platform}"

    def facts(self, digest: str, platform: str) -> CachedFacts | None:
        key = self._facts_key(digest, platform)
        if key in self._facts:
            return self._facts[key]
        value = _hex(digest)
        if value is None or self.directory is None:
            return None
        name = f"{value}-{platform.replace('/', '_')}.json"
        data = self._read(self.directory / "facts" / name)
        try:
            found = CachedFacts.from_json(json.loads(data)) if data is not None else None
        except ValueError:
            found = None
        if found is not None:
            self._facts[key] = found
        return found

    def put_facts(self, digest: str, platform: str, facts: CachedFacts) -> None:
        self._facts[self._facts_key(digest, platform)] = facts
        value = _hex(digest)
        if value is not None and self.directory is not None:
            name = f"{value}-{platform.replace('/', '_')}.json"
            self._write(
                self.directory / "facts" / name, json.dumps(facts.to_json()).encode("utf-8")
            )

    # -- tag -> digest ----------------------------------------------------------------
    def tag(self, name: str, *, any_age: bool = False) -> tuple[str, float] | None:
        """The digest a tag pointed to and when that was learned; past the TTL only when
        ``any_age`` (offline, or the registry failed)."""
        found = self._tags.get(name)
        if found is None and self.directory is not None:
            data = self._read(self._tag_path(name))
            try:
                parsed = json.loads(data) if data is not None else None
            except ValueError:
                parsed = None
            if (
                isinstance(parsed, dict)
                and parsed.get("name") == name
                and isinstance(parsed.get("digest"), str)
                and isinstance(parsed.get("time"), int | float)
            ):
                found = (parsed["digest"], float(parsed["time"]))
                self._tags[name] = found
        if found is None:
            return None
        if not any_age and time.time() - found[1] > self.tag_ttl:
            return None
        return found

    def put_tag(self, name: str, digest: str) -> None:
        now = time.time()
        self._tags[name] = (digest, now)
        if self.directory is not None:
            text = json.dumps({"name": name, "digest": digest, "time": now})
            self._write(self._tag_path(name), text.encode("utf-8"))

    def _tag_path(self, name: str) -> Path:
        assert self.directory is not None
        return self.directory / "tags" / f"{hashlib.sha256(name.encode()).hexdigest()}.json"

    # -- files --------------------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except OSError:
            return None

    def _write(self, path: Path, data: bytes) -> None:
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
