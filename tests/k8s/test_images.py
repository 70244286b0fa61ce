"""Image facts end to end: the real kube-apiserver calls ``hardener serve`` over TLS, and the
webhook learns each image's user from a real registry (Debian's ``docker-registry`` on
loopback, ``tests/images/conftest.py``) before it patches.

A pod created through the MutatingWebhookConfiguration comes back with the ``runAsUser``
that its image's ``/etc/passwd`` gives the image's named user, passes ``restricted:latest``
as the API server enforces it, and would be started by the kubelet (the replayed
``verifyRunAsNonRoot``); a numeric-user image keeps ``runAsNonRoot`` alone; a root image in
the same pod is left without it, on that container only.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardener.image_facts import ImageFacts
from hardener.kubelet import refusals
from hardener.locate import pod_sites
from tests.apiserver import APIServer
from tests.images.conftest import Registries
from tests.k8s.conftest import MODE_LABEL, MWC, RESTRICTED, Webhook, register, serve

pytestmark = pytest.mark.apiserver

LABEL = "images"
NAMESPACE = "e2e-images"


@pytest.fixture(scope="module")
def image_webhook(
    apiserver: APIServer,
    tls: Path,
    registries: Registries,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Webhook]:
    """``hardener serve`` with lookups on the loopback registry, registered for namespaces
    labelled ``e2e.hardener.dev/mode: images``."""
    work = tmp_path_factory.mktemp("serve-images")
    config = (
        "images:\n"
        f"  cache-dir: {work / 'cache'}\n"
        "  root: keep\n"
        "  registries:\n"
        f'    "{registries.anonymous.host}": {{insecure: true}}\n'
    )
    hook = serve(tls, work, "mutate", config_text=config, lookups=True)
    name = "hardener-e2e-images"
    try:
        register(apiserver, name, hook.url, (tls / "ca.crt").read_bytes(), LABEL)
        apiserver.create_namespace(NAMESPACE, {**RESTRICTED, MODE_LABEL: LABEL})
        yield hook
    finally:
        apiserver.request("DELETE", f"{MWC}/{name}")
        hook.process.terminate()
        hook.process.wait(timeout=30)


def _pod(name: str, *images: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
        },
    }


def _metric(hook: Webhook, sample: str) -> float:
    with urllib.request.urlopen(f"{hook.metrics}/metrics", timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not exported:\n{text}")


def _image_users(registries: Registries) -> dict[str, ImageFacts]:
    """The users the images were pushed with, as the kubelet would read them."""
    pushed = {"named": "web", "numeric": "1000", "root": ""}
    return {
        registries.images[name]: ImageFacts(registries.images[name], "registry", user=user)
        for name, user in pushed.items()
    }


def test_a_named_user_image_comes_back_with_its_uid(
    apiserver: APIServer,
    image_webhook: Webhook,
    registries: Registries,
) -> None:
    image = registries.images["named"]  # User "web", uid 101 in the image's /etc/passwd
    answer = apiserver.create(_pod("named", image), NAMESPACE)
    assert answer.status == 201, answer.body
    pod = answer.body
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["runAsUser"] == 101
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert any('runs as user "web", uid 101' in w for w in answer.warnings), answer.warnings
    # The kubelet would start it: the replayed verifyRunAsNonRoot refuses nothing.
    users = _image_users(registries)
    for site in pod_sites(pod):
        assert not refusals(site, users), refusals(site, users)
    assert _metric(image_webhook, 'hardener_image_lookups_total{outcome="registry"}') >= 1


def test_numeric_and_root_images_in_one_pod(
    apiserver: APIServer,
    image_webhook: Webhook,
    registries: Registries,
) -> None:
    pod = _pod("mixed", registries.images["numeric"], registries.images["root"])
    # Restricted would refuse the root container; the dry run shows why, after the patch.
    answer = apiserver.create(pod, NAMESPACE, dry_run=True)
    assert answer.status == 403, answer.body
    assert "runAsNonRoot" in answer.message and '"c1"' in answer.message
    # In a namespace that only warns, the same pod is created, and each container kept its
    # own decision: runAsNonRoot on the numeric image's container, not on the root one.
    warn_ns = "e2e-images-warn"
    apiserver.create_namespace(
        warn_ns, {MODE_LABEL: LABEL, "pod-security.kubernetes.io/warn": "restricted"}
    )
    created = apiserver.create(pod, warn_ns)
    assert created.status == 201, created.body
    numeric, root = created.body["spec"]["containers"]
    assert numeric["securityContext"]["runAsNonRoot"] is True
    assert "runAsUser" not in numeric["securityContext"]
    assert "runAsNonRoot" not in root["securityContext"]
    assert "runAsNonRoot" not in created.body["spec"].get("securityContext", {})
    assert any("runs as root" in w for w in created.warnings), created.warnings
    users = _image_users(registries)
    for site in pod_sites(created.body):
        assert not refusals(site, users)
