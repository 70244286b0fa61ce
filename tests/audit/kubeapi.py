"""A small stand-in for the Kubernetes API server, for tests that drive the real client.

It serves the real paths and JSON shapes (see data/README.md for where each comes from):
paged lists with ``limit`` and ``metadata.continue``, single GETs, Status objects for 401, 403
and 404, server-side apply PATCH and DELETE of MutatingWebhookConfigurations. It checks the
bearer token like a server does, and records every request so tests can assert what the
client asked for (and that an audit never writes).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

DATA = Path(__file__).parent / "data"
TOKEN = "audit-reader-token"

# plural -> (group, version, list kind, data file)
COLLECTIONS: dict[str, tuple[str, str, str, str]] = {
    "deployments": ("apps", "v1", "DeploymentList", "deployments.json"),
    "statefulsets": ("apps", "v1", "StatefulSetList", "statefulsets.json"),
    "daemonsets": ("apps", "v1", "DaemonSetList", "daemonsets.json"),
    "replicasets": ("apps", "v1", "ReplicaSetList", "replicasets.json"),
    "jobs": ("batch", "v1", "JobList", "jobs.json"),
    "cronjobs": ("batch", "v1", "CronJobList", "cronjobs.json"),
    "pods": ("", "v1", "PodList", "pods.json"),
}
_COLLECTION = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[a-z]+)$"
)
_NAMESPACE = re.compile(r"^/api/v1/namespaces/(?P<name>[^/]+)$")
_MWC = re.compile(
    r"^/apis/admissionregistration\.k8s\.io/v1/mutatingwebhookconfigurations/(?P<name>[^/]+)$"
)


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class FakeKubeAPI:
    """The server's state. Tests change ``forbid``, ``not_served``, ``conflict_manager`` and
    ``webhook_configurations`` before (or between) calls."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    forbid: set[str] = field(default_factory=set)
    not_served: set[str] = field(default_factory=set)
    conflict_manager: str | None = None
    webhook_configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_version: int = 52000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served(self, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if method is None or r.method == method]

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # -- responses ---------------------------------------------------------------------------

    def handle(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return 401, load("status-unauthorized.json")
            if match := _MWC.match(request.path):
                return self._webhook_configuration(request, match["name"])
            if request.method != "GET":
                return 405, _status(
                    405, "MethodNotAllowed", "the server does not allow this method"
                )
            if match := _NAMESPACE.match(request.path):
                return self._namespace(match["name"])
            if request.path == "/api/v1/namespaces":
                if "namespaces" in self.forbid:
                    return 403, _forbidden("namespaces", "", None)
                return 200, self._page(request, "v1", "NamespaceList", load("namespaces.json"))
            match = _COLLECTION.match(request.path)
            if match is None or match["plural"] not in COLLECTIONS:
                return 404, load("status-resource-not-served.json")
            plural, namespace = match["plural"], match["namespace"]
            group, version, list_kind, data = COLLECTIONS[plural]
            if (match["group"] or "") != group or (match["version"] or "v1") != version:
                return 404, load("status-resource-not-served.json")
            if plural in self.not_served:
                return 404, load("status-resource-not-served.json")
            if plural in self.forbid:
                return 403, _forbidden(plural, group, namespace)
            items = load(data)
            if namespace is not None:
                items = [i for i in items if i["metadata"].get("namespace") == namespace]
            api_version = f"{group}/{version}" if group else version
            return 200, self._page(request, api_version, list_kind, items)

    def _namespace(self, name: str) -> tuple[int, Any]:
        if "namespaces" in self.forbid:
            message = (
                f'namespaces "{name}" is forbidden: User "system:serviceaccount:audit:reader" '
                'cannot get resource "namespaces" in API group "" in the namespace '
                f'"{name}"'
            )
            return 403, {
                **load("status-forbidden.json"),
                "message": message,
                "details": {"name": name, "kind": "namespaces"},
            }
        for item in load("namespaces.json"):
            if item["metadata"]["name"] == name:
                return 200, {"kind": "Namespace", "apiVersion": "v1", **item}
        status = load("status-namespace-not-found.json")
        status["message"] = f'namespaces "{name}" not found'
        status["details"]["name"] = name
        return 404, status

    def _page(
        self, request: Request, api_version: str, kind: str, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        # The API server returns items in key order (namespace/name), and items carry neither
        # kind nor apiVersion.
        items = sorted(items, key=_key)
        start = 0
        token = request.param("continue")
        if token:
            position = json.loads(base64.b64decode(token))["start"].rstrip("\x00")
            start = next((n for n, i in enumerate(items) if _key_text(i) > position), len(items))
        limit = int(request.param("limit") or 0)
        end = len(items) if limit <= 0 else min(len(items), start + limit)
        metadata: dict[str, Any] = {"resourceVersion": str(self.resource_version)}
        if end < len(items):
            next_token = {
                "v": "meta.k8s.io/v1",
                "rv": self.resource_version,
                "start": _key_text(items[end - 1]) + "\x00",
            }
            metadata["continue"] = base64.b64encode(json.dumps(next_token).encode()).decode()
            metadata["remainingItemCount"] = len(items) - end
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "items": items[start:end],
        }

    def _webhook_configuration(self, request: Request, name: str) -> tuple[int, Any]:
        stored = self.webhook_configurations.get(name)
        dry_run = request.param("dryRun") == "All"
        if "mutatingwebhookconfigurations" in self.forbid:
            status = _forbidden(
                "mutatingwebhookconfigurations", "admissionregistration.k8s.io", None
            )
            verb = {"PATCH": "patch", "DELETE": "delete"}.get(request.method, "get")
            status["message"] = status["message"].replace("cannot list", f"cannot {verb}")
            return 403, status
        if request.method == "GET":
            if stored is None:
                return 404, _mwc_not_found(name)
            return 200, stored
        if request.method == "DELETE":
            if stored is None:
                return 404, _mwc_not_found(name)
            if not dry_run:
                del self.webhook_configurations[name]
            return 200, load("status-deleted.json")
        if request.method != "PATCH":
            return 405, _status(405, "MethodNotAllowed", "the server does not allow this method")
        if request.headers.get("content-type") != "application/apply-patch+yaml":
            return 415, _status(415, "UnsupportedMediaType", "only apply patches are served here")
        if not request.param("fieldManager"):
            return 400, _status(
                400, "BadRequest", "PATCH requests with apply must have a fieldManager"
            )
        if self.conflict_manager and request.param("force") != "true":
            conflict = load("status-apply-conflict.json")
            conflict["message"] = conflict["message"].replace("cainjector", self.conflict_manager)
            return 409, conflict
        body = yaml.safe_load(request.body)
        obj = copy.deepcopy(body)
        server = load("mutatingwebhookconfiguration-server-metadata.json")
        if stored is not None:
            server = {
                **{k: stored["metadata"][k] for k in ("uid", "creationTimestamp", "managedFields")},
                "generation": stored["metadata"]["generation"] + 1,
            }
        self.resource_version += 1
        obj["metadata"] = {
            **obj["metadata"],
            **server,
            "resourceVersion": str(self.resource_version),
        }
        if not dry_run:
            self.webhook_configurations[name] = obj
        return (200 if stored is not None else 201), obj


def _key_text(item: dict[str, Any]) -> str:
    metadata = item["metadata"]
    return f"{metadata.get('namespace', '')}/{metadata['name']}"


def _key(item: dict[str, Any]) -> str:
    return _key_text(item)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _forbidden(plural: str, group: str, namespace: str | None) -> dict[str, Any]:
    status = load("status-forbidden.json")
    resource = f"{plural}.{group}" if group else plural
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    status["message"] = (
        f'{resource} is forbidden: User "system:serviceaccount:audit:reader" cannot list '
        f'resource "{plural}" in API group "{group}" {scope}'
    )
    status["details"] = {"group": group, "kind": plural} if group else {"kind": plural}
    return status


def _mwc_not_found(name: str) -> dict[str, Any]:
    status = _status(
        404,
        "NotFound",
        f'mutatingwebhookconfigurations.admissionregistration.k8s.io "{name}" not found',
    )
    status["details"] = {
        "name": name,
        "group": "admissionregistration.k8s.io",
        "kind": "mutatingwebhookconfigurations",
    }
    return status


class _Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        code, body = self.server.api.handle(request)  # type: ignore[attr-defined]
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server:
    """The fake API server on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.api = FakeKubeAPI()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.api = self.api  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        self.api.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeKubeAPI:
        self.thread.start()
        return self.api

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def kubeconfig(server: str, *, token: str = TOKEN, namespace: str | None = None) -> dict[str, Any]:
    """A kubeconfig with one context, ``test``, for ``server``."""
    context: dict[str, Any] = {"cluster": "test", "user": "reader"}
    if namespace is not None:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": context}],
        "current-context": "test",
    }
