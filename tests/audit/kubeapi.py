"""A stand-in for the Kubernetes API server, for the faults the real one cannot be made to show.

Everything a real server does (RBAC, pagination, namespaces, workloads, dry run, server-side
apply) is tested against the session's kube-apiserver (``test_*_apiserver.py``). This serves
the workload lists of ``data/`` (see data/README.md) on their real paths to the real
``kubernetes`` client, and on request answers a path with a fault: a 500, an answer that is not
JSON, a connection cut before the answer, or an answer slower than the client waits; or it
does not serve a resource at all (a 404 for a kind an older or trimmed server lacks).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

DATA = Path(__file__).parent / "data"
# How long a "slow" answer takes: longer than the read timeout the tests give the client.
SLOW_SECONDS = 2.0

# plural -> (group, version, list kind, data file)
COLLECTIONS: dict[str, tuple[str, str, str, str]] = {
    "deployments": ("apps", "v1", "DeploymentList", "deployments.json"),
    "statefulsets": ("apps", "v1", "StatefulSetList", "statefulsets.json"),
    "daemonsets": ("apps", "v1", "DaemonSetList", "daemonsets.json"),
    "replicasets": ("apps", "v1", "ReplicaSetList", "replicasets.json"),
    "replicationcontrollers": (
        "",
        "v1",
        "ReplicationControllerList",
        "replicationcontrollers.json",
    ),
    "jobs": ("batch", "v1", "JobList", "jobs.json"),
    "cronjobs": ("batch", "v1", "CronJobList", "cronjobs.json"),
    "pods": ("", "v1", "PodList", "pods.json"),
}
_COLLECTION = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[a-z]+)$"
)

Fault = Literal["500", "not-json", "cut", "slow"]


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@dataclass
class FakeKubeAPI:
    """The server's state. Tests set ``not_served`` (plurals) and ``faults`` (path -> fault)
    before they call it."""

    url: str = ""
    not_served: set[str] = field(default_factory=set)
    faults: dict[str, Fault] = field(default_factory=dict)

    def handle(self, path: str) -> tuple[int, Any]:
        """The status and JSON body a server gives for a GET of ``path``."""
        if path == "/api/v1/namespaces":
            return 200, _list("v1", "NamespaceList", load("namespaces.json"))
        match = _COLLECTION.match(path)
        if match is None or match["plural"] not in COLLECTIONS:
            return 404, load("status-resource-not-served.json")
        plural, namespace = match["plural"], match["namespace"]
        group, version, list_kind, data = COLLECTIONS[plural]
        if (match["group"] or "") != group or (match["version"] or "v1") != version:
            return 404, load("status-resource-not-served.json")
        if plural in self.not_served:
            return 404, load("status-resource-not-served.json")
        items = load(data)
        if namespace is not None:
            items = [i for i in items if i["metadata"].get("namespace") == namespace]
        api_version = f"{group}/{version}" if group else version
        return 200, _list(api_version, list_kind, items)


def _list(api_version: str, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    # One page: the data is far below any chunk size. Items come in key order
    # (namespace/name) and carry neither kind nor apiVersion, as from a real server.
    items = sorted(items, key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["name"]))
    return {"kind": kind, "apiVersion": api_version, "metadata": {}, "items": items}


INTERNAL_ERROR = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Internal error occurred: etcdserver: request timed out",
    "reason": "InternalError",
    "details": {"causes": [{"message": "etcdserver: request timed out"}]},
    "code": 500,
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        api: FakeKubeAPI = self.server.api  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        fault = api.faults.get(path)
        if fault == "cut":
            self.close_connection = True  # no status line: the client sees the socket close
            return
        if fault == "slow":
            time.sleep(SLOW_SECONDS)
        if fault == "not-json":
            self._send(200, "text/html", b"<html><body>502 Bad Gateway</body></html>")
            return
        code, body = (500, INTERNAL_ERROR) if fault == "500" else api.handle(path)
        self._send(code, "application/json", json.dumps(body).encode())

    def _send(self, code: int, content_type: str, data: bytes) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a slow answer's client has given up: that is the fault being shown

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


def kubeconfig(server: str) -> dict[str, Any]:
    """A kubeconfig with one context, ``test``, for ``server``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "reader", "user": {"token": "reader-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "reader"}}],
        "current-context": "test",
    }
