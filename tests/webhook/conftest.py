"""Shared helpers for the webhook tests: AdmissionReviews built the way the API server sends them,
the objects the parity tests run over, and patch decoding.

Every async test here runs twice: on asyncio's own event loop and on uvloop, the loop
``hardener serve`` runs on (the parity tests only once: they check the engine's answers, not
the server).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop
import yaml

from hardener import locate
from tests._shared import copy_of, shared

DATA = Path(__file__).parent / "data"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


# A pytest-asyncio hook (recent versions); with a version that lacks it the tests run once,
# on asyncio's loop.
@pytest.hookimpl(optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.path.name == "test_parity.py":
        return {"asyncio": LOOPS["asyncio"]}
    return LOOPS


# kind -> (API group, version, resource): what the API server puts in request.kind/resource.
KINDS: dict[str, tuple[str, str, str]] = {
    **{k.kind: (k.group, k.version, k.resource) for k in locate.KINDS},
    "ConfigMap": ("", "v1", "configmaps"),
    "Service": ("", "v1", "services"),
}


def admission_review(
    obj: Any,
    *,
    operation: str = "CREATE",
    namespace: str | None = "default",
    sub_resource: str | None = None,
    old: Any = None,
    kind: str | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    """An ``admission.k8s.io/v1`` AdmissionReview as the API server sends it."""
    kind = kind or obj["kind"]
    group, version, resource = KINDS[kind]
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    name = metadata.get("name", "") if isinstance(metadata, dict) else ""
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": name,
        "operation": operation,
        "userInfo": {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "uid": "0b7e1f8e-1f6b-4a8e-9c1e-3f1d2a0b7c11",
            "groups": ["system:serviceaccounts", "system:authenticated"],
        },
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {
            "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
            "apiVersion": "meta.k8s.io/v1",
        },
    }
    if namespace is not None:
        request["namespace"] = namespace
    if sub_resource:
        request["subResource"] = sub_resource
        request["requestSubResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def no_lookups(settings: Any, lookups: Any) -> None:
    """An ``image_resolver`` for ``create_app`` that learns no image facts: every image is
    left to ``images.unknown``, as the engine decides without facts (and nothing is asked of
    a registry)."""
    return None


def decode_patch(response: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The JSONPatch of an AdmissionResponse, or None when it carries none."""
    if "patch" not in response:
        assert "patchType" not in response
        return None
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"], validate=True))
    assert isinstance(ops, list) and ops, "a patch is only sent when it is not empty"
    return ops


def as_json(value: Any) -> Any:
    """What the API server would send for a YAML document (timestamps and the like as text)."""
    return json.loads(json.dumps(value, default=str))


def documents(text: str) -> list[Any]:
    """The YAML documents of a text (none when it does not parse)."""
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return []


def objects_of(doc: Any) -> Iterator[dict[str, Any]]:
    """The objects hardener's webhook is sent for in a document: List items one by one."""
    if not isinstance(doc, dict):
        return
    items = doc.get("items")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for item in items:
            yield from objects_of(item)
        return
    if kind in KINDS and kind not in ("ConfigMap", "Service"):
        yield doc


def _texts(root: Path, pattern: str) -> list[tuple[str, str]]:
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for path in sorted(root.glob(pattern)):
        if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if text not in seen:
            seen.add(text)
            found.append((str(path.relative_to(root)), text))
    return found


def pss_files() -> list[tuple[str, str]]:
    """Every distinct PSS fixture file (``../shared`` when present, and the local copy)."""
    found: dict[str, tuple[str, str]] = {}
    for root in (shared("fixtures/pss"), copy_of("fixtures/pss")):
        if root is not None:
            for name, text in _texts(root, "*/*/*/*.yaml"):
                found.setdefault(text, (name, text))
    return list(found.values())


def corpus_files() -> list[tuple[str, str]]:
    """Every file of ``../shared/corpus`` (when present) and the local samples."""
    found = [(f"data/{name}", text) for name, text in _texts(DATA, "**/*")]
    corpus = shared("corpus")
    if corpus is not None:
        found += _texts(corpus, "**/*")
    return found


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``configure_logging`` (and so ``hardener serve``) points the hardener loggers at its own
    handler; put them back afterwards."""
    names = ("hardener", "aiohttp.server", "aiohttp.web", "asyncio")
    saved = {
        name: (
            list(logging.getLogger(name).handlers),
            logging.getLogger(name).propagate,
            logging.getLogger(name).level,
            list(logging.getLogger(name).filters),
        )
        for name in names
    }
    yield
    for name, (handlers, propagate, level, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)
        logger.filters[:] = filters


# The loopback registries of the image tests (Debian's docker-registry), for the webhook's
# lookups.
from tests.images.conftest import registries  # noqa: E402, F401
