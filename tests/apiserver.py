"""A real kube-apiserver (v1.36, from ``../shared/k8s``) for the tests marked ``apiserver``.

One server per test session, started with ``../shared/k8s/up.sh`` (so ``K8S_BIN`` still picks
another binary) and stopped with ``down.sh``. Its audit log records every write of pods and
workloads, with the annotations the admission chain adds (``mutation.webhook.admission.k8s.io``
and ``patch.webhook.admission.k8s.io``), so a test can read what the server itself saw.

:class:`APIServer` speaks plain HTTPS with the admin token: the tests check the server's own
answers (status, body and ``Warning`` headers) without a client library in between.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml

from tests._shared import SHARED

K8S = SHARED / "k8s"

# Writes of pods and workloads at RequestResponse level: the event then carries the patch
# each webhook sent as well as the mutation annotations. Reads of them, of namespaces and of
# webhook configurations at Metadata level (who asked for what, with which query). Nothing else.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  verbs: [create, update, patch]
  resources:
  - group: ""
    resources: [pods]
  - group: apps
  - group: batch
- level: Metadata
  resources:
  - group: ""
    resources: [pods, namespaces]
  - group: apps
  - group: batch
  - group: admissionregistration.k8s.io
    resources: [mutatingwebhookconfigurations]
- level: None
"""

# kind -> (API path prefix, plural): the kinds the tests create. Versions the server does
# not serve (extensions/v1beta1 and the like) are not in here.
RESOURCES: dict[tuple[str, str], tuple[str, str]] = {
    ("v1", "Pod"): ("/api/v1", "pods"),
    ("v1", "ReplicationController"): ("/api/v1", "replicationcontrollers"),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("apps/v1", "StatefulSet"): ("/apis/apps/v1", "statefulsets"),
    ("apps/v1", "DaemonSet"): ("/apis/apps/v1", "daemonsets"),
    ("apps/v1", "ReplicaSet"): ("/apis/apps/v1", "replicasets"),
    ("batch/v1", "Job"): ("/apis/batch/v1", "jobs"),
    ("batch/v1", "CronJob"): ("/apis/batch/v1", "cronjobs"),
}


@dataclass(frozen=True)
class Answer:
    """One answer of the API server: HTTP status, JSON body and the ``Warning`` headers."""

    status: int
    body: Any
    warnings: tuple[str, ...]

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""


def _warning_text(header: str) -> str:
    # RFC 7234 form the API server writes: 299 - "text"
    code, _, rest = header.partition(" ")
    agent, _, quoted = rest.partition(" ")
    if code == "299" and agent == "-" and quoted.startswith('"') and quoted.endswith('"'):
        return quoted[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return header


class APIServer:
    """A running API server: where it is, how to talk to it, and its audit log."""

    def __init__(self, state: Path, kubeconfig: Path, audit_log: Path) -> None:
        self.state = state
        self.kubeconfig = kubeconfig
        self.audit_log = audit_log
        config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        self.url: str = config["clusters"][0]["cluster"]["server"]
        self.ca = Path(config["clusters"][0]["cluster"]["certificate-authority"])
        self.token: str = config["users"][0]["user"]["token"]
        self._tls = ssl.create_default_context(cafile=str(self.ca))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        url = self.url + path + (f"?{urlencode(params)}" if params else "")
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self._tls, timeout=60) as response:
                status, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, headers = error.code, error.read(), error.headers
        warnings = tuple(_warning_text(h) for h in headers.get_all("Warning") or [])
        return Answer(status, json.loads(raw) if raw else None, warnings)

    def must(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        answer = self.request(method, path, body, **kwargs)
        assert 200 <= answer.status < 300, f"{method} {path}: {answer.status} {answer.body}"
        return answer.body

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A namespace and its ``default`` ServiceAccount (no controller manager makes it)."""
        metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
        self.must(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata},
        )
        self.must(
            "POST",
            f"/api/v1/namespaces/{name}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        )

    def collection(self, api_version: str, kind: str, namespace: str | None) -> str:
        prefix, plural = RESOURCES[(api_version, kind)]
        where = f"/namespaces/{quote(namespace)}" if namespace else ""
        return f"{prefix}{where}/{plural}"

    def create(self, obj: dict[str, Any], namespace: str, *, dry_run: bool = False) -> Answer:
        path = self.collection(obj["apiVersion"], obj["kind"], namespace)
        return self.request("POST", path, obj, params={"dryRun": "All"} if dry_run else None)

    def audit_events(self) -> Iterator[dict[str, Any]]:
        """Every event the server has written to its audit log so far."""
        if not self.audit_log.exists():
            return
        with self.audit_log.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)

    def kubectl(
        self, kubectl: Path, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl`` with this server's kubeconfig; the caller checks the outcome."""
        return subprocess.run(
            [str(kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )


def start(state: Path) -> APIServer:
    """Run up.sh with an audit policy; fail (never skip) when the server does not come up."""
    state.mkdir(parents=True, exist_ok=True)
    policy = state / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY, encoding="utf-8")
    audit_log = state / "audit.log"
    extra = os.environ.get("EXTRA_APISERVER_ARGS", "")
    env = {
        **os.environ,
        "EXTRA_APISERVER_ARGS": f"{extra} --audit-policy-file={policy} "
        f"--audit-log-path={audit_log} --audit-log-mode=blocking".strip(),
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(K8S / "up.sh"), str(state / "server")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"../shared/k8s/up.sh failed ({result.returncode}) after "
            f"{time.monotonic() - started:.0f}s:\n{result.stderr}"
        )
    return APIServer(state / "server", Path(result.stdout.strip()), audit_log)


def stop(server: APIServer) -> None:
    subprocess.run([str(K8S / "down.sh"), str(server.state)], capture_output=True, check=False)
