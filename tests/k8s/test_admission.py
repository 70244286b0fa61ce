"""Admission end to end: the real kube-apiserver calls ``hardener serve`` over TLS.

The server builds the AdmissionReview itself, applies the patch, runs Pod Security Admission
(``restricted:latest``, enforced) on the result and validates every field. What comes back is
compared with what ``hardener fix`` writes for the same manifest, sent through the same server
in a namespace the webhook leaves alone.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hardener.fixer.run import FixOptions, fix_text
from hardener.locate import image_references
from hardener.model import InvalidObjectError
from hardener.pss import evaluate
from tests.apiserver import RESOURCES, Answer, APIServer
from tests.k8s.conftest import MODE_LABEL, MWC, RESTRICTED, Webhook, register, table_facts
from tests.webhook.conftest import as_json, corpus_files, documents, objects_of

pytestmark = pytest.mark.apiserver

FAILED_CALL = "failed calling webhook"
SKIP = {"hardener.dev/skip": "true"}


def _pod(name: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        # The image cannot be looked up here; the explicit non-root user makes its own user
        # irrelevant, so hardener can add runAsNonRoot and the pod passes restricted.
        "spec": {
            "securityContext": {"runAsUser": 1000},
            "containers": [{"name": "app", "image": "registry.example/app:1", **container}],
        },
    }


@pytest.fixture(scope="module")
def namespaces(apiserver: APIServer, webhooks: dict[str, Webhook]) -> dict[str, str]:
    """hardened: restricted, mutate webhook. reference: restricted, the webhook skips it.
    warned: the warn-mode webhook; restricted is only warned about (the unchanged pod must be
    admitted)."""
    made = {
        "hardened": ("e2e-hardened", {**RESTRICTED, MODE_LABEL: "mutate"}),
        "reference": ("e2e-reference", {**RESTRICTED, MODE_LABEL: "mutate", **SKIP}),
        "warned": (
            "e2e-warned",
            {MODE_LABEL: "warn", "pod-security.kubernetes.io/warn": "restricted"},
        ),
    }
    for name, labels in made.values():
        apiserver.create_namespace(name, labels)
    return {key: name for key, (name, _) in made.items()}


_SERVER_SET = ("uid", "creationTimestamp", "managedFields", "resourceVersion", "generation")


_JOB_CONTROLLER_LABELS = (
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "job-name",
    "batch.kubernetes.io/job-name",
)


def _comparable(body: Any) -> Any:
    """The object without what the server makes up per request: uid, times, field managers,
    generated names (and the labels made of the uid and the name), the random suffix of the
    service-account token volume."""
    body = copy.deepcopy(body)
    metadata = body.get("metadata", {})
    made_up = [metadata.get("uid", "")]
    if "generateName" in metadata:
        made_up.append(metadata.get("name", ""))
    for key in (*_SERVER_SET, "namespace"):
        metadata.pop(key, None)
    if body["kind"] == "Job":
        # A Job without labels takes its template's label map while defaulting; the Job
        # strategy then adds the controller labels to that shared map, so they show on the
        # Job too. Any mutating webhook breaks that sharing (the patched object is decoded
        # afresh): the labels then stay on the template, where the controller reads them.
        for key in _JOB_CONTROLLER_LABELS:
            metadata.get("labels", {}).pop(key, None)
    # Volumes and mounts are keyed by name and path: their order says nothing. The
    # ServiceAccount admission plugin adds its token volume before the webhooks run, so the
    # webhook appends after it, while `hardener fix` output gets it appended afterwards.
    for spec in _pod_specs(body):
        spec.get("volumes", []).sort(key=lambda v: v["name"])
        for field in ("containers", "initContainers"):
            for container in spec.get(field, []):
                container.get("volumeMounts", []).sort(key=lambda m: m["mountPath"])
    text = json.dumps(body, sort_keys=True)
    made_up += {w[:21] for w in text.split('"') if w.startswith("kube-api-access-")}
    for value in filter(None, made_up):
        text = text.replace(value, "*")
    return json.loads(text)


def _pod_specs(body: dict[str, Any]) -> list[dict[str, Any]]:
    spec = body.get("spec", {})
    if body["kind"] == "Pod":
        return [spec]
    if body["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return [spec.get("template", {}).get("spec", {})]


def _has_containers(obj: dict[str, Any]) -> bool:
    specs = _pod_specs(obj)
    return all(isinstance(s, dict) and isinstance(s.get("containers"), list) for s in specs)


def _images(obj: dict[str, Any]) -> list[str]:
    try:
        return image_references(obj)
    except InvalidObjectError:
        return []


def _prepared(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as it would be created in a test namespace (the path gives the namespace)."""
    obj = copy.deepcopy(obj)
    metadata = obj.setdefault("metadata", {})
    metadata.pop("namespace", None)
    if not metadata.get("name") and not metadata.get("generateName"):
        metadata["name"] = "unnamed"
    return obj


def _violates_pss(answer: Answer) -> bool:
    return answer.status == 403 and "violates PodSecurity" in answer.message


