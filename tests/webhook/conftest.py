"""Shared helpers for the webhook tests: AdmissionReviews built the way the API server sends them,
the objects the parity tests run over, and patch decoding."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DATA = Path(__file__).parent / "data"
PSS_COPY = REPO / "tests" / "data" / "pss"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# kind -> (API group, version, resource): what the API server puts in request.kind/resource.
KINDS: dict[str, tuple[str, str, str]] = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
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


def _documents(path: Path) -> Iterator[Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
        yield from yaml.load_all(text, Loader=_Loader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return


def _expand(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    items = doc.get("items")
    if (
        isinstance(doc.get("kind"), str)
        and doc["kind"].endswith("List")
        and isinstance(items, list)
    ):
        for item in items:
            yield from _expand(item)
        return
    yield doc


def pss_pods() -> list[tuple[str, dict[str, Any]]]:
    """Every distinct pod of the PSS fixtures (``../shared`` when present, and the local copy)."""
    roots = [root for root in (SHARED / "fixtures" / "pss", PSS_COPY) if root.is_dir()]
    seen: set[str] = set()
    pods: list[tuple[str, dict[str, Any]]] = []
    for root in roots:
        for path in sorted(root.glob("*/*/*/*.yaml")):
            for doc in _documents(path):
                if not isinstance(doc, dict) or doc.get("kind") != "Pod":
                    continue
                key = json.dumps(doc, sort_keys=True, default=str)
                if key in seen:
                    continue
                seen.add(key)
                pods.append((str(path.relative_to(root)), as_json(doc)))
    return pods


def corpus_objects() -> list[tuple[str, dict[str, Any]]]:
    """Every Pod and workload in ``../shared/corpus`` (List items too), plus the local samples."""
    found: list[tuple[str, dict[str, Any]]] = []
    sources = [(DATA, DATA)]
    if (SHARED / "corpus").is_dir():
        sources.append((SHARED / "corpus", SHARED / "corpus"))
    for root, base in sources:
        paths = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
        for path in paths:
            for index, doc in enumerate(_documents(path)):
                for obj in _expand(doc):
                    if obj.get("kind") in KINDS and obj.get("kind") not in ("ConfigMap", "Service"):
                        found.append((f"{path.relative_to(base)}#{index}", as_json(obj)))
    return found
