"""The image cache against the real registry: warm runs ask nothing, offline runs use the
cache and the table, corrupt entries are ignored, concurrent lookups share one flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hardener.config import RegistrySettings
from hardener.images import ImageResolver
from tests.conftest import free_port
from tests.images.conftest import Registries, settings_for

pytestmark = pytest.mark.asyncio


async def test_a_warm_disk_cache_answers_without_the_network(
    registries: Registries, tmp_path: Path
) -> None:
    image = registries.images["named"]
    settings = settings_for(registries.anonymous.host)
    async with ImageResolver(settings, cache_dir=tmp_path) as cold:
        first = await cold.lookup(image)
    assert (
        first.source == "registry" and cold.requests >= 5
    )  # probe, HEAD, manifest, config, layers

    async with ImageResolver(settings, cache_dir=tmp_path) as warm:
        second = await warm.lookup(image)
    assert (second.source, second.user, second.uid, second.gid) == ("cache", "web", 101, 102)
    assert second.digest == first.digest
    assert warm.requests == 0, "tag within its TTL and facts by digest: nothing to ask"
    assert warm.metrics.cache_hits == {"tag": 1, "facts": 1}
    assert not list(tmp_path.rglob(".tmp-*")), "no temporary file is left behind"

    # Past the tag's TTL only the tag is asked again (probe and HEAD), never the content.
    async with ImageResolver(settings, cache_dir=tmp_path, tag_ttl=0) as expired:
        third = await expired.lookup(image)
    assert third.source == "cache" and expired.requests == 2


async def test_offline_uses_the_cache_then_the_table_then_says_unknown(
    registries: Registries, tmp_path: Path
) -> None:
    image = registries.images["numeric"]
    settings = settings_for(registries.anonymous.host)
    async with ImageResolver(settings, cache_dir=tmp_path) as resolver:
        await resolver.lookup(image)

    async with ImageResolver(settings, cache_dir=tmp_path, offline=True, tag_ttl=0) as offline:
        facts = await offline.lookup_many(
            [image, "memcached:1.6", f"{registries.anonymous.host}/app/root:1"]
        )
    assert offline.requests == 0
    cached = facts[image]
    assert (cached.source, cached.uid) == ("cache", 1000)
    assert "lookups are off (offline); from the cache" in cached.detail
    memcached = facts["memcached:1.6"]
    assert (memcached.source, memcached.user, memcached.uid) == ("table", "memcache", 11211)
    assert "docker-library/memcached" in memcached.detail
    never = facts[f"{registries.anonymous.host}/app/root:1"]
    assert never.source == "unknown" and "not cached and not in the offline table" in never.detail

    # images.lookup: false is the same as offline.
    async with ImageResolver(
        settings_for(registries.anonymous.host, lookup=False), cache_dir=tmp_path
    ) as resolver:
        assert (await resolver.lookup(image)).source == "cache"
        assert resolver.requests == 0


async def test_corrupt_cache_entries_are_ignored(registries: Registries, tmp_path: Path) -> None:
    image = registries.images["numeric"]
    settings = settings_for(registries.anonymous.host)
    async with ImageResolver(settings, cache_dir=tmp_path) as resolver:
        await resolver.lookup(image)
    entries = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.parent.name for p in entries} == {"sha256", "facts", "tags"}
    for path in entries:
        path.write_bytes(b'{"user": 5, broken')
    async with ImageResolver(settings, cache_dir=tmp_path) as resolver:
        facts = await resolver.lookup(image)
    assert (facts.source, facts.uid) == ("registry", 1000)
    async with ImageResolver(settings, cache_dir=tmp_path) as resolver:
        assert (await resolver.lookup(image)).source == "cache", "the bad entries were replaced"


async def test_a_failed_registry_falls_back_to_a_stale_cache_entry(
    registries: Registries, tmp_path: Path
) -> None:
    image = registries.images["named"]
    host = registries.anonymous.host
    async with ImageResolver(settings_for(host), cache_dir=tmp_path) as resolver:
        await resolver.lookup(image)
    dead = RegistrySettings(mirror=f"http://127.0.0.1:{free_port()}", insecure=True)
    async with ImageResolver(
        settings_for(registries={host: dead}), cache_dir=tmp_path, tag_ttl=0
    ) as resolver:
        facts = await resolver.lookup(image)
    assert (facts.source, facts.uid) == ("cache", 101)
    assert "cannot be reached" in facts.detail and "from the cache" in facts.detail


async def test_concurrent_lookups_of_one_image_share_one_flight(
    registries: Registries,
) -> None:
    host = registries.anonymous.host
    spellings = [f"{host}/app/named:1", f"{host}/app/named"]  # :latest is another tag
    async with ImageResolver(settings_for(host), cache_dir=None) as single:
        await single.lookup(spellings[0])
    async with ImageResolver(settings_for(host), cache_dir=None) as resolver:
        results = await asyncio.gather(*(resolver.lookup(spellings[0]) for _ in range(50)))
    assert {r.uid for r in results} == {101}
    assert resolver.requests == single.requests, "50 pods of one rollout ask the registry once"
    assert resolver.metrics.outcomes["registry"] == 50


async def test_a_bad_image_string_is_unknown_and_says_why(tmp_path: Path) -> None:
    async with ImageResolver(settings_for(), cache_dir=tmp_path) as resolver:
        facts = await resolver.lookup_many(["$(IMAGE)", "{{ .Values.image }}", "Nginx:1"])
    assert all(f.source == "unknown" for f in facts.values())
    assert "variable reference" in facts["$(IMAGE)"].detail
    assert "lower-case" in facts["Nginx:1"].detail
    assert resolver.requests == 0 and resolver.metrics.failures["reference"] == 3
