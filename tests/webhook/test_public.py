"""The public surface of ``hardener.webhook`` is exactly its ``__all__``; the rest is private."""

from __future__ import annotations

import types

import hardener.webhook as webhook


def test_public_surface_is_exactly_all() -> None:
    assert len(set(webhook.__all__)) == len(webhook.__all__)
    for name in webhook.__all__:
        assert hasattr(webhook, name), name
    exported = {
        name
        for name, value in vars(webhook).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exported == set(webhook.__all__)


def test_submodules_are_private() -> None:
    modules = {name for name, value in vars(webhook).items() if isinstance(value, types.ModuleType)}
    assert all(name.startswith("_") for name in modules), modules
