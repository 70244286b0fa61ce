"""The pure part of the webhook: decode an AdmissionReview, decide with the engine, encode."""

from __future__ import annotations

import base64
import copy
import gc
import json
import re
import time
from typing import Any

import jsonpatch
import pytest

from hardener.certs import DEFAULT_WEBHOOK_NAMES
from hardener.config import default_config, parse_config
from hardener.engine import plan
from hardener.model import ConfigError
from hardener.pss import evaluate
from hardener.webhook import BadReviewError, decode_review, encode_review, review
from hardener.webhook._review import MAX_WARNING_CHARS, MAX_WARNINGS_TOTAL_CHARS
from tests.webhook.conftest import admission_review, decode_patch

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "web-7d9f8c6b5d-", "namespace": "shop"},
    "spec": {
        "containers": [
            {"name": "web", "image": "registry.example.com/web:1"},
            {"name": "proxy", "image": "registry.example.com/envoy:1"},
        ]
    },
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1"}]},
        },
    },
}


def _decide(review_doc: dict[str, Any], config: Any = None, **kwargs: Any) -> Any:
    request = decode_review(json.dumps(review_doc).encode())
    return review(request, config or default_config(), **kwargs)


def _body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# -- decode_review ----------------------------------------------------------------------------


def _valid() -> dict[str, Any]:
    return admission_review(copy.deepcopy(POD), namespace="shop")


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    doc = _valid()
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = _valid()
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


BAD_BODIES: list[tuple[str, bytes, str, str]] = [
    ("not JSON", b"{apiVersion: v1", "", "not valid JSON"),
    ("empty", b"", "", "not valid JSON"),
    ("not UTF-8", b'{"a": "\xff\xfe"}', "", "not valid JSON"),
    ("NaN", b'{"a": NaN}', "", "NaN is not valid JSON (line 1 column 7)"),
    ("Infinity", b'{"a": [1, Infinity]}', "", "Infinity is not valid JSON (line 1 column 11)"),
    ("-Infinity", b'{"a":\n -Infinity}', "", "-Infinity is not valid JSON (line 2 column 2)"),
    ("beyond a double", b'{"a": 1e400}', "", "infinity when parsed as double"),
    ("too deep", b"[" * 100_000 + b"]" * 100_000, "", "nested too deeply"),
    ("1025 levels", b"[" * 1025 + b"]" * 1025, "", "nested too deeply (over 1024 levels)"),
    ("invalid UTF-8", b'{"kind": "Pod\xc3"}', "", "not UTF-8 at byte 13 (invalid continuation"),
    ("UTF-8 surrogate", b'{"a": "\xed\xa0\x80"}', "", "not UTF-8 at byte 7"),
    ("lone high surrogate", b'{"a": "\\ud800"}', "", "no low surrogate in string: line 1"),
    ("lone low surrogate", b'{"a": "\\udc00"}', "", "invalid high surrogate in string"),
    ("byte order mark", b"\xef\xbb\xbf{}", "", "byte order mark"),
    ("UTF-16", '{"a": 1}'.encode("utf-16"), "", "not UTF-8 at byte 0"),
    ("trailing data", b"{} {}", "", "not valid JSON: unexpected content after document"),
    ("a string", b'"AdmissionReview"', "", "must be a JSON object (an AdmissionReview), not a"),
    ("null", b"null", "", "must be a JSON object"),
    ("an array", b"[]", "", "must be a JSON object"),
    (
        "v1beta1",
        _body(_with(("apiVersion",), "admission.k8s.io/v1beta1")),
        "apiVersion",
        "admissionReviewVersions",
    ),
    ("no apiVersion", _body(_without(("apiVersion",))), "apiVersion", "must be"),
    (
        "wrong kind",
        _body(_with(("kind",), "AdmissionResponse")),
        "kind",
        "must be 'AdmissionReview'",
    ),
    ("no request", _body(_without(("request",))), "request", "is required"),
    ("request is a string", _body(_with(("request",), "pod")), "request", "must be an object"),
    ("no uid", _body(_without(("request", "uid"))), "request.uid", "is required"),
    ("empty uid", _body(_with(("request", "uid"), "")), "request.uid", "non-empty string"),
    ("numeric uid", _body(_with(("request", "uid"), 7)), "request.uid", "non-empty string"),
    ("no kind", _body(_without(("request", "kind"))), "request.kind", "is required"),
    ("kind is text", _body(_with(("request", "kind"), "Pod")), "request.kind", "must be an object"),
    ("no operation", _body(_without(("request", "operation"))), "request.operation", "is required"),
    (
        "namespace a number",
        _body(_with(("request", "namespace"), 3)),
        "request.namespace",
        "must be a string",
    ),
]


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_decode_review_rejects_with_a_clear_reason(body: bytes, field: str, needle: str) -> None:
    with pytest.raises(BadReviewError) as caught:
        decode_review(body)
    assert caught.value.field == field
    assert needle in str(caught.value)


