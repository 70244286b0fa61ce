"""``hardener serve`` over TLS in front of the session's kube-apiserver.

Two webhook processes run from one ``hardener certs`` bundle (its certificate carries the IP
address 127.0.0.1, which the API server checks when it calls ``https://127.0.0.1:PORT``): one
in the default mutate mode and one in warn mode. Each is registered with a
MutatingWebhookConfiguration built by ``hardener.webhook_config`` (``url`` client config,
``failurePolicy: Fail``) whose namespace selector also asks for ``e2e.hardener.dev/mode``, so a
namespace chooses its webhook by that label. Both learn image facts from the offline table
only (``images.lookup: false``, an empty cache), so that what they decide does not depend on
the network; the tests give ``hardener fix`` the same table facts (``table_facts``).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hardener.cli import main
from hardener.config import ImageSettings
from hardener.image_facts import ImageFacts
from hardener.images import resolve_images_sync
from hardener.webhook_config import webhook_configuration
from tests.apiserver import APIServer
from tests.conftest import free_port

# The loopback registries of the image tests (Debian's docker-registry), for test_images.py.
from tests.images.conftest import registries  # noqa: F401

MODE_LABEL = "e2e.hardener.dev/mode"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
OFFLINE_IMAGES = "images:\n  lookup: false\n  cache-dir: {cache}\n"
"""The ``images:`` block of the package's webhooks: the offline table and an empty cache."""


def table_facts(images: Iterable[str]) -> dict[str, ImageFacts]:
    """The facts the package's webhooks use for ``images``: the offline table's, else
    unknown (an empty cache, lookups off)."""
    with tempfile.TemporaryDirectory() as empty:
        settings = ImageSettings(lookup=False, cache_dir=empty)
        return resolve_images_sync(images, settings, offline=True)


@dataclass(frozen=True)
class Webhook:
    """One running ``hardener serve`` and the name of its webhook configuration."""

    url: str
    configuration: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics: str = ""
    """``http://127.0.0.1:PORT`` of its metrics port."""


def serve(
    tls: Path,
    work: Path,
    mode: str,
    *,
    config_text: str = "",
    args: tuple[str, ...] = (),
    lookups: bool = False,
) -> Webhook:
    """Start ``hardener serve`` in ``mode`` (``config_text`` adds config lines, ``args`` command
    line options) and wait until it is ready. ``lookups``: the server may look images up
    (every other server runs with ``HARDENER_IMAGES_OFFLINE=1``, as the tests do)."""
    env = dict(os.environ)
    if lookups:
        env.pop("HARDENER_IMAGES_OFFLINE", None)
    port, metrics_port = free_port(), free_port()
    config = work / f"{mode}.yaml"
    config.write_text(f"mode: {mode}\n{config_text}", encoding="utf-8")
    log = work / f"serve-{mode}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from hardener.cli import main; sys.exit(main())",
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--metrics-port",
                str(metrics_port),
                "--tls-cert",
                str(tls / "tls.crt"),
                "--tls-key",
                str(tls / "tls.key"),
                *args,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text(encoding="utf-8")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=1):
                break
        except OSError:
            assert time.monotonic() < deadline, "hardener serve did not become ready"
            time.sleep(0.1)
    return Webhook(
        f"https://127.0.0.1:{port}/mutate",
        f"hardener-e2e-{mode}",
        process,
        log,
        f"http://127.0.0.1:{metrics_port}",
    )


def register(apiserver: APIServer, name: str, url: str, ca: bytes, label: str) -> dict[str, Any]:
    """Create the configuration ``name``: hardener's webhooks, for namespaces with ``label``."""
    client = {"url": url, "caBundle": base64.b64encode(ca).decode()}
    configuration = webhook_configuration(client, failure_policy="Fail", timeout_seconds=10)
    configuration["metadata"]["name"] = name
    for webhook in configuration["webhooks"]:
        webhook["namespaceSelector"]["matchExpressions"].append(
            {"key": MODE_LABEL, "operator": "In", "values": [label]}
        )
    created: dict[str, Any] = apiserver.must("POST", MWC, configuration)
    return created


@pytest.fixture(scope="package")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tls")
    assert main(["certs", "--ip", "127.0.0.1", "--out", str(out), "--force"]) == 0
    return out


@pytest.fixture(scope="package")
def webhooks(
    apiserver: APIServer, tls: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Webhook]]:
    """Both webhooks, running and registered; unregistered and stopped afterwards."""
    work = tmp_path_factory.mktemp("serve")
    ca = (tls / "ca.crt").read_bytes()
    running: dict[str, Webhook] = {}
    try:
        for mode in ("mutate", "warn"):
            cache = work / f"image-cache-{mode}"
            running[mode] = hook = serve(
                tls, work, mode, config_text=OFFLINE_IMAGES.format(cache=cache)
            )
            register(apiserver, hook.configuration, hook.url, ca, mode)
        yield running
    finally:
        for hook in running.values():
            apiserver.request("DELETE", f"{MWC}/{hook.configuration}")
            hook.process.terminate()
            hook.process.wait(timeout=30)
