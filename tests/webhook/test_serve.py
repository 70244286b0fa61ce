"""``hardener serve``: out of the box with a generated CA, the printed webhook configuration,
graceful shutdown on SIGTERM in a real process, and clear errors for bad command lines."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import ipaddress
import json
import logging
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import uvloop
import yaml
from aiohttp import web
from cryptography import x509

from hardener.certs import make_bundle, write_bundle
from hardener.cli import main
from hardener.config import default_config
from hardener.webhook import ServeOptions, serve, serve_webhook_configuration
from tests.conftest import free_port as _free_port
from tests.webhook.conftest import admission_review, decode_patch
from tests.webhook.test_review import POD

HEADERS = {"Content-Type": "application/json"}


def _banner_parts(text: str) -> tuple[dict[str, Any], Path]:
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    assert len(documents) == 1
    match = re.search(r"were made in (\S+) \(removed on exit\)", text)
    assert match, text
    return documents[0], Path(match.group(1))


@pytest.mark.asyncio
async def test_serve_works_out_of_the_box_with_a_generated_ca(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    # Runs on both loops (see conftest); the serving log line names the one in use.
    on_uvloop = isinstance(asyncio.get_running_loop(), uvloop.Loop)
    assert on_uvloop == request.node.name.endswith("[uvloop]")
    caplog.set_level(logging.INFO, logger="hardener.webhook")
    out = io.StringIO()
    stop = asyncio.Event()
    started = asyncio.Event()
    ports: dict[str, int] = {}

    def on_started(webhook: web.AppRunner, metrics: web.AppRunner) -> None:
        ports["webhook"] = webhook.addresses[0][1]
        ports["metrics"] = metrics.addresses[0][1]
        started.set()

    options = ServeOptions(
        config=default_config(),
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        sans=("webhook.example.test", "10.1.2.3"),
        cert_check_interval=0.0,
    )
    task = asyncio.create_task(
        serve(options, stop=stop, out=out, handle_signals=False, on_started=on_started)
    )
    await asyncio.wait_for(started.wait(), 60)
    serving = [r for r in caplog.records if r.getMessage() == "serving"]
    assert [r.fields["loop"] for r in serving] == ["uvloop" if on_uvloop else "asyncio"]
    configuration, directory = _banner_parts(out.getvalue())
    assert directory.is_dir()
    assert oct(directory.stat().st_mode & 0o777) == oct(0o700)
    assert oct((directory / "tls.key").stat().st_mode & 0o777) == oct(0o600)

    # The printed configuration is valid for the API server, and trusts the generated CA.
    for version in ("1.30", kubernetes_validate.latest_version()):
        kubernetes_validate.validate(configuration, version, strict=True)
    hooks = configuration["webhooks"]
    assert [hook["name"] for hook in hooks] == ["pods.hardener.dev", "workloads.hardener.dev"]
    url = f"https://webhook.example.test:{ports['webhook']}/mutate"
    assert {hook["clientConfig"]["url"] for hook in hooks} == {url}
    ca = base64.b64decode(hooks[0]["clientConfig"]["caBundle"])
    assert f"# CA bundle (base64): {hooks[0]['clientConfig']['caBundle']}" in out.getvalue()
    assert all(hook["timeoutSeconds"] > options.config.webhook.deadline_seconds for hook in hooks)

    context = ssl.create_default_context(cadata=ca.decode())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        doc = admission_review(copy.deepcopy(POD))
        async with session.post(
            f"https://localhost:{ports['webhook']}/mutate", data=json.dumps(doc), headers=HEADERS
        ) as resp:
            assert resp.status == 200
            assert decode_patch((await resp.json())["response"])
        async with session.get(f"https://127.0.0.1:{ports['webhook']}/readyz") as resp:
            assert resp.status == 200
        async with session.get(f"http://127.0.0.1:{ports['metrics']}/metrics") as resp:
            assert 'hardener_webhook_requests_total{outcome="patched"} 1.0' in await resp.text()
    _, writer = await asyncio.open_connection(
        "127.0.0.1", ports["webhook"], ssl=context, server_hostname="webhook.example.test"
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    names = (
        x509.load_der_x509_certificate(der)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "webhook.example.test"}
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.1.2.3"),
    }

    # Rotating the files in place is picked up by the running server: new connections get
    # the new certificate, and the reload is counted.
    rotated = make_bundle(["localhost"], ["127.0.0.1"])
    write_bundle(rotated, directory, force=True)
    fresh = ssl.create_default_context(cadata=rotated.ca_cert.decode())
    _, writer = await asyncio.open_connection(
        "127.0.0.1", ports["webhook"], ssl=fresh, server_hostname="localhost"
    )
    assert writer.get_extra_info("ssl_object").getpeercert(binary_form=True) == (
        ssl.PEM_cert_to_DER_cert(rotated.cert.decode())
    )
    writer.close()
    await writer.wait_closed()
    metrics_url = f"http://127.0.0.1:{ports['metrics']}/metrics"
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as resp:
        text = await resp.text()
    assert 'hardener_webhook_certificate_reloads_total{result="success"} 1.0' in text

    stop.set()
    assert await asyncio.wait_for(task, 30) == 0
    assert not directory.exists(), "the private key directory is removed on exit"


def test_webhook_configuration_timeout_stays_above_the_deadline() -> None:
    for deadline, timeout in ((0.5, 3), (3.0, 5), (10.0, 12), (29.5, 30)):
        doc = serve_webhook_configuration("https://h:1/mutate", "Zm9v", deadline_seconds=deadline)
        assert {hook["timeoutSeconds"] for hook in doc["webhooks"]} == {timeout}


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("hardener serve did not become healthy")


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    header, _, body = received.partition(b"\r\n\r\n")
    found = re.search(rb"Content-Length: (\d+)", header, re.I)
    assert found, header
    while len(body) < int(found.group(1)):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return header, body


# ``run_server`` is the process entry point of ``hardener serve``; the CLI is what users run.
_RUN_SERVER = (
    "import sys\n"
    "from hardener.config import default_config\n"
    "from hardener.webhook import ServeOptions, configure_logging, run_server\n"
    "configure_logging()\n"
    "options = ServeOptions(config=default_config(), host='127.0.0.1', port=int(sys.argv[1]),\n"
    "                       metrics_port=int(sys.argv[2]), insecure=True)\n"
    "sys.exit(run_server(options))\n"
)


def _serve_command(entry: str, port: int, metrics_port: int) -> list[str]:
    if entry == "run_server":
        return [sys.executable, "-c", _RUN_SERVER, str(port), str(metrics_port)]
    return [
        sys.executable,
        "-c",
        "import sys; from hardener.cli import main; sys.exit(main())",
        "serve",
        "--insecure",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
    ]


@pytest.mark.parametrize("entry", ["cli", "run_server"])
def test_sigterm_stops_accepting_and_finishes_the_request_in_flight(
    entry: str, tmp_path: Path
) -> None:
    port, metrics_port = _free_port(), _free_port()
    command = _serve_command(entry, port, metrics_port)
    log = tmp_path / "stderr.log"
    with (
        log.open("wb") as stderr,
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr) as process,
    ):
        try:
            _wait_healthy(metrics_port, process)
            doc = admission_review(copy.deepcopy(POD), namespace="shop")
            body = json.dumps(doc).encode()
            head = (
                "POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                # The request is in flight: headers and part of the body sent, the handler
                # waiting for the rest.
                sock.sendall(head + body[:200])
                time.sleep(0.3)
                process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 10
                while not _refuses(port):
                    assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                    time.sleep(0.05)
                sock.sendall(body[200:])
                header, answer = _read_response(sock)
            assert header.startswith(b"HTTP/1.1 200"), header
            response = json.loads(answer)["response"]
            assert response["uid"] == doc["request"]["uid"]
            assert decode_patch(response)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    events = [line["event"] for line in lines]
    shutting_down = "shutting down: no new connections, finishing the requests in flight"
    assert events.index(shutting_down) < events.index("review") < events.index("stopped")
    assert _refuses(metrics_port)
    serving = lines[events.index("serving")]
    # uvloop is a dependency of hardener (everywhere but Windows): the server runs on it.
    assert serving["loop"] == "uvloop"


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--insecure", "--tls-cert", "c", "--tls-key", "k"], "--insecure serves plain HTTP"),
        (["--insecure", "--san", "example.test"], "--san only applies"),
        (["--config", "{tmp}/bad.yaml"], "invalid config"),
        (
            ["--tls-cert", "{tmp}/missing.crt", "--tls-key", "{tmp}/missing.key"],
            "missing.crt: no such file",
        ),
        (
            ["--tls-cert", "{tmp}/bad.yaml", "--tls-key", "{tmp}/bad.yaml"],
            "not a usable certificate and key pair",
        ),
    ],
    ids=[
        "cert-without-key",
        "insecure-with-cert",
        "san-without-generation",
        "bad-config",
        "missing-cert",
        "not-a-cert",
    ],
)
def test_bad_command_lines_exit_2_with_the_reason(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("mode: loud\n")
    argv = ["serve", "--port", "0", "--metrics-port", "0", "--host", "127.0.0.1"]
    argv += [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
