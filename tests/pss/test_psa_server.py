"""Capability spellings and version labels against a real kube-apiserver with Pod Security
Admission (the session's server from ``../shared/k8s``, v1.36): what PSA admits is what the
evaluator passes, and a pod that hardener fixes is admitted in a restricted namespace.

The conformance fixtures hold no ``drop: [all]`` and no malformed version label; the API
server is the ground truth for those.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from hardener import plan
from hardener.config import default_config
from hardener.pss import evaluate, parse_version
from tests.apiserver import APIServer

from .pods import restricted_pod

pytestmark = pytest.mark.apiserver

NAMESPACE = "psa-restricted"

DROP_LISTS: list[list[Any]] = [
    ["all"],
    ["All"],
    ["CAP_ALL"],
    ["cap_all"],
    ["all", "ALL"],
    ["ALL"],
    ["NET_RAW"],
]
ADD_LISTS: list[list[Any]] = [
    ["NET_BIND_SERVICE"],
    ["net_bind_service"],
    ["CAP_NET_BIND_SERVICE"],
    ["CHOWN"],
]
VERSION_LABELS = ["latest", "v1.0", "v1.25", "v1.99", "v1.07", "v1.00", "1.25", "V1.25", "v2.0"]


@pytest.fixture(scope="module")
def api(apiserver: APIServer) -> Iterator[client.CoreV1Api]:
    """The ``kubernetes`` client on the session's server, and a namespace enforcing
    restricted (latest)."""
    apiserver.create_namespace(NAMESPACE, {"pod-security.kubernetes.io/enforce": "restricted"})
    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def _admitted(api: client.CoreV1Api, pod: dict[str, Any]) -> bool:
    try:
        api.create_namespaced_pod(NAMESPACE, pod, dry_run="All")
    except ApiException as exc:
        assert exc.status == 403 and "violates PodSecurity" in str(exc.body), exc.body
        return False
    return True


def _pod(capabilities: dict[str, Any]) -> dict[str, Any]:
    spec = restricted_pod()
    del spec["initContainers"]
    spec["containers"][0]["image"] = "registry.k8s.io/pause"
    spec["containers"][0]["securityContext"]["capabilities"] = copy.deepcopy(capabilities)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_capability_spellings_as_psa_reads_them(api: client.CoreV1Api) -> None:
    cases = [{"drop": drop} for drop in DROP_LISTS]
    cases += [{"drop": ["ALL"], "add": add} for add in ADD_LISTS]
    wrong: list[str] = []
    for capabilities in cases:
        pod = _pod(capabilities)
        passes = not evaluate(pod, level="restricted", version="latest")
        if _admitted(api, pod) != passes:
            wrong.append(f"{capabilities}: evaluator says {'pass' if passes else 'fail'}")
        hardened = plan(pod, default_config(), evaluate=False).hardened
        admitted = _admitted(api, hardened)
        if admitted != (not evaluate(hardened)):
            wrong.append(f"{capabilities}: hardened, the evaluator and PSA disagree")
        if not admitted and "add" not in capabilities:
            drop = hardened["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"]
            wrong.append(f"{capabilities}: hardened to drop {drop}, still rejected")
    assert not wrong, "\n".join(wrong)


def test_version_labels_as_psa_reads_them(api: client.CoreV1Api) -> None:
    wrong: list[str] = []
    for text in VERSION_LABELS:
        labels = {"pod-security.kubernetes.io/enforce-version": text}
        try:
            api.patch_namespace(NAMESPACE, {"metadata": {"labels": labels}}, dry_run="All")
            accepted = True
        except ApiException as exc:
            assert exc.status == 422, exc.body
            accepted = False
        try:
            parse_version(text, strict=True)
            parsed = True
        except ValueError:
            parsed = False
        if accepted != parsed:
            wrong.append(f"{text!r}: PSA {'accepts' if accepted else 'refuses'} it")
    assert not wrong, "\n".join(wrong)
