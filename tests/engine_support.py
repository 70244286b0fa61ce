"""How the engine and rule tests build pods and plan them.

These tests are about the mechanics, not about images: they run with no image facts under
``images.unknown: assume-nonroot`` (what every image got before the engine knew about images).
The image decisions have their own tests in ``test_engine_images.py``.
"""

from __future__ import annotations

from typing import Any

import jsonpatch

import hardener
from hardener.config import Config
from hardener.model import Plan

ASSUME_NONROOT = {"unknown": "assume-nonroot"}


def parse_config(data: Any, source: str = "<config>") -> Config:
    if isinstance(data, dict) and "images" not in data:
        data = {**data, "images": ASSUME_NONROOT}
    return hardener.parse_config(data, source)


DEFAULT = parse_config({})


def plan(obj: Any, config: Config | None = None, **kwargs: Any) -> Plan:
    return hardener.plan(obj, config or DEFAULT, **kwargs)


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": list(containers) or [{"name": "app", "image": "nginx"}], **spec},
    }


def hardened(obj: Any, config: Any = None, **kwargs: Any) -> Any:
    result = plan(obj, config, **kwargs)
    patched = jsonpatch.apply_patch(obj, result.ops)
    assert plan(patched, config, **kwargs).ops == [], "hardening must be idempotent"
    return patched


def template(kind: str, spec: dict[str, Any], api: str = "apps/v1") -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": "w"},
        "spec": {"template": {"metadata": {}, "spec": spec}},
    }


POD_SPEC = {"containers": [{"name": "app", "image": "nginx"}]}
