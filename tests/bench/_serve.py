"""A real ``hardener serve`` process for the memory benchmark and the soak: certificates made
by ``hardener certs``, TLS, a config file, and what ``/proc`` says about the process.

Only the standard library, so that the scripts measure the server and not their own client.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
CLI = "import sys; from hardener.cli import main; sys.exit(main())"


def hardener(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the ``hardener`` CLI of this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], check=True, text=True, env=env, cwd=REPO, **kwargs
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_certs(directory: Path) -> Path:
    """``hardener certs`` for 127.0.0.1 into ``directory``; returns the CA file."""
    hardener("certs", "--out", str(directory), "--ip", "127.0.0.1", capture_output=True)
    return directory / "ca.crt"


@dataclass
class Server:
    """A ``hardener serve`` process listening on 127.0.0.1 with TLS."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    context: ssl.SSLContext

    @property
    def pid(self) -> int:
        return self.process.pid

    def connection(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=timeout, context=self.context
        )

    def post(self, body: bytes, timeout: float = 30) -> tuple[int, Any]:
        """POST ``body`` to /mutate on a new connection: the status and the JSON answer."""
        conn = self.connection(timeout)
        try:
            return post_on(conn, body)
        finally:
            conn.close()

    def metrics(self) -> dict[str, float]:
        """The /metrics samples, by name with labels as written (``name{a="b"}``)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def post_on(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, Any]:
    conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, json.loads(data) if data else None


def start_server(work: Path, config: str, log: IO[bytes], ca: Path | None = None) -> Server:
    """Start ``hardener serve`` with ``config`` (YAML text) and the certificates of ``work``
    (made there by ``hardener certs`` unless ``ca`` is given); wait until it is ready."""
    ca = ca if ca is not None else make_certs(work)
    config_file = work / "config.yaml"
    config_file.write_text(config)
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "serve",
            "--config",
            str(config_file),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            str(metrics_port),
            "--tls-cert",
            str(work / "tls.crt"),
            "--tls-key",
            str(work / "tls.key"),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    server = Server(process, port, metrics_port, ssl.create_default_context(cafile=str(ca)))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"hardener serve exited early with {process.returncode}")
        try:
            url = f"http://127.0.0.1:{metrics_port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise SystemExit("hardener serve did not become ready")


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"/proc/{pid}/status has no {field}")
    return int(match.group(1))


def reset_peak(pid: int) -> None:
    """Start ``VmHWM`` over from the current RSS (Linux 4.0 and later)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from the parent ids in ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def tree_pss_kib(pid: int) -> int:
    """The memory of ``pid`` and its descendants together (the webhook's worker processes):
    the sum of their proportional set sizes, which counts a page that forked processes share
    once, as the container's memory limit does (a sum of RSS would count it in each)."""
    total = 0
    for member in _descendants(pid):
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue  # gone meanwhile
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total


class TreePeak:
    """The largest ``tree_pss_kib`` seen while the ``with`` block runs (sampled every 5 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak_kib = max(self.peak_kib, tree_pss_kib(self.pid))

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def memory_limit_mib() -> int:
    """The webhook container's memory limit in ``deploy/base/deployment.yaml``, in MiB."""
    text = (REPO / "deploy" / "base" / "deployment.yaml").read_text()
    match = re.search(r"limits:\n(?:\s+\S+: \S+\n)*?\s+memory: (\d+)Mi", text)
    if match is None:
        raise SystemExit("deploy/base/deployment.yaml: no memory limit in Mi found")
    return int(match.group(1))
