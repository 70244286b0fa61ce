"""``fix``, ``check`` and ``audit`` look images up: against Debian's ``docker-registry`` on
loopback, configured as the mirror of ``docker.io`` (``images.registries.docker.io.mirror``,
``insecure: true``), so manifests name images as they would on Docker Hub (``app/named:1``).

The registry's images (``tests/images/conftest.py``): ``app/named:1`` runs as ``web``, uid 101
in its ``/etc/passwd`` layer; ``app/numeric:1`` runs as ``1000`` and declares the VOLUMEs
``/data`` and ``/cache``; ``app/root:1`` has no user.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.cli import main
from hardener.kubelet import refusals
from hardener.locate import pod_sites
from tests.apiserver import APIServer
from tests.images.conftest import Registries

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: shop
spec:
  containers:
  - name: named
    image: app/named:1
  - name: numeric
    image: app/numeric:1
"""

ROOT_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: batch
spec:
  containers:
  - name: job
    image: app/root:1
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def mirror_config(path: Path, mirror: str, *, timeout: float = 5.0, **more: str) -> Path:
    """A config that sends every docker.io lookup (and each host in ``more``) to a mirror."""
    registries: dict[str, Any] = {"docker.io": {"mirror": mirror, "insecure": True}}
    registries.update({host: {"mirror": url, "insecure": True} for host, url in more.items()})
    path.write_text(
        yaml.safe_dump({"images": {"timeout-seconds": timeout, "registries": registries}}),
        encoding="utf-8",
    )
    return path


