"""Talking to a cluster: the kubeconfig, the API client, raw JSON pages and clear errors.

Everything goes through the official ``kubernetes`` client. Responses are read raw
(``_preload_content=False``) and decoded with ``json``, so objects keep the camelCase field names
the API server sends, exactly as it stores them: the engine's operations are pointers into these
objects and ``kubectl patch --type json`` can apply them as they are.

``ClusterError`` ends the whole command (no kubeconfig, a server that cannot be reached,
credentials the server rejects). ``RequestDenied`` concerns one request (403, 404, ...): the
caller records it and goes on with the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as _k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from hardener.model import HardenerError

__all__ = [
    "ClusterError",
    "Connection",
    "RequestDenied",
    "call",
    "connect",
    "list_pages",
    "status_message",
]

# (connect, read) seconds: a server that does not answer within these is reported, not awaited.
TIMEOUT = (10.0, 60.0)
# The client's config loaders carry no type hints.
k8s_config: Any = _k8s_config
_IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class ClusterError(HardenerError):
    """The cluster cannot be used at all: no kubeconfig, an unreachable server, credentials
    the server rejects. The message says which and what to do next."""


class RequestDenied(HardenerError):
    """One request the API server refused (403 Forbidden, 404 Not Found, ...), with the
    HTTP status, the Status ``reason`` and the server's message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


@dataclass
class Connection:
    """An API client for one context of a kubeconfig (or the in-cluster service account)."""

    api: Any  # kubernetes.client.ApiClient
    context: str | None
    server: str
    source: str
    namespace: str = "default"
    """The context's namespace, what kubectl uses without -n or -A."""

    def describe(self) -> str:
        where = f"context {self.context!r}" if self.context else self.source
        return f"{self.server} ({where})"

    def close(self) -> None:
        self.api.close()


def _kubeconfig_paths(explicit: str | None) -> tuple[str, list[str]]:
    """The kubeconfig argument for the client and the files it names, like kubectl: --kubeconfig,
    else every file in $KUBECONFIG, else ~/.kube/config."""
    if explicit:
        return explicit, [explicit]
    env = os.environ.get("KUBECONFIG", "")
    if env.strip():
        paths = [p for p in env.split(os.pathsep) if p]
        return env, paths
    default = str(Path("~/.kube/config").expanduser())
    return default, [default]


def connect(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """An API client for ``context`` (default: the current one) of ``kubeconfig``.

    Without ``--kubeconfig`` and ``$KUBECONFIG``, and with no ``~/.kube/config``, a process
    running in a pod uses its service account. Raises ``ClusterError`` when none is usable.
    """
    argument, paths = _kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if Path(p).is_file()]
    configuration = k8s.Configuration()
    if not existing:
        if kubeconfig is None and "KUBECONFIG" not in os.environ and _in_cluster():
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except ConfigException as exc:
                raise ClusterError(f"in-cluster service account: {exc}") from exc
            return Connection(
                k8s.ApiClient(configuration),
                None,
                configuration.host,
                "in-cluster",
                _in_cluster_namespace(),
            )
        looked = ", ".join(paths)
        raise ClusterError(
            f"no kubeconfig: {looked} does not exist; pass --kubeconfig FILE or set KUBECONFIG"
        )
    source = ", ".join(existing)
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=argument)
        names = [c.get("name") for c in contexts or []]
        if context is not None and context not in names:
            known = ", ".join(str(n) for n in names) or "none"
            raise ClusterError(
                f"kubeconfig {source}: no context named {context!r} (contexts: {known})"
            )
        chosen = context or (current or {}).get("name")
        entry = next((c for c in contexts or [] if c.get("name") == chosen), None)
        details = entry.get("context") if isinstance(entry, dict) else None
        namespace = details.get("namespace") if isinstance(details, dict) else None
        k8s_config.load_kube_config(
            config_file=argument,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except ConfigException as exc:
        raise ClusterError(f"kubeconfig {source}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        # A kubeconfig that is not YAML, or whose entries have the wrong shape.
        raise ClusterError(f"kubeconfig {source}: cannot be used: {exc}") from exc
    return Connection(
        k8s.ApiClient(configuration),
        chosen,
        configuration.host,
        source,
        str(namespace or "default"),
    )


def _in_cluster_namespace() -> str:
    try:
        return (_IN_CLUSTER_TOKEN.parent / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        return "default"


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and _IN_CLUSTER_TOKEN.is_file()


def status_message(exc: ApiException) -> tuple[str, str]:
    """The ``reason`` and ``message`` of the Status object in an error response (or what the
    HTTP layer says when the body is not a Status)."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    reason = str(exc.reason or "")
    message = ""
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            message = " ".join(str(body).split())[:300]
        else:
            if isinstance(status, dict):
                reason = str(status.get("reason") or reason)
                message = str(status.get("message") or "")
    return reason, message or reason or "no message"


def call(connection: Connection, method: Callable[..., Any], **kwargs: Any) -> tuple[int, Any]:
    """Call one API method of the client and return the HTTP status and the decoded JSON body.

    401 and an unreachable server raise ``ClusterError``; any other error status raises
    ``RequestDenied``.
    """
    try:
        response = method(**kwargs, _preload_content=False, _request_timeout=TIMEOUT)
    except ApiException as exc:
        reason, message = status_message(exc)
        if exc.status == 401:
            raise ClusterError(
                f"the API server {connection.describe()} rejected the credentials "
                f"(401 Unauthorized: {message}); log in again or refresh the kubeconfig"
            ) from exc
        if exc.status == 0:
            raise ClusterError(
                f"cannot talk to the API server {connection.describe()}: {reason}"
            ) from exc
        raise RequestDenied(int(exc.status), reason, message) from exc
    except urllib3.exceptions.HTTPError as exc:
        cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
        raise ClusterError(
            f"cannot reach the API server {connection.describe()}: {cause}; check that the "
            "cluster is running and that the kubeconfig points at it"
        ) from exc
    data = response.data
    try:
        decoded = json.loads(data) if data else None
    except ValueError as exc:
        raise ClusterError(
            f"the API server {connection.describe()} answered with something that is not "
            f"JSON (HTTP {response.status})"
        ) from exc
    return int(response.status), decoded


def list_pages(
    connection: Connection, method: Callable[..., Any], *, limit: int, **kwargs: Any
) -> Iterator[list[dict[str, Any]]]:
    """The items of a list call, one page (at most ``limit`` items) at a time, following the
    ``metadata.continue`` token until the server gives none."""
    token: str | None = None
    while True:
        _, page = call(connection, method, limit=limit, _continue=token, **kwargs)
        if not isinstance(page, dict):
            raise RequestDenied(200, "BadResponse", "the list response is not a JSON object")
        items = page.get("items") or []
        yield [item for item in items if isinstance(item, dict)]
        metadata = page.get("metadata")
        token = metadata.get("continue") if isinstance(metadata, dict) else None
        if not token:
            return
