"""Every rendered overlay applies to a real kube-apiserver (``kubectl apply --dry-run=server``):
the server validates every field of every object, runs Pod Security Admission on the
Deployment in the ``hardener-system`` namespace (which enforces restricted) and checks the
webhook configuration as it would store it.

The cert-manager overlay needs the ``cert-manager.io/v1`` kinds: the test creates the two it
uses (Certificate, Issuer) as schemaless CRDs, which is all a server without cert-manager
knows of them. The ``hardener-system`` namespace itself is created for real first: a server
dry run does not keep a namespace for the objects that follow it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver import APIServer
from tests.deploy.deploy_support import TARGETS, Obj, pick

pytestmark = pytest.mark.apiserver

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def cluster(
    apiserver: APIServer, kubectl: Path, rendered: dict[str, list[Obj]]
) -> Iterator[APIServer]:
    """The server with the hardener-system namespace and the cert-manager kinds."""
    namespace = yaml.safe_dump(pick(rendered["base"], "Namespace"))
    created = apiserver.kubectl(kubectl, "apply", "-f", "-", stdin=namespace)
    assert created.returncode == 0, created.stderr
    names = []
    for kind, plural in (("Certificate", "certificates"), ("Issuer", "issuers")):
        apiserver.must("POST", CRDS, _crd(kind, plural))
        names.append(f"{plural}.cert-manager.io")
    deadline = time.monotonic() + 30
    for name in names:
        while not any(
            c["type"] == "Established" and c["status"] == "True"
            for c in apiserver.must("GET", f"{CRDS}/{name}").get("status", {}).get("conditions", [])
        ):
            assert time.monotonic() < deadline, f"CRD {name} not established"
            time.sleep(0.1)
    try:
        yield apiserver
    finally:
        # The namespace stays: with no namespace controller it would only hang in Terminating.
        for name in names:
            apiserver.request("DELETE", f"{CRDS}/{name}")


@pytest.mark.parametrize("target", TARGETS)
def test_overlay_applies_with_server_dry_run(
    cluster: APIServer, kubectl: Path, rendered: dict[str, list[Obj]], target: str
) -> None:
    objects = rendered[target]
    result = cluster.kubectl(
        kubectl, "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(objects)
    )
    assert result.returncode == 0, result.stderr
    applied = {line.split()[0] for line in result.stdout.splitlines()}
    assert len(applied) == len(objects), result.stdout
    assert all(line.endswith("(server dry run)") for line in result.stdout.splitlines())
    # Pod Security Admission sees the Deployment's pod template in a restricted namespace.
    assert "PodSecurity" not in result.stderr, result.stderr
    assert "Warning" not in result.stderr, result.stderr