def _corpus_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, original, fixed) for each distinct Pod and workload of the corpus that the
    server serves and that has a pod spec, with the ``hardener fix`` result of its file."""
    cases: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for name, text in corpus_files():
        originals = documents(text)
        if not any(
            (obj.get("apiVersion"), obj.get("kind")) in RESOURCES
            for doc in originals
            for obj in objects_of(doc)
        ):
            continue
        images = [image for doc in originals for obj in objects_of(doc) for image in _images(obj)]
        # The webhook's facts: the offline table's (tests/k8s/conftest.py).
        result = fix_text(text, name, FixOptions(images=table_facts(images)))
        if result.error is not None or result.skipped is not None:
            continue  # templates and files the fixer refuses: nothing to compare with
        fixed_documents = documents(result.fixed) if result.fixed is not None else originals
        for index, doc in enumerate(originals):
            fixed_objects = list(objects_of(fixed_documents[index]))
            for position, obj in enumerate(objects_of(doc)):
                if (obj.get("apiVersion"), obj.get("kind")) not in RESOURCES:
                    continue  # a version the server no longer serves (extensions/v1beta1 ...)
                if not _has_containers(obj):
                    # Kustomize patches and the like: the subject of
                    # test_an_object_hardener_cannot_harden_is_allowed_with_a_warning.
                    continue
                original = _prepared(as_json(obj))
                fixed = _prepared(as_json(fixed_objects[position]))
                key = json.dumps(original, sort_keys=True)
                cases.setdefault(key, (f"{name}#{index}.{position}", original, fixed))
    return list(cases.values())


def test_corpus_through_the_admission_chain(
    apiserver: APIServer, namespaces: dict[str, str]
) -> None:
    """Every distinct Pod and workload of the corpus, created by server-side dry run: what
    the webhook makes of it equals what the server makes of the ``hardener fix`` output,
    status included; a Pod is admitted unless hardener's own PSS verdict on the fixed object
    says why not, and is refused by Pod Security Admission only then."""
    cases = _corpus_cases()

    def send(case: tuple[str, dict[str, Any], dict[str, Any]]) -> tuple[Answer, Answer]:
        _, original, fixed = case
        return (
            apiserver.create(original, namespaces["hardened"], dry_run=True),
            apiserver.create(fixed, namespaces["reference"], dry_run=True),
        )

    # A few requests in flight, as a cluster sends them; the webhook answers them together.
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(send, cases))
    problems: list[str] = []
    admitted = changed = refused_by_pss = 0
    for (where, original, fixed), (got, want) in zip(cases, answers, strict=True):
        if FAILED_CALL in got.message:
            problems.append(f"{where}: {got.message}")
            continue
        if got.status != want.status:
            problems.append(
                f"{where}: webhook {got.status} {got.message!r}, "
                f"fixed {want.status} {want.message!r}"
            )
            continue
        verdict = evaluate(fixed, level="restricted", version="latest")
        if got.status == 201:
            admitted += 1
            changed += original != fixed
            if _comparable(got.body) != _comparable(want.body):
                problems.append(f"{where}: the server's object differs from the fix")
            if original["kind"] == "Pod" and verdict:
                problems.append(f"{where}: admitted, but hardener finds {verdict}")
        elif _violates_pss(got):
            refused_by_pss += 1
            if not verdict:
                problems.append(
                    f"{where}: PSA refused it ({got.message}), hardener finds no violation "
                    "in the fixed object"
                )
    assert not problems, "\n".join(problems[:25])
    assert len(cases) > 150 and admitted > 100 and changed > 80, (len(cases), admitted, changed)
    assert refused_by_pss > 0, "no corpus pod keeps an explicit value PSS forbids"


def test_a_created_pod_is_stored_hardened_and_the_audit_log_shows_the_mutation(
    apiserver: APIServer, namespaces: dict[str, str]
) -> None:
    namespace = namespaces["hardened"]
    pod = _pod("audited")
    created = apiserver.create(pod, namespace)
    assert created.status == 201, created.body
    assert any(w.startswith("hardener applied run-as-non-root") for w in created.warnings)
    stored = apiserver.must("GET", f"/api/v1/namespaces/{namespace}/pods/audited")
    assert stored["spec"]["securityContext"]["runAsNonRoot"] is True
    assert stored["spec"]["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    events = [
        e
        for e in apiserver.audit_events()
        if e.get("stage") == "ResponseComplete"
        and e["verb"] == "create"
        and e["objectRef"].get("resource") == "pods"
        and e["objectRef"].get("namespace") == namespace
        and e["objectRef"].get("name") == "audited"
    ]
    assert len(events) == 1, events
    annotations = events[0]["annotations"]
    mutation = json.loads(annotations["mutation.webhook.admission.k8s.io/round_0_index_0"])
    assert mutation == {
        "configuration": "hardener-e2e-mutate",
        "webhook": "pods.hardener.dev",
        "mutated": True,
    }
    patch = json.loads(annotations["patch.webhook.admission.k8s.io/round_0_index_0"])
    assert patch["patchType"] == "JSONPatch" and patch["patch"]
    assert any(op["path"] == "/spec/securityContext/runAsNonRoot" for op in patch["patch"]) or any(
        op["path"] == "/spec/securityContext" for op in patch["patch"]
    )


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "no-pod-spec"},
            "spec": {
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}}},
            },
        },
    ],
    ids=["pod-without-containers", "deployment-without-pod-spec"],
)
def test_an_object_hardener_cannot_harden_is_allowed_with_a_warning(
    apiserver: APIServer, namespaces: dict[str, str], obj: dict[str, Any]
) -> None:
    """The API server sends ``containers: null`` for these (mutation runs before validation):
    hardener must let them through with a warning and leave the verdict to validation."""
    answer = apiserver.create(obj, namespaces["hardened"], dry_run=True)
    assert FAILED_CALL not in answer.message, answer.message
    assert answer.status == 422 and answer.body["reason"] == "Invalid", answer.body
    assert "containers: Required value" in answer.message
    assert any(w.startswith("hardener") for w in answer.warnings), answer.warnings


def test_warn_mode_warnings_reach_the_client_and_nothing_changes(
    apiserver: APIServer, namespaces: dict[str, str]
) -> None:
    pod = _pod("warned")
    answer = apiserver.create(pod, namespaces["warned"], dry_run=True)
    assert answer.status == 201, answer.body
    # What the pod set, nothing more.
    assert answer.body["spec"]["securityContext"] == {"runAsUser": 1000}
    assert answer.body["spec"]["containers"][0].get("securityContext") is None
    would = [w for w in answer.warnings if w.startswith("hardener would apply ")]
    assert {w.split()[3] for w in would} >= {
        "run-as-non-root",
        "seccomp-runtime-default",
        "drop-all-capabilities",
        "no-privilege-escalation",
    }, answer.warnings
    # Pod Security Admission's own warning: the object really went through unchanged.
    assert any(
        w.startswith('would violate PodSecurity "restricted:latest"') for w in answer.warnings
    )


class _Labeller(BaseHTTPRequestHandler):
    """A second mutating webhook that adds a label after hardener, so that the API server
    reinvokes hardener (``reinvocationPolicy: IfNeeded``)."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        labels = review["request"]["object"]["metadata"].get("labels")
        ops: list[dict[str, Any]] = (
            [{"op": "add", "path": "/metadata/labels", "value": {"relabelled": "yes"}}]
            if labels is None
            else [{"op": "add", "path": "/metadata/labels/relabelled", "value": "yes"}]
        )
        response = {
            "uid": review["request"]["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(ops).encode()).decode(),
        }
        body = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def labeller(apiserver: APIServer, tls: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Labeller)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls / "tls.crt", tls / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = "zz-e2e-labeller"  # configurations are called in name order: after hardener's
    url = f"https://127.0.0.1:{server.server_address[1]}/label"
    configuration = register(apiserver, name, url, (tls / "ca.crt").read_bytes(), "reinvoke")
    assert configuration["webhooks"][0]["reinvocationPolicy"] == "IfNeeded"
    try:
        yield name
    finally:
        apiserver.request("DELETE", f"{MWC}/{name}")
        server.shutdown()
        server.server_close()


def test_reinvocation_yields_no_second_change(
    apiserver: APIServer, webhooks: dict[str, Webhook], tls: Path, labeller: str
) -> None:
    namespace = "e2e-reinvoked"
    apiserver.create_namespace(namespace, {**RESTRICTED, MODE_LABEL: "reinvoke"})
    # hardener's webhook for this namespace too, ahead of the labeller by name.
    name = "hardener-e2e-reinvoke"
    register(apiserver, name, webhooks["mutate"].url, (tls / "ca.crt").read_bytes(), "reinvoke")
    try:
        created = apiserver.create(_pod("reinvoked"), namespace)
    finally:
        apiserver.request("DELETE", f"{MWC}/{name}")
    assert created.status == 201, created.body
    assert created.body["metadata"]["labels"] == {"relabelled": "yes"}
    assert created.body["spec"]["securityContext"]["runAsNonRoot"] is True
    (event,) = [
        e
        for e in apiserver.audit_events()
        if e.get("stage") == "ResponseComplete"
        and e["verb"] == "create"
        and e["objectRef"].get("namespace") == namespace
    ]
    # round_R_index_I: R the round, I the webhook's place among all mutating webhooks.
    calls: dict[tuple[str, str], tuple[str, bool]] = {}
    for key, value in event["annotations"].items():
        if key.startswith("mutation.webhook.admission.k8s.io/round_"):
            said = json.loads(value)
            round_, _, index = key.rpartition("/")[2].removeprefix("round_").partition("_index_")
            calls[(round_, said["configuration"])] = (index, said["mutated"])
    assert calls[("0", name)][1] is True
    assert calls[("0", labeller)][1] is True
    index, mutated = calls[("1", name)]
    assert mutated is False, "reinvoked, hardener changed the object a second time"
    assert set(calls) == {("0", name), ("0", labeller), ("1", name)}
    assert f"patch.webhook.admission.k8s.io/round_1_index_{index}" not in event["annotations"]
