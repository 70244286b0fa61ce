"""The public surface of ``hardener.images`` is exactly its ``__all__``."""

from __future__ import annotations

import types

import hardener.images


def test_public_surface_is_exactly_all() -> None:
    exported = {
        name
        for name, value in vars(hardener.images).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exported == set(hardener.images.__all__)
    assert "resolve_images_sync" in exported and "ImageResolver" in exported