def test_integers_beyond_64_bits_are_read_as_the_api_server_reads_them() -> None:
    # 64-bit integers (signed and unsigned) stay exact; larger ones become the nearest double,
    # as in the API server's own JSON decoding. The review is still answered.
    pod = copy.deepcopy(POD)
    pod["spec"]["securityContext"] = {
        "runAsUser": 10**30,
        "runAsGroup": -(2**63),
        "fsGroup": 2**64 - 1,
    }
    request = decode_review(_body(admission_review(pod)))
    context = request["object"]["spec"]["securityContext"]
    assert context == {"runAsUser": 1e30, "runAsGroup": -(2**63), "fsGroup": 2**64 - 1}
    assert isinstance(context["runAsUser"], float)
    assert isinstance(context["runAsGroup"], int) and isinstance(context["fsGroup"], int)
    result = review(request, default_config())
    assert result.outcome == "patched"
    assert json.loads(encode_review(result.response))["response"]["uid"] == request["uid"]


def test_of_duplicate_keys_the_last_one_wins() -> None:
    body = _body(_valid()).replace(
        b'"operation": "CREATE"', b'"operation": "DELETE", "operation": "CREATE"'
    )
    assert b'"operation": "DELETE"' in body
    request = decode_review(body)
    assert request["operation"] == "CREATE"
    assert review(request, default_config()).outcome == "patched"


def test_decode_review_returns_the_request() -> None:
    doc = _valid()
    request = decode_review(_body(doc))
    assert request["uid"] == doc["request"]["uid"]
    assert request["kind"]["kind"] == "Pod"


# -- review: what is handled -------------------------------------------------------------------


def test_pod_create_is_patched_with_the_engine_ops() -> None:
    doc = admission_review(copy.deepcopy(POD), namespace="shop", uid="abc-123")
    result = _decide(doc)
    response = result.response
    assert response["uid"] == "abc-123"
    assert response["allowed"] is True
    ops = decode_patch(dict(response))
    assert ops == plan(POD, default_config(), namespace="shop").ops
    assert result.outcome == "patched"
    assert result.name == "web-7d9f8c6b5d-"
    assert result.namespace == "shop"
    rules = response["auditAnnotations"]["rules"].split(",")
    assert rules == list(result.rules)
    assert "drop-all-capabilities" in rules
    assert any("drop-all-capabilities" in w for w in response["warnings"])


def test_a_review_leaves_no_reference_cycles() -> None:
    """Everything a review makes is freed when the review is done, without the collector.

    Compiled, a nested function shares its enclosing function's locals through an object that
    refers to the function back: every review's work became a cycle that only a collector pass
    frees, and the server ran a full pass (40 to 60 ms) every few seconds under load."""
    pod = copy.deepcopy(POD)
    pod["metadata"]["annotations"] = {
        "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
        "hardener.dev/skip-rules": "no-such-rule",
    }
    pod["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": False}
    objects = [POD, DEPLOYMENT, pod]
    for obj in objects:  # warm: what the first review caches stays
        review(decode_review(json.dumps(admission_review(obj)).encode()), default_config())
    gc.collect()
    gc.disable()
    try:
        for obj in objects * 3:
            body = json.dumps(admission_review(obj)).encode()
            result = review(decode_review(body), default_config())
            assert result.outcome == "patched"
            encode_review(result.response)
        del result
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_the_hardened_object_is_what_jsonpatch_gives() -> None:
    replaced = copy.deepcopy(DEPLOYMENT)
    spec = replaced["spec"]["template"]["spec"]
    spec["securityContext"] = None  # replace
    spec["volumes"] = [{"name": "data", "emptyDir": {}}]  # append with /-
    spec["containers"][0]["securityContext"] = {"capabilities": {"drop": ["NET_RAW"]}}
    for obj in (POD, DEPLOYMENT, replaced):
        planned = plan(obj)
        ops = planned.ops
        assert {op["op"] for op in ops} <= {"add", "replace"}
        assert planned.hardened == jsonpatch.apply_patch(obj, ops)
    assert any(op["op"] == "replace" for op in plan(replaced).ops)
    assert any(op["path"].endswith("/-") for op in plan(replaced).ops)