class Silent:
    """A TCP port that accepts connections and never answers: a registry host that times
    out. Counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
        self.thread.join(5)


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


def containers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in obj["spec"]["containers"]}


def test_fix_decides_from_the_images_looked_up_in_the_mirror(
    registries: Registries,
    images_online: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = mirror_config(tmp_path / "hardener.yaml", registries.anonymous.base)
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    code, out, err = run(["fix", "--config", str(config), str(path)], capsys)
    assert code == 0, err
    fixed = yaml.safe_load(path.read_text())
    by_name = containers(fixed)
    # The named user: its uid from the image's /etc/passwd, next to runAsNonRoot.
    # Both can take runAsNonRoot, so it goes on the pod.
    assert fixed["spec"]["securityContext"]["runAsNonRoot"] is True
    named = by_name["named"]["securityContext"]
    assert named["runAsUser"] == 101
    # The numeric user: runAsNonRoot alone, which the kubelet verifies against 1000.
    numeric = by_name["numeric"]["securityContext"]
    assert "runAsUser" not in numeric
    # Its VOLUMEs are writable under the read-only root.
    assert numeric["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in fixed["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in by_name["numeric"]["volumeMounts"]}
    for volume_path in ("/data", "/cache"):
        assert volume_path in mounts, mounts
        assert volumes[mounts[volume_path]] == {"name": mounts[volume_path], "emptyDir": {}}
        assert not any(m.get("readOnly") for m in by_name["numeric"]["volumeMounts"])
    # The kubelet would start every container.
    assert [r for site in pod_sites(fixed) for r in refusals(site, None)] == []
    assert "  images: 2 images, looked up: 2 registry" in err
    # The facts were cached under $XDG_CACHE_HOME: a second run asks the registry nothing.
    assert any((images_online / "hardener" / "images").rglob("*.json"))
    path.write_text(POD)
    code, out, err = run(
        ["fix", "--check", "--format", "json", "--config", str(config), str(path)], capsys
    )
    images = json.loads(out)["images"]
    assert (images["lookup"], images["requests"]) == ("on", 0)
    assert images["by_source"] == {"registry": 0, "cache": 2, "table": 0, "unknown": 0}


def test_a_root_image_keeps_its_user_and_is_reported(
    registries: Registries,
    images_online: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = mirror_config(tmp_path / "hardener.yaml", registries.anonymous.base)
    path = tmp_path / "pod.yaml"
    path.write_text(ROOT_POD)
    code, out, err = run(["fix", "--check", "--config", str(config), str(path)], capsys)
    assert code == 1
    assert "[run-as-non-root]" not in out  # no change by that rule: the image runs as root
    assert "  images: 1 image, looked up: 1 registry" in err
    code, out, _ = run(
        ["fix", "--check", "--format", "json", "--config", str(config), str(path)], capsys
    )
    report = json.loads(out)
    [finding] = [
        f for f in report["files"][0]["documents"][0]["findings"] if f["rule"] == "run-as-non-root"
    ]
    assert (
        "image app/root:1 runs as root; set runAsUser or use a non-root image"
        in (finding["message"])
    )
    [facts] = report["images"]["images"]
    # Looked up by the run before: from the cache now.
    assert (facts["source"], facts["user"], facts["reference"]) == (
        "cache",
        "",
        "docker.io/app/root:1",
    )
    assert report["images"]["requests"] == 0


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "markdown", "html"])
def test_fix_check_in_every_format_uses_the_lookups(
    fmt: str,
    registries: Registries,
    images_online: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = mirror_config(tmp_path / "hardener.yaml", registries.anonymous.base)
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    code, out, err = run(
        ["fix", "--check", "--format", fmt, "--config", str(config), str(path)], capsys
    )
    assert code == 1, err
    # The named user's uid reached the engine, whatever the format.
    assert "runAsUser=101" in out or "runAsUser: 101" in out, out[:2000]
    assert "  images: 2 images, looked up: 2 registry" in err
    assert path.read_text() == POD


def test_check_replays_the_kubelet_with_the_looked_up_users(
    registries: Registries,
    images_online: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = mirror_config(tmp_path / "hardener.yaml", registries.anonymous.base)
    path = tmp_path / "pod.yaml"
    # runAsNonRoot set by hand on a pod whose image runs as a name: the kubelet refuses it.
    path.write_text(POD.replace("spec:\n", "spec:\n  securityContext: {runAsNonRoot: true}\n"))
    code, out, err = run(["check", "--config", str(config), str(path)], capsys)
    assert code == 1
    refused = [line for line in out.splitlines() if "[kubelet-run-as-non-root]" in line]
    assert len(refused) == 1 and 'container "named"' in refused[0], out
    assert "non-numeric user" in refused[0]
    # Offline, the cache of the run before still knows the image ...
    code, out, err = run(["check", "--offline", "--config", str(config), str(path)], capsys)
    assert "[kubelet-run-as-non-root]" in out
    assert "lookups off (--offline): 2 cache" in err
    # ... and with an empty cache it is unknown: nothing can be proven about it.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    code, out, err = run(["check", "--offline", "--config", str(config), str(path)], capsys)
    assert "[kubelet-run-as-non-root]" not in out
    assert "lookups off (--offline): 2 unknown" in err
    # After fix, nothing is refused: fix gives the named container its uid.
    code, out, err = run(["check", "--after-fix", "--config", str(config), str(path)], capsys)
    assert "[kubelet-run-as-non-root]" not in out


def test_offline_sends_no_request(
    images_online: Path,
    silent: Silent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = mirror_config(tmp_path / "hardener.yaml", silent.url, timeout=0.5)
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    code, out, err = run(
        ["fix", "--check", "--offline", "--format", "json", "--config", str(config), str(path)],
        capsys,
    )
    images = json.loads(out)["images"]
    assert (images["lookup"], images["offline_reason"], images["requests"]) == (
        "off",
        "--offline",
        0,
    )
    assert images["by_source"]["unknown"] == 2
    # The same with the environment variable and with images.lookup: false.
    monkeypatch.setenv("HARDENER_IMAGES_OFFLINE", "1")
    code, out, err = run(["check", "--config", str(config), str(path)], capsys)
    assert "lookups off (HARDENER_IMAGES_OFFLINE=1)" in err
    monkeypatch.delenv("HARDENER_IMAGES_OFFLINE")
    data = yaml.safe_load(config.read_text())
    data["images"]["lookup"] = False
    config.write_text(yaml.safe_dump(data))
    code, out, err = run(["fix", "--diff", "--config", str(config), str(path)], capsys)
    assert code == 0 and "lookups off (images.lookup: false)" in err
    time.sleep(0.1)
    assert silent.connections == 0


def test_an_unreachable_registry_costs_one_timeout_per_host(
    images_online: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub, quay = Silent(), Silent()
    try:
        timeout = 1.0
        config = mirror_config(
            tmp_path / "hardener.yaml", hub.url, timeout=timeout, **{"quay.io": quay.url}
        )
        # Twelve images on two silent hosts, in six files.
        for index in range(6):
            (tmp_path / f"p{index}.yaml").write_text(
                POD.replace("app/named:1", f"app/a{index}:1").replace(
                    "app/numeric:1", f"quay.io/org/b{index}:1"
                )
            )
        started = time.monotonic()
        code, out, err = run(
            ["fix", "--check", "--format", "json", "--config", str(config), str(tmp_path)],
            capsys,
        )
        elapsed = time.monotonic() - started
        assert code == 1, err  # the files would change: the lookups failing fails nothing
        images = json.loads(out)["images"]
        assert images["total"] == 12 and images["by_source"]["unknown"] == 12
        # One probe per host, each given up after 0.8 of the timeout; nothing else was sent.
        assert images["requests"] == 2
        assert (hub.connections, quay.connections) == (1, 1)
        # Both hosts are probed side by side: about one timeout in all, never one per image
        # (twelve); generous for a loaded machine.
        assert elapsed < 6 * timeout, elapsed
        for facts in images["images"]:
            assert "did not answer" in facts["detail"] or "failed moments ago" in facts["detail"]
        lines = err.splitlines()
        unknown = [line for line in lines if line.startswith("    unknown:")]
        # One reason per host in the summary.
        assert len(unknown) == 2, unknown
        assert all("did not answer" in line for line in unknown), unknown
    finally:
        hub.close()
        quay.close()


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "shop"}},
        "template": {
            "metadata": {"labels": {"app": "shop"}},
            "spec": {
                "containers": [
                    {"name": "named", "image": "app/named:1"},
                    {"name": "numeric", "image": "app/numeric:1"},
                    {"name": "job", "image": "app/root:1"},
                ]
            },
        },
    },
}


@pytest.mark.apiserver
def test_audit_decides_from_the_images_looked_up_in_the_mirror(
    apiserver: APIServer,
    registries: Registries,
    images_online: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace = "images-audit"
    apiserver.create_namespace(namespace)
    answer = apiserver.create(DEPLOYMENT, namespace)
    assert answer.status == 201, answer.message
    config = mirror_config(tmp_path / "hardener.yaml", registries.anonymous.base)
    argv = ["audit", "--kubeconfig", str(apiserver.kubeconfig), "-n", namespace]
    code, out, err = run([*argv, "--config", str(config), "--format", "json"], capsys)
    assert code == 1, err
    report = json.loads(out)
    [workload] = report["namespaces"][0]["workloads"]
    changes = {(c["pointer"], json.dumps(c["after"])) for c in workload["changes"]}
    base = "/spec/template/spec/containers"
    # The named user gets its uid; the numeric one runAsNonRoot (the containers differ: the
    # root image keeps its user, so runAsNonRoot goes on each container that can take it).
    assert (f"{base}/0/securityContext/runAsUser", "101") in changes
    assert (f"{base}/0/securityContext/runAsNonRoot", "true") in changes
    assert (f"{base}/1/securityContext/runAsNonRoot", "true") in changes
    assert not any(p.startswith(f"{base}/2/securityContext/runAsNonRoot") for p, _ in changes)
    assert not any(p == "/spec/template/spec/securityContext/runAsNonRoot" for p, _ in changes)
    # The numeric image's VOLUMEs are mounted under the read-only root.
    mounted = {
        json.loads(after)["mountPath"]
        for pointer, after in changes
        if pointer.startswith(f"{base}/1/volumeMounts")
    }
    assert {"/data", "/cache"} <= mounted, mounted
    images = report["images"]
    assert images["by_source"] == {"registry": 3, "cache": 0, "table": 0, "unknown": 0}
    assert report["summary"]["images"] == images["by_source"]
    # In text, the images section; offline, nothing is asked (the cache still answers).
    code, out, err = run([*argv, "--config", str(config), "--offline"], capsys)
    assert "images: 3 images, lookups off (--offline): 3 cache" in out
