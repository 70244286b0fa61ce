"""User namespaces against the real kube-apiserver v1.36.

- The API server's ``hostUsers`` validation is what hardener (and the engine tests' own model)
  say it is: each conflict alone, combined, and the look-alikes that are valid.
- Pods hardened with ``hostUsers: false`` are admitted, not invalid, in a namespace enforcing
  ``restricted:latest`` (a server-side dry run), and the PSS evaluator agrees with the
  server's verdict there and at ``v1.34``.
- ``auto`` follows the cluster: Node objects whose status (set through the ``status``
  subresource) lists runtime handlers with and without ``userNamespaces``, and RuntimeClasses.
  The node watch turns support on when every Linux node reports it, off within seconds when
  one stops (or a node without it joins), on again after; and ``hardener serve`` with
  ``--kubeconfig``, called by the API server itself, adds ``hostUsers: false`` only while
  every node reports support.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hardener import parse_config, plan
from hardener.audit import connect
from hardener.image_facts import ImageFacts
from hardener.locate import pod_sites
from hardener.nodewatch import SupportWatch
from hardener.pss import evaluate
from hardener.userns import conflicts
from tests.apiserver import APIServer
from tests.k8s.conftest import MODE_LABEL, MWC, RESTRICTED, Webhook, register, serve
from tests.rules.test_user_namespace import api_rejects

pytestmark = pytest.mark.apiserver

NODES = "/api/v1/nodes"
RUNTIME_CLASSES = "/apis/node.k8s.io/v1/runtimeclasses"
MERGE = "application/merge-patch+json"
# Within this many seconds the watch must see a change of a Node's status.
FOLLOW_SECONDS = 5.0

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pod(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _web(**fields: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:1.27", **fields}


# -- the API server's hostUsers rules ------------------------------------------------------

DEVICES = [{"name": "disk", "devicePath": "/dev/xvdb"}]
DISK = [{"name": "disk", "persistentVolumeClaim": {"claimName": "disk"}}]
VALIDITY: dict[str, dict[str, Any]] = {
    "plain": {"containers": [_web()]},
    "hostNetwork": {"hostNetwork": True, "containers": [_web()]},
    "hostPID": {"hostPID": True, "containers": [_web()]},
    "hostIPC": {"hostIPC": True, "containers": [_web()]},
    "host namespaces false": {
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "containers": [_web()],
    },
    "volumeDevices": {"containers": [_web(volumeDevices=DEVICES)], "volumes": DISK},
    "init volumeDevices": {
        "initContainers": [_web(name="init", volumeDevices=DEVICES)],
        "containers": [_web()],
        "volumes": DISK,
    },
    "empty volumeDevices": {"containers": [_web(volumeDevices=[])]},
    "windows": {"os": {"name": "windows"}, "containers": [_web()]},
    "windows by nodeSelector": {
        "nodeSelector": {"kubernetes.io/os": "windows"},
        "containers": [_web()],
    },
    "linux": {"os": {"name": "linux"}, "containers": [_web()]},
    "privileged": {"containers": [_web(securityContext={"privileged": True})]},
    "ids above 65535": {
        "securityContext": {"runAsUser": 70000, "fsGroup": 70000},
        "containers": [_web()],
    },
    "combined": {
        "hostNetwork": True,
        "hostIPC": True,
        "containers": [_web(volumeDevices=DEVICES)],
        "volumes": DISK,
    },
}


@pytest.fixture(scope="module")
def open_namespace(apiserver: APIServer) -> str:
    apiserver.create_namespace("userns-open")
    return "userns-open"


@pytest.mark.parametrize("name", list(VALIDITY))
def test_the_api_servers_host_users_rules_are_what_hardener_says(
    apiserver: APIServer, open_namespace: str, name: str
) -> None:
    spec = {"hostUsers": False, **copy.deepcopy(VALIDITY[name])}
    obj = _pod("p", spec)
    (site,) = pod_sites(obj)
    predicted = conflicts(site)
    assert bool(predicted) == bool(api_rejects(spec))
    answer = apiserver.create(obj, open_namespace, dry_run=True)
    if not predicted:
        assert answer.status == 201, answer.message
        return
    assert answer.status == 422, answer.message
    # The server names each field hardener reports, in its own spelling.
    causes = answer.body["details"]["causes"]
    fields = {c["field"].lower() for c in causes}
    for conflict in predicted:
        path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in conflict.path).replace(
            ".[", "["
        )
        assert path.lower() in fields, (path, fields)


# -- admission under restricted ------------------------------------------------------------

FACTS = {
    "nginx:1.27": ImageFacts(reference="docker.io/library/nginx:1.27", source="table", user=""),
    "busybox:1.37": ImageFacts(reference="docker.io/library/busybox:1.37", source="table", user=""),
    "app:1": ImageFacts(reference="example.com/app:1", source="table", user="1000"),
    "memcached:1.6": ImageFacts(
        reference="docker.io/library/memcached:1.6", source="table", user="memcache", uid=11211
    ),
    "secret:1": ImageFacts.unknown("example.com/secret:1", "401 Unauthorized"),
}
HARDENED: dict[str, dict[str, Any]] = {
    "root image": {"containers": [_web()]},
    "root image running as root explicitly": {
        "securityContext": {"runAsUser": 0},
        "containers": [_web()],
    },
    "mixed images": {
        "initContainers": [{"name": "init", "image": "busybox:1.37"}],
        "containers": [
            _web(),
            {"name": "app", "image": "app:1"},
            {"name": "cache", "image": "memcached:1.6"},
            {"name": "secret", "image": "secret:1"},
        ],
    },
}


@pytest.fixture(scope="module")
def restricted(apiserver: APIServer) -> dict[str, str]:
    made = {
        "latest": ("userns-restricted", RESTRICTED),
        "v1.34": (
            "userns-restricted-134",
            {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "v1.34",
            },
        ),
    }
    for name, labels in made.values():
        apiserver.create_namespace(name, labels)
    return {version: name for version, (name, _) in made.items()}


@pytest.mark.parametrize("name", list(HARDENED))
def test_hardened_pods_are_admitted_under_restricted_latest(
    apiserver: APIServer, restricted: dict[str, str], name: str
) -> None:
    obj = _pod("p", copy.deepcopy(HARDENED[name]))
    config = parse_config({"user-namespaces": "always"})
    hardened = plan(obj, config, images=FACTS).hardened
    assert hardened["spec"]["hostUsers"] is False
    assert evaluate(hardened, level="restricted", version="latest") == []
    answer = apiserver.create(hardened, restricted["latest"], dry_run=True)
    assert answer.status == 201, answer.message

    # Without user namespaces the same root pod is forbidden, as the evaluator says.
    never = parse_config({"user-namespaces": "never"})
    plain = plan(obj, never, images=FACTS).hardened
    assert "hostUsers" not in plain["spec"]
    answer = apiserver.create(plain, restricted["latest"], dry_run=True)
    assert answer.status == 403 and "runAsNonRoot != true" in answer.message
    assert evaluate(plain, level="restricted", version="latest")

    # At v1.34 restricted has no relaxation: the server and the evaluator both refuse the
    # root pod even with hostUsers: false, and hardener (version: v1.34) says so.
    old = parse_config({"user-namespaces": "always", "version": "v1.34"})
    result = plan(obj, old, images=FACTS)
    hardened_old = result.hardened
    assert hardened_old["spec"]["hostUsers"] is False
    answer = apiserver.create(hardened_old, restricted["v1.34"], dry_run=True)
    assert answer.status == 403, answer.message
    assert {v.check for v in evaluate(hardened_old, level="restricted", version="v1.34")} >= {
        "runAsNonRoot"
    }
    assert any(f.rule == "pss" and f.check == "runAsNonRoot" for f in result.findings)


def test_a_pod_that_cannot_have_a_user_namespace_is_never_made_invalid(
    apiserver: APIServer, restricted: dict[str, str]
) -> None:
    for name, spec in VALIDITY.items():
        obj = _pod("p", copy.deepcopy(spec))
        config = parse_config({"user-namespaces": "always"})
        hardened = plan(obj, config, images=FACTS).hardened
        answer = apiserver.create(hardened, restricted["latest"], dry_run=True)
        assert answer.status != 422, (name, answer.message)


# -- following the cluster -----------------------------------------------------------------


def _status(handlers: dict[str, bool] | None, *, os: str = "linux") -> dict[str, Any]:
    status: dict[str, Any] = {
        "nodeInfo": {
            "operatingSystem": os,
            "architecture": "amd64",
            "kernelVersion": "6.8.0-45-generic",
            "containerRuntimeVersion": "containerd://2.0.4",
            "kubeletVersion": "v1.36.2",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kubeProxyVersion": "",
            "osImage": "Debian GNU/Linux 13",
        }
    }
    if handlers is not None:
        status["runtimeHandlers"] = [
            {"name": name, "features": {"userNamespaces": ok, "recursiveReadOnlyMounts": True}}
            for name, ok in handlers.items()
        ]
    return {"status": status}


class Cluster:
    """Nodes and RuntimeClasses this module makes (and removes afterwards)."""

    def __init__(self, apiserver: APIServer) -> None:
        self.apiserver = apiserver
        self.nodes: list[str] = []
        self.classes: list[str] = []

    def add_node(self, name: str, handlers: dict[str, bool] | None, os: str = "linux") -> None:
        labels = {"kubernetes.io/os": os, "kubernetes.io/hostname": name}
        self.apiserver.must(
            "POST",
            NODES,
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}},
        )
        self.nodes.append(name)
        self.set_status(name, handlers, os)

    def set_status(self, name: str, handlers: dict[str, bool] | None, os: str = "linux") -> None:
        # Node status is written through its own subresource, as the kubelet writes it.
        answer = self.apiserver.request(
            "PATCH", f"{NODES}/{name}/status", _status(handlers, os=os), content_type=MERGE
        )
        assert answer.status == 200, answer.message
        if handlers is None:
            # A merge patch cannot drop a list: replace the status as a whole.
            current = self.apiserver.must("GET", f"{NODES}/{name}")
            current["status"].pop("runtimeHandlers", None)
            self.apiserver.must("PUT", f"{NODES}/{name}/status", current)

    def remove_node(self, name: str) -> None:
        self.apiserver.must("DELETE", f"{NODES}/{name}")
        self.nodes.remove(name)

    def add_class(self, name: str, handler: str) -> None:
        self.apiserver.must(
            "POST",
            RUNTIME_CLASSES,
            {
                "apiVersion": "node.k8s.io/v1",
                "kind": "RuntimeClass",
                "metadata": {"name": name},
                "handler": handler,
            },
        )
        self.classes.append(name)

    def clean(self) -> None:
        for name in list(self.nodes):
            self.apiserver.request("DELETE", f"{NODES}/{name}")
        for name in self.classes:
            self.apiserver.request("DELETE", f"{RUNTIME_CLASSES}/{name}")


@pytest.fixture(scope="module")
def cluster(apiserver: APIServer) -> Iterator[Cluster]:
    made = Cluster(apiserver)
    try:
        yield made
    finally:
        made.clean()


def _until(check: Callable[[], bool], what: str, timeout: float = FOLLOW_SECONDS) -> float:
    """Seconds until ``check()`` holds; fails past ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout}s: {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def test_the_watch_follows_nodes_and_runtime_classes(
    apiserver: APIServer, cluster: Cluster
) -> None:
    cluster.add_node("userns-a", {"": True, "crun": True, "kata": True})
    cluster.add_node("userns-b", {"": True, "crun": True, "kata": False})
    cluster.add_node("userns-win", {"": False}, os="windows")  # not a Linux node: no say
    cluster.add_class("userns-fast", "crun")
    connection = connect(str(apiserver.kubeconfig))
    watch = SupportWatch(connection.api, watch_seconds=5)
    assert watch.support().state == "unknown" and not watch.support().default_on
    watch.start()
    try:
        assert watch.wait_synced(10)
        assert watch.support().default_on
        assert watch.support().for_pod("userns-fast").supported
        assert not watch.support().for_pod("userns-vm").supported  # no such RuntimeClass yet
        cluster.add_class("userns-vm", "kata")
        _until(lambda: watch.support().for_pod("userns-vm").code == "unsupported", "a class")
        assert "node userns-b reports no user namespace support for runtime handler " in (
            watch.support().for_pod("userns-vm").reason
        )

        # One node stops reporting support: off within seconds, on again after.
        cluster.set_status("userns-b", {"": False, "crun": True})
        off = _until(lambda: not watch.support().default_on, "off after a status change")
        assert watch.support().for_pod(None).reason == (
            "node userns-b reports no user namespace support for the default runtime handler"
        )
        assert watch.support().for_pod("userns-fast").supported  # crun still everywhere
        cluster.set_status("userns-b", {"": True, "crun": True})
        on = _until(lambda: watch.support().default_on, "on again")

        # A node that joins without support (no runtimeHandlers at all), then leaves.
        cluster.add_node("userns-c", None)
        joined = _until(lambda: not watch.support().default_on, "off when a node joins")
        cluster.remove_node("userns-c")
        left = _until(lambda: watch.support().default_on, "on when it leaves")
        # A watch period (5 s here) passes: the watch is opened again and still current.
        time.sleep(6)
        assert watch.synced and watch.support().default_on
        print(f"followed in {off:.3f}s, {on:.3f}s, {joined:.3f}s, {left:.3f}s")
    finally:
        watch.stop()
        connection.close()
    assert not watch._threads


def test_an_unreachable_api_server_leaves_the_rule_off_without_blocking(
    apiserver: APIServer, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    config = apiserver.kubeconfig.read_text(encoding="utf-8")
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(config.replace(apiserver.url, f"https://127.0.0.1:{free_port()}"))
    connection = connect(str(dead))
    watch = SupportWatch(connection.api, retry_seconds=(0.1, 0.2))
    watch.start()
    try:
        started = time.monotonic()
        for _ in range(1000):
            support = watch.support()  # a read from memory, whatever the API server does
        assert time.monotonic() - started < 0.5
        assert not watch.wait_synced(1.0)
        support = watch.support()
        assert support.state == "unknown" and not support.default_on
        assert "the nodes of the cluster cannot be read" in support.reason
        assert plan(_pod("p", {"containers": [_web()]}), parse_config({}), user_namespaces=support)
    finally:
        watch.stop()
        connection.close()


# -- the webhook, called by the API server -------------------------------------------------


@pytest.fixture(scope="module")
def userns_webhook(
    apiserver: APIServer, tls: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    """``hardener serve`` with ``user-namespaces: auto`` and ``--kubeconfig``, registered for
    namespaces labelled ``e2e.hardener.dev/mode: userns``."""
    work = tmp_path_factory.mktemp("serve-userns")
    hook = serve(
        tls,
        work,
        "mutate",
        config_text="user-namespaces: auto\n",
        args=("--kubeconfig", str(apiserver.kubeconfig)),
    )
    name = "hardener-e2e-userns"
    register(apiserver, name, hook.url, (tls / "ca.crt").read_bytes(), "userns")
    try:
        yield hook
    finally:
        apiserver.request("DELETE", f"{MWC}/{name}")
        hook.process.terminate()
        hook.process.wait(timeout=30)


def _metric(hook: Webhook, name: str) -> float:
    with urllib.request.urlopen(f"{hook.metrics}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_the_webhook_adds_host_users_only_while_every_node_supports_it(
    apiserver: APIServer, cluster: Cluster, userns_webhook: Webhook
) -> None:
    namespace = "userns-e2e"
    apiserver.create_namespace(namespace, {**RESTRICTED, MODE_LABEL: "userns"})
    for name in ("userns-a", "userns-b"):
        if name not in cluster.nodes:
            cluster.add_node(name, {"": True})
        cluster.set_status(name, {"": True})
    pod = _pod("web", {"containers": [_web()]})

    def admitted() -> dict[str, Any] | None:
        answer = apiserver.create(copy.deepcopy(pod), namespace, dry_run=True)
        if answer.status == 201:
            return dict(answer.body)
        assert answer.status == 403, answer.message  # restricted refuses the root pod
        return None

    _until(lambda: _metric(userns_webhook, "hardener_webhook_user_namespaces_enabled") == 1, "on")
    stored = admitted()
    assert stored is not None and stored["spec"]["hostUsers"] is False
    container = stored["spec"]["containers"][0]
    assert "runAsNonRoot" not in container.get("securityContext", {})
    assert "runAsNonRoot" not in stored["spec"].get("securityContext", {})

    cluster.set_status("userns-b", {"": False})
    seconds = _until(lambda: admitted() is None, "the webhook stops adding hostUsers")
    assert _metric(userns_webhook, "hardener_webhook_user_namespaces_enabled") == 0
    answer = apiserver.create(copy.deepcopy(pod), namespace, dry_run=True)
    assert answer.status == 403
    assert any("no user namespace for this pod" in w for w in answer.warnings), answer.warnings

    cluster.set_status("userns-b", {"": True})
    _until(lambda: admitted() is not None, "the webhook adds hostUsers again")
    print(f"the webhook stopped adding hostUsers {seconds:.2f}s after the status change")
    log = userns_webhook.log.read_text(encoding="utf-8")
    events = [json.loads(line).get("event") for line in log.splitlines() if line.startswith("{")]
    assert "user namespaces: off" in events and "user namespaces: on" in events


# -- audit ---------------------------------------------------------------------------------


def test_audit_reports_support_per_handler_and_the_root_workloads(
    apiserver: APIServer, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    from hardener.cli import main

    for name, handlers in (("userns-a", {"": True, "kata": True}), ("userns-b", {"": True})):
        if name not in cluster.nodes:
            cluster.add_node(name, handlers)
        cluster.set_status(name, handlers)
    old = "userns-old-kernel"
    cluster.add_node(old, {"": True, "kata": False})
    status = apiserver.must("GET", f"{NODES}/{old}")
    status["status"]["nodeInfo"]["kernelVersion"] = "5.15.0-105-generic"
    apiserver.must("PUT", f"{NODES}/{old}/status", status)
    namespace = "userns-audit"
    apiserver.create_namespace(namespace)
    root = _pod("root", {"containers": [_web(securityContext={"runAsUser": 0})]})
    # An image neither the cache nor the offline table knows (nginx is in the table: root).
    unknown = _pod("unknown", {"containers": [_web(image="registry.example/app:1")]})
    host = _pod(
        "host", {"hostNetwork": True, "containers": [_web(securityContext={"runAsUser": 0})]}
    )
    non_root = _pod("nonroot", {"containers": [_web(securityContext={"runAsUser": 1000})]})
    for obj in (root, unknown, host, non_root):
        apiserver.must("POST", f"/api/v1/namespaces/{namespace}/pods", obj)
    try:
        code = main(
            [
                "audit",
                "--kubeconfig",
                str(apiserver.kubeconfig),
                "-n",
                namespace,
                "--format",
                "json",
            ]
        )
        out, err = capsys.readouterr()
        assert code == 1, err
        section = json.loads(out)["user_namespaces"]
        assert section["mode"] == "auto" and section["enabled"] is True
        nodes = {n["name"]: n for n in section["nodes"] if n["name"].startswith("userns-")}
        assert nodes[old]["kernel"] == "5.15.0-105-generic"
        assert nodes[old]["kernel_idmap_mounts"] is False
        assert nodes["userns-a"]["kernel_idmap_mounts"] is True
        assert nodes["userns-a"]["handlers"] == {"": True, "kata": True}
        kata = section["handlers"]["kata"]
        assert "userns-a" in kata["with"] and {"userns-b", old} <= set(kata["without"])
        assert section["root_workloads"] == 2 and section["maybe_root_workloads"] == 1
        moved = {w["name"]: w["root"] for w in section["would_move"]}
        assert moved == {"root": "yes", "unknown": "maybe"}
        (blocked,) = section["could_not_move"]
        assert (blocked["name"], blocked["reason"]) == ("host", "host-network")
        assert "hostNetwork: true" in blocked["message"]

        code = main(["audit", "--kubeconfig", str(apiserver.kubeconfig), "-n", namespace])
        out, _ = capsys.readouterr()
        assert "user namespaces (user-namespaces: auto): on: every Linux node supports" in out
        assert (
            f"kernels older than Linux 6.3 (idmapped mounts of some volume types fail): {old}"
            in out
        )
        assert "    Pod userns-audit/host: host-network: the pod sets hostNetwork: true" in out
    finally:
        cluster.remove_node(old)