def test_audit_annotation_keys_are_valid_once_prefixed_by_the_webhook_name() -> None:
    # The API server stores each key as "<webhook name>/<key>" and drops it unless that is a
    # qualified name: so the key itself must be a plain name, without a '/'.
    name_part = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
    warn = parse_config({"mode": "warn"})
    privileged = copy.deepcopy(POD)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    for config in (default_config(), warn):
        response = _decide(admission_review(privileged, namespace="shop"), config).response
        assert response["auditAnnotations"]
        for key, value in response["auditAnnotations"].items():
            assert name_part.match(key), key
            assert isinstance(value, str)
            for webhook in DEFAULT_WEBHOOK_NAMES:
                assert len(f"{webhook}/{key}".split("/")) == 2


@pytest.mark.parametrize(
    ("obj", "operation", "sub_resource", "kind"),
    [
        (POD, "UPDATE", None, None),
        (POD, "DELETE", None, None),
        (POD, "CREATE", "binding", None),
        (POD, "UPDATE", "status", None),
        (DEPLOYMENT, "UPDATE", "scale", None),
        (DEPLOYMENT, "DELETE", None, None),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            "CREATE",
            None,
            None,
        ),
        # A pod spec in a kind hardener is not registered for: left alone.
        (DEPLOYMENT, "CREATE", None, "Service"),
    ],
    ids=[
        "pod-update",
        "pod-delete",
        "pod-binding",
        "pod-status",
        "deployment-scale",
        "deployment-delete",
        "configmap",
        "service-kind",
    ],
)
def test_other_kinds_and_operations_are_allowed_without_patch(
    obj: Any, operation: str, sub_resource: str | None, kind: str | None
) -> None:
    body = copy.deepcopy(obj)
    if kind is not None:
        body["kind"] = kind
    doc = admission_review(body, operation=operation, sub_resource=sub_resource, kind=kind)
    result = _decide(doc)
    assert result.outcome == "skipped"
    assert dict(result.response) == {"uid": doc["request"]["uid"], "allowed": True}


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_workloads_are_patched_on_create_and_update(operation: str) -> None:
    result = _decide(
        admission_review(
            copy.deepcopy(DEPLOYMENT),
            operation=operation,
            old=DEPLOYMENT if operation == "UPDATE" else None,
        )
    )
    ops = decode_patch(dict(result.response))
    assert ops is not None
    assert all(op["path"].startswith("/spec/template/spec/") for op in ops)
    assert result.outcome == "patched"


def test_object_without_kind_is_hardened_as_the_request_kind() -> None:
    bare = copy.deepcopy(POD)
    del bare["kind"]
    result = _decide(admission_review(bare, kind="Pod"))
    assert decode_patch(dict(result.response)) == plan(POD).ops


def _not_hardened(result: Any) -> str:
    """The one warning of an object admitted unchanged because it cannot be hardened."""
    assert result.outcome == "not-hardened"
    response = result.response
    assert response["allowed"] is True
    assert "patch" not in response
    assert response["auditAnnotations"] == {"outcome": "not-hardened"}
    (warning,) = response["warnings"]
    assert len(warning) <= MAX_WARNING_CHARS
    return str(warning)


def test_object_kind_that_contradicts_the_request_is_not_hardened() -> None:
    warning = _not_hardened(_decide(admission_review(copy.deepcopy(DEPLOYMENT), kind="Pod")))
    assert 'request.object.kind: is "Deployment" but request.kind.kind is "Pod"' in warning


