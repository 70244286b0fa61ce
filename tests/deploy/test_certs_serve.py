"""`hardener certs` output served by `hardener serve`: the TLS handshake the API server makes,
for the service DNS name, succeeds against the CA in ca.crt."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hardener.cli import main
from tests.conftest import free_port as _free_port

SERVICE_NAME = "hardener.hardener-system.svc"


def _wait_ready(metrics_port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("hardener serve did not become ready")


def test_serve_with_certs_output_handshakes_for_the_service_name(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    assert (
        main(
            ["certs", "--service", "hardener", "--namespace", "hardener-system", "--out", str(out)]
        )
        == 0
    )
    port, metrics_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from hardener.cli import main; sys.exit(main())",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            str(metrics_port),
            "--tls-cert",
            str(out / "tls.crt"),
            "--tls-key",
            str(out / "tls.key"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(metrics_port, process)
        context = ssl.create_default_context(cafile=str(out / "ca.crt"))
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0a1b2c3d-0000-4000-8000-000000000001",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "CREATE",
                "namespace": "shop",
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "web"},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        }
        body = json.dumps(review).encode()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=SERVICE_NAME) as tls,
        ):
            assert SERVICE_NAME in {
                value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"
            }
            tls.sendall(
                b"POST /mutate?timeout=5s HTTP/1.1\r\nHost: "
                + SERVICE_NAME.encode()
                + b"\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        response = json.loads(payload)["response"]
        assert response["uid"] == review["request"]["uid"]
        assert response["allowed"] is True and response["patchType"] == "JSONPatch"
        # The same files must not verify for a name the certificate was not made for.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            try:
                context.wrap_socket(raw, server_hostname="other.example.com").close()
            except ssl.SSLCertVerificationError:
                pass
            else:
                raise AssertionError("a certificate for another name was accepted")
    finally:
        process.terminate()
        process.communicate(timeout=30)
