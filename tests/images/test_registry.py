"""Image lookups against real registries (Debian's docker-registry) on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardener.images import ImageResolver
from tests.images.conftest import Registries, settings_for

pytestmark = pytest.mark.asyncio


async def test_anonymous_lookups_read_user_ids_and_volumes(
    registries: Registries, tmp_path: Path
) -> None:
    images = registries.images
    settings = settings_for(registries.anonymous.host)
    async with ImageResolver(settings, cache_dir=tmp_path) as resolver:
        facts = await resolver.lookup_many(images.values())
    for name, image in images.items():
        print(name, facts[image])