@pytest.mark.parametrize(
    ("mangle", "field"),
    [
        (lambda pod: "a pod", "request.object"),
        (lambda pod: {**pod, "spec": "oops"}, "request.object/spec"),
        (
            lambda pod: {**pod, "spec": {"containers": {"name": "x"}}},
            "request.object/spec/containers",
        ),
        (lambda pod: {**pod, "spec": {"containers": ["web"]}}, "request.object/spec/containers/0"),
        (
            lambda pod: {**pod, "spec": {"containers": [{"name": "a", "securityContext": []}]}},
            "request.object/spec/containers/0/securityContext",
        ),
    ],
    ids=[
        "string-object",
        "string-spec",
        "containers-object",
        "container-string",
        "securityContext-array",
    ],
)
def test_object_of_the_wrong_shape_is_admitted_unchanged_with_a_warning(
    mangle: Any, field: str
) -> None:
    doc = admission_review(copy.deepcopy(POD))
    doc["request"]["object"] = mangle(copy.deepcopy(POD))
    warning = _not_hardened(_decide(doc))
    assert f"hardener: Pod not hardened, admitted unchanged: {field}: " in warning
    assert "must be" in warning


_DEEP = b"[" * 1000 + b'"x"' + b"]" * 1000
_DEEP_OBJECT = b'{"a":' * 1000 + b'"x"' + b"}" * 1000

_RICH_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "namespace": "shop",
        "annotations": {
            "hardener.dev/skip-rules": "fs-group",
            "skip.hardener.dev/web": "run-as-user",
            "hardener.dev/writable-paths": "/cache",
        },
    },
    "spec": {
        "os": {"name": "linux"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "securityContext": {
            "seccompProfile": {"type": "RuntimeDefault"},
            "seLinuxOptions": {"type": "container_t"},
            "appArmorProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [
            {
                "name": "web",
                "image": "registry.example.com/web:1",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "securityContext": {
                    "procMount": "Default",
                    "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "appArmorProfile": {"type": "RuntimeDefault"},
                },
            }
        ],
    },
}


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _leaves(item, (*path, index))]
    return [path]


@pytest.mark.parametrize("deep", [_DEEP, _DEEP_OBJECT], ids=["array", "object"])
def test_a_value_nested_1000_deep_anywhere_in_the_object_is_never_stringified(
    deep: bytes,
) -> None:
    """The engine, its rules and the PSS evaluator read a value of the wrong type as the wrong
    type: ``str()``/``repr()`` of it would recurse past Python's limit (and the pod would be
    admitted unhardened with ``outcome: error``)."""
    for path in [*_leaves(_RICH_POD), ("kind",)]:
        doc = admission_review(copy.deepcopy(_RICH_POD))
        node = doc["request"]["object"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = "DEEP-VALUE"
        body = json.dumps(doc).encode().replace(b'"DEEP-VALUE"', deep)
        result = review(decode_review(body), default_config())
        assert result.outcome in ("patched", "unchanged", "not-hardened"), path
        answer = encode_review(result.response)
        assert len(answer) < 8192, path


def test_limits_on_the_work_are_decided_before_it_starts() -> None:
    """Over ``webhook.max-containers``, ``max-volumes`` or ``max-values``: admitted unchanged
    with a warning that names the limit, and the engine never runs."""
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"] = [{"name": f"c{i}", "image": "busybox"} for i in range(11)]
    config = parse_config({"webhook": {"max-containers": 10}})
    warning = _not_hardened(_decide(admission_review(pod), config))
    assert "it has 11 containers, over the limit of 10 (webhook.max-containers" in warning
    assert _decide(admission_review(pod), parse_config({"webhook": {"max-containers": 11}}))

    pod = copy.deepcopy(POD)
    pod["spec"]["volumes"] = [{"name": f"v{i}", "emptyDir": {}} for i in range(6)]
    config = parse_config({"webhook": {"max-volumes": 5}})
    warning = _not_hardened(_decide(admission_review(pod), config))
    assert "it has 6 volumes, over the limit of 5 (webhook.max-volumes" in warning

    pod = copy.deepcopy(POD)
    pod["metadata"]["labels"] = {f"l{i}": "x" for i in range(100)}
    config = parse_config({"webhook": {"max-values": 100}})
    warning = _not_hardened(_decide(admission_review(pod), config))
    assert "over 100 JSON values (webhook.max-values" in warning
    assert _decide(admission_review(POD), config).outcome == "patched"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max-containers", 0),
        ("max-volumes", "many"),
        ("max-values", True),
        ("max-bytes-in-flight", -1),
        ("max-bytes-in-flight", "4MiB"),
    ],
)
def test_the_limits_are_positive_integers(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"webhook.{key}: must be a positive integer"):
        parse_config({"webhook": {key: value}})


