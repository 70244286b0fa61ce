"""The cluster's support for user namespaces, followed live: its Nodes and RuntimeClasses,
listed and then watched through the official ``kubernetes`` client, kept in memory.

``SupportWatch(api)`` runs one background thread per resource (the client is blocking; the
webhook's event loop never waits on it). Each thread lists its resource (paged), then watches
it from the list's ``resourceVersion``, and after every event publishes a new immutable
``Support`` (a ``ClusterView`` of every Node and RuntimeClass), which ``support()`` returns:
an attribute read, so a review never waits on the API server.

- Until the Nodes have been listed, and from the moment a list or a watch of them fails (the
  API server cannot be reached, refuses, or the connection drops) until a new list answers,
  ``support()`` is ``Support.unknown`` with the reason: the ``user-namespace`` rule is off.
- RuntimeClasses that cannot be read leave only pods with a ``runtimeClassName`` off.
- A watch ends after ``watch_seconds`` (the server closes it) and is opened again from the
  last ``resourceVersion``; a ``410 Gone`` (the version is too old) lists again. A connection
  that stays silent longer than ``watch_seconds`` plus a margin is a failure.
- Failures are retried after a pause that doubles from ``retry_seconds[0]`` up to
  ``retry_seconds[1]``.

``on_change(support)`` is called from the watch threads whenever the published value changes
its verdict (the webhook logs it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from hardener.userns import ClusterView, Support

__all__ = ["SupportWatch", "describe_failure"]

_log = logging.getLogger("hardener.nodewatch")
_PAGE = 500
_CONNECT_SECONDS = 5.0
_MARGIN_SECONDS = 15.0


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


def describe_failure(exc: BaseException) -> str:
    """A short, human reason for a failed request to the API server."""
    if isinstance(exc, ApiException):
        reason = str(exc.reason or "")
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
        try:
            status = json.loads(body) if body else None
        except ValueError:
            status = None
        if isinstance(status, dict) and status.get("message"):
            reason = str(status["message"])
        return f"{exc.status} {reason}".strip()
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


@dataclass
class _Follower:
    """One resource: how to list and watch it, what it holds, whether that is current."""

    resource: str
    list_call: Callable[..., Any]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    synced: bool = False
    answered: bool = False
    """A list has answered, or failed, at least once."""
    error: str | None = "not listed yet"
    response: Any = None


class SupportWatch:
    """Follow the Nodes and RuntimeClasses of the cluster ``api`` (a
    ``kubernetes.client.ApiClient``) and answer ``support()`` from memory."""

    def __init__(
        self,
        api: Any,
        *,
        watch_seconds: int = 60,
        retry_seconds: tuple[float, float] = (0.5, 10.0),
        on_change: Callable[[Support], None] | None = None,
        follow: bool = True,
    ) -> None:
        self.api = api
        self.watch_seconds = watch_seconds
        self.retry_seconds = retry_seconds
        self.on_change = on_change
        self.follow = follow
        """False: list once, no watch and no retry (``read_once``)."""
        core = k8s.CoreV1Api(api)
        node = k8s.NodeV1Api(api)
        self._nodes = _Follower("nodes", core.list_node)
        self._classes = _Follower("runtimeclasses.node.k8s.io", node.list_runtime_class)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._answered = threading.Event()
        self._threads: list[threading.Thread] = []
        self._support = Support.unknown(
            "the API server has not answered the list of nodes yet (user-namespaces: auto)"
        )
        self.changes = 0
        """How many times the published verdict changed (for tests and metrics)."""

    # -- reading --------------------------------------------------------------------------

    def support(self) -> Support:
        """The support as last published: never blocks."""
        return self._support

    @property
    def synced(self) -> bool:
        """The Nodes are listed and watched, and the RuntimeClasses have answered (or failed):
        ``support()`` reflects the cluster."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Wait until ``synced``, at most ``timeout`` seconds (for tests and for a command
        that must know before it starts); whether it is."""
        return self._synced.wait(timeout)

    @classmethod
    def read_once(cls, api: Any, timeout: float = 30.0) -> Support:
        """List the Nodes and RuntimeClasses once (for ``audit``): the support they give, or
        ``Support.unknown`` saying why they could not be read within ``timeout`` seconds."""
        watch = cls(api, follow=False)
        watch.start()
        try:
            if not watch._answered.wait(timeout):
                return Support.unknown(
                    f"the nodes of the cluster did not answer within {timeout:g}s"
                )
            return watch.support()
        finally:
            watch.stop()

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        for follower in (self._nodes, self._classes):
            thread = threading.Thread(
                target=self._follow,
                args=(follower,),
                name=f"hardener-watch-{follower.resource.split('.')[0]}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads: close their open connections and wait for them."""
        self._stop.set()
        for follower in (self._nodes, self._classes):
            response = follower.response
            if response is not None:
                try:
                    # Shut the socket down: a thread blocked reading the watch wakes at once
                    # (close() alone waits for the server's next bytes).
                    response.shutdown()
                    response.close()
                except Exception:  # a response closed already, or mid-close: nothing to do
                    pass
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def __enter__(self) -> SupportWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the threads ----------------------------------------------------------------------

    def _follow(self, follower: _Follower) -> None:
        pause = self.retry_seconds[0]
        while not self._stop.is_set():
            try:
                version = self._list(follower)
                if not self.follow:
                    return
                pause = self.retry_seconds[0]
                while not self._stop.is_set():
                    version = self._watch(follower, version)
            except _Expired:
                continue
            except Exception as exc:  # every failure means: not current; retry
                if self._stop.is_set():
                    return
                reason = describe_failure(exc)
                with self._lock:
                    follower.synced = False
                    follower.answered = True
                    follower.error = reason
                    self._publish()
                if not self.follow:
                    return
                _log.warning(
                    f"user namespaces: cannot follow {follower.resource}",
                    extra={"fields": {"error": reason, "retry_seconds": pause}},
                )
                self._stop.wait(pause)
                pause = min(pause * 2, self.retry_seconds[1])

    def _request(self, follower: _Follower, **kwargs: Any) -> Any:
        response = follower.list_call(
            _preload_content=False,
            _request_timeout=(_CONNECT_SECONDS, self.watch_seconds + _MARGIN_SECONDS),
            **kwargs,
        )
        follower.response = response
        return response

    def _list(self, follower: _Follower) -> str:
        items: dict[str, dict[str, Any]] = {}
        token: str | None = None
        version = ""
        while True:
            response = self._request(follower, limit=_PAGE, _continue=token)
            try:
                page = json.loads(response.data)
            finally:
                response.release_conn()
            if not isinstance(page, dict):
                raise ValueError(f"the list of {follower.resource} is not a JSON object")
            for item in page.get("items") or []:
                name = _name(item)
                if name is not None:
                    items[name] = item
            metadata = page.get("metadata") if isinstance(page.get("metadata"), dict) else {}
            assert isinstance(metadata, dict)
            version = str(metadata.get("resourceVersion") or "")
            token = metadata.get("continue") or None
            if not token:
                break
        with self._lock:
            follower.items = items
            follower.synced = True
            follower.answered = True
            follower.error = None
            self._publish()
        return version

    def _watch(self, follower: _Follower, version: str) -> str:
        response = self._request(
            follower,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_seconds,
        )
        try:
            for line in _lines(response):
                event = json.loads(line)
                kind = event.get("type")
                obj = event.get("object")
                if not isinstance(obj, dict):
                    continue
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Expired()
                    raise ValueError(f"watch error: {obj.get('message') or obj}")
                metadata = obj.get("metadata")
                if isinstance(metadata, dict) and metadata.get("resourceVersion"):
                    version = str(metadata["resourceVersion"])
                if kind == "BOOKMARK":
                    continue
                name = _name(obj)
                if name is None:
                    continue
                with self._lock:
                    if kind == "DELETED":
                        follower.items.pop(name, None)
                    else:
                        follower.items[name] = obj
                    self._publish()
        finally:
            response.release_conn()
        return version

    def _publish(self) -> None:
        """Build and publish the support from both followers (called holding the lock)."""
        nodes, classes = self._nodes, self._classes
        if not nodes.synced:
            support = Support.unknown(f"the nodes of the cluster cannot be read ({nodes.error})")
        else:
            support = Support.of_cluster(
                ClusterView.from_objects(
                    nodes.items.values(), classes.items.values() if classes.synced else None
                )
            )
        before = self._support
        self._support = support
        if support.state == "cluster" and classes.answered:
            self._synced.set()
        else:
            self._synced.clear()
        if nodes.answered and classes.answered:
            self._answered.set()
        if _verdict(before) != _verdict(support):
            self.changes += 1
            if (before.state, before.default_on) != (support.state, support.default_on):
                _log.info(
                    f"user namespaces: {'on' if support.default_on else 'off'}",
                    extra={"fields": {"reason": support.for_pod(None).reason}},
                )
            if self.on_change is not None:
                self.on_change(support)


def _verdict(support: Support) -> tuple[object, ...]:
    view = support.view
    if view is None:
        return (support.state,)
    handlers = view.handlers + sorted(view.runtime_classes or {})
    return (
        support.state,
        tuple((h, view.handler_support(h).supported) for h in handlers),
        tuple(sorted((view.runtime_classes or {}).items())),
    )


def _name(item: Any) -> str | None:
    metadata = item.get("metadata") if isinstance(item, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _lines(response: Any) -> Iterator[str]:
    """The newline-delimited JSON events of a watch response, as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line.decode("utf-8", "replace")