# -- ephemeral containers -----------------------------------------------------------------------


def _running_pod() -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    pod["metadata"]["name"] = "web-7d9f8c6b5d-x2k4p"
    pod["spec"]["ephemeralContainers"] = [
        {"name": "debugger-old", "image": "busybox", "targetContainerName": "web"}
    ]
    return pod


def test_only_new_ephemeral_containers_get_a_security_context() -> None:
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"].append(
        {"name": "debugger-new", "image": "busybox", "stdin": True, "tty": True}
    )
    doc = admission_review(
        new, operation="UPDATE", sub_resource="ephemeralcontainers", old=old, namespace="shop"
    )
    result = _decide(doc)
    ops = decode_patch(dict(result.response))
    assert ops, "the new debug container is hardened"
    assert {op["path"].split("/securityContext")[0] for op in ops} == {
        "/spec/ephemeralContainers/1"
    }
    patched = jsonpatch.apply_patch(new, ops)
    # Everything but the new container's securityContext is as the API server has it.
    assert patched["spec"]["ephemeralContainers"][0] == old["spec"]["ephemeralContainers"][0]
    assert {k: v for k, v in patched["spec"].items() if k != "ephemeralContainers"} == {
        k: v for k, v in new["spec"].items() if k != "ephemeralContainers"
    }
    assert patched["metadata"] == new["metadata"]
    sc = patched["spec"]["ephemeralContainers"][1]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    # Warnings about PSS are about the new container only.
    assert all("debugger-old" not in w for w in result.response.get("warnings", []))


def test_ephemeral_update_without_new_containers_is_left_alone() -> None:
    old = _running_pod()
    doc = admission_review(
        copy.deepcopy(old), operation="UPDATE", sub_resource="ephemeralcontainers", old=old
    )
    result = _decide(doc)
    assert result.outcome == "skipped"
    assert "patch" not in result.response


def test_reinvocation_yields_no_patch() -> None:
    first = _decide(admission_review(copy.deepcopy(POD), namespace="shop"))
    patched = jsonpatch.apply_patch(POD, decode_patch(dict(first.response)))
    again = _decide(admission_review(patched, namespace="shop"))
    assert again.outcome == "unchanged"
    assert "patch" not in again.response
    assert "patchType" not in again.response


# -- warnings, warn mode, exemptions, deadline ---------------------------------------------------


def test_warnings_name_what_still_violates_the_level() -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    result = _decide(admission_review(pod, namespace="shop"))
    patched = jsonpatch.apply_patch(pod, decode_patch(dict(result.response)))
    # What the PSS evaluator says about the patched pod is what the warnings say.
    remaining = evaluate(patched, level="restricted")
    expected = {v.check for v in remaining}
    assert expected, "hardener must not fix privileged or hostNetwork by itself"
    assert set(result.violations) == expected
    audit = result.response["auditAnnotations"]["pss-violations"].split(",")
    assert set(audit) == expected and len(audit) == len(expected)
    pss_warnings = [w for w in result.response["warnings"] if w.startswith("PSS restricted")]
    assert len(pss_warnings) == len(remaining)
    assert any("privileged" in w for w in pss_warnings)
    assert any("hostNetwork" in w or "host namespaces" in w.lower() for w in pss_warnings)


def test_the_configured_level_is_the_one_reported() -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": False}
    baseline = parse_config({"level": "baseline"})
    result = _decide(admission_review(pod), baseline)
    assert not [w for w in result.response.get("warnings", []) if w.startswith("PSS")]
    result = _decide(admission_review(copy.deepcopy(pod)))
    assert [w for w in result.response["warnings"] if w.startswith("PSS restricted")]


def test_warn_mode_sends_no_patch_only_warnings() -> None:
    warn = parse_config({"mode": "warn"})
    result = _decide(admission_review(copy.deepcopy(POD), namespace="shop"), warn)
    response = result.response
    assert "patch" not in response and "patchType" not in response
    assert result.outcome == "warned"
    assert response["auditAnnotations"]["would-apply"] == ",".join(result.rules)
    assert any("would apply drop-all-capabilities" in w for w in response["warnings"])
    # What would still violate once hardened: only runAsNonRoot, which is left out because
    # the images' users are not known (images.unknown: keep).
    assert evaluate(POD) and result.violations == ("runAsNonRoot",)
    assert result.ops == 0
    privileged = copy.deepcopy(POD)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    result = _decide(admission_review(privileged), warn)
    assert "patch" not in result.response
    assert set(result.violations) == {
        v.check for v in evaluate(jsonpatch.apply_patch(privileged, plan(privileged).ops))
    }
    assert any("(privileged)" in w for w in result.response["warnings"])


def test_exempt_namespace_is_left_alone_and_not_warned_about() -> None:
    config = parse_config({"exempt": {"namespaces": ["kube-*"]}})
    pod = copy.deepcopy(POD)
    del pod["metadata"]["namespace"]
    result = _decide(admission_review(pod, namespace="kube-system"), config)
    assert result.outcome == "unchanged"
    assert dict(result.response) == {"uid": result.response["uid"], "allowed": True}


def test_past_the_deadline_the_object_is_admitted_unchanged() -> None:
    result = _decide(admission_review(copy.deepcopy(POD)), deadline=time.monotonic() - 1)
    assert result.outcome == "deadline"
    assert "patch" not in result.response
    assert result.response["allowed"] is True
    assert "deadline" in result.response["warnings"][0]
    assert result.response["auditAnnotations"] == {"outcome": "deadline"}


def test_warnings_stay_within_the_api_server_limits() -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"] = [
        {"name": f"c{i:03d}-" + "x" * 40, "image": "img", "securityContext": {"privileged": True}}
        for i in range(120)
    ]
    result = _decide(admission_review(pod))
    warnings = result.response["warnings"]
    assert all(len(w) <= MAX_WARNING_CHARS for w in warnings)
    assert sum(len(w) for w in warnings) <= MAX_WARNINGS_TOTAL_CHARS + 100
    assert "more warnings left out" in warnings[-1]
    assert all(w.isprintable() for w in warnings)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("web\x07bell", "web bell"),
        ("tab\there", "tab here"),
        ("line\u2028sep", "line sep"),
        ("café-\u2603", "café-\u2603"),
        ("plain-" + "x" * 300, "xxxx"),
    ],
    ids=["control", "tab", "line-separator", "non-ascii", "long"],
)
def test_warnings_are_one_printable_line_each(name: str, shown: str) -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["name"] = name
    warnings = _decide(admission_review(pod)).response["warnings"]
    assert all(w.isprintable() and len(w) <= MAX_WARNING_CHARS for w in warnings)
    assert any(shown in w for w in warnings), warnings


def test_encode_review_is_an_admission_review() -> None:
    result = _decide(admission_review(copy.deepcopy(POD)))
    encoded = json.loads(encode_review(result.response))
    assert encoded["apiVersion"] == "admission.k8s.io/v1"
    assert encoded["kind"] == "AdmissionReview"
    assert encoded["response"] == dict(result.response)


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_answer_is_the_compact_utf8_json_the_standard_library_writes() -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["name"] = 'wéb-\u2603-\U0001f600-"q"-\\-\t'
    pod["spec"]["containers"][1]["securityContext"] = {"privileged": True}
    for doc in (admission_review(pod), admission_review(copy.deepcopy(DEPLOYMENT))):
        result = _decide(doc)
        assert result.response.get("warnings")
        encoded = encode_review(result.response)
        review_out = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
        assert encoded == _compact({**review_out, "response": result.response})
        ops = decode_patch(result.response)
        assert ops is not None
        assert base64.b64decode(result.response["patch"]) == _compact(
            plan(doc["request"]["object"]).ops
        )
