"""The engine end to end: kinds, explicit values, enforce, Windows, ephemeral containers,
opt-outs, exemptions, profiles, the config and the patch it emits. What one rule decides is
tested beside that rule's golden files, in ``tests/rules/test_<rule>.py``.

These tests are about the mechanics, not about images: they run with no image facts under
``images.unknown: assume-nonroot`` (``tests/engine_support.py``). The image decisions have
their own tests in ``test_engine_images.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from hardener import ConfigError, InvalidObjectError, Scope, pod_sites
from hardener.pointer import escape, join, resolve, split
from hardener.rules import RULES
from tests.engine_support import POD_SPEC, hardened, parse_config, plan, pod, template


@pytest.mark.parametrize(
    ("obj", "spec_pointer"),
    [
        (pod(), "/spec"),
        (template("Deployment", POD_SPEC), "/spec/template/spec"),
        (template("StatefulSet", POD_SPEC), "/spec/template/spec"),
        (template("DaemonSet", POD_SPEC), "/spec/template/spec"),
        (template("ReplicaSet", POD_SPEC), "/spec/template/spec"),
        (template("ReplicationController", POD_SPEC, "v1"), "/spec/template/spec"),
        (template("Job", POD_SPEC, "batch/v1"), "/spec/template/spec"),
        (template("Rollout", POD_SPEC, "argoproj.io/v1alpha1"), "/spec/template/spec"),
        (template("Service", POD_SPEC, "serving.knative.dev/v1"), "/spec/template/spec"),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "c"},
                "spec": {"jobTemplate": {"spec": {"template": {"spec": POD_SPEC}}}},
            },
            "/spec/jobTemplate/spec/template/spec",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "t"},
                "template": {"spec": POD_SPEC},
            },
            "/template/spec",
        ),
    ],
)
def test_every_kind_is_located_and_hardened(obj: dict[str, Any], spec_pointer: str) -> None:
    (site,) = pod_sites(obj)
    assert site.spec_pointer == spec_pointer
    assert [c.pointer for c in site.containers] == [spec_pointer + "/containers/0"]
    patched = hardened(obj)
    spec = resolve(patched, spec_pointer)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_list_items_are_each_hardened() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            pod(),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            template("Deployment", copy.deepcopy(POD_SPEC)),
        ],
    }
    sites = pod_sites(obj)
    assert [s.spec_pointer for s in sites] == ["/items/0/spec", "/items/2/spec/template/spec"]
    patched = hardened(obj)
    assert patched["items"][1] == obj["items"][1]
    assert patched["items"][2]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}},
        {"kind": "CustomThing", "spec": {"template": {"spec": {"nodeName": "x"}}}},
    ],
)
def test_objects_without_pod_specs_are_left_alone(obj: dict[str, Any]) -> None:
    assert pod_sites(obj) == []
    assert plan(obj).ops == []


@pytest.mark.parametrize(
    ("obj", "pointer"),
    [
        ("a string", ""),
        ({"kind": "Pod", "spec": "oops"}, "/spec"),
        ({"kind": "Pod", "spec": {"containers": "app"}}, "/spec/containers"),
        ({"kind": "Pod", "spec": {"containers": ["app"]}}, "/spec/containers/0"),
        (
            {"kind": "Pod", "spec": {"containers": [], "securityContext": []}},
            "/spec/securityContext",
        ),
        (
            {"kind": "Pod", "spec": {"containers": [{"name": "a", "securityContext": "x"}]}},
            "/spec/containers/0/securityContext",
        ),
        (
            {
                "kind": "Pod",
                "spec": {
                    "containers": [
                        {"name": "a", "securityContext": {"capabilities": {"drop": "ALL"}}}
                    ]
                },
            },
            "/spec/containers/0/securityContext/capabilities/drop",
        ),
        ({"kind": "Deployment", "spec": {"template": "x"}}, "/spec/template"),
        ({"kind": "List", "items": [1]}, "/items/0"),
    ],
)
def test_wrong_types_raise_a_clear_error(obj: Any, pointer: str) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        plan(obj)
    assert caught.value.pointer == pointer
    assert "must be" in str(caught.value)


def test_ops_create_missing_parents_with_one_add() -> None:
    result = plan(pod())
    paths = [op["path"] for op in result.ops]
    assert "/spec/securityContext" in paths
    assert "/spec/containers/0/securityContext" in paths
    assert not any(p.startswith("/spec/securityContext/") for p in paths)
    assert all(op["op"] == "add" for op in result.ops)
    assert plan(pod()).ops == result.ops, "ops come in a stable order"


def test_null_members_are_replaced_not_added() -> None:
    obj = pod({"name": "app", "image": "x", "securityContext": None}, securityContext=None)
    result = plan(obj)
    replaced = {op["path"] for op in result.ops if op["op"] == "replace"}
    assert replaced == {"/spec/securityContext", "/spec/containers/0/securityContext"}
    hardened(obj)


def test_appends_to_existing_arrays() -> None:
    obj = pod(
        {
            "name": "app",
            "image": "x",
            "volumeMounts": [{"name": "d", "mountPath": "/d"}],
            "securityContext": {"capabilities": {"drop": ["NET_RAW"]}},
        },
        volumes=[{"name": "d", "emptyDir": {}}],
    )
    ops = plan(obj).ops
    assert {
        "op": "add",
        "path": "/spec/containers/0/securityContext/capabilities/drop/-",
        "value": "ALL",
    } in ops
    assert {
        "op": "add",
        "path": "/spec/volumes/-",
        "value": {"name": "hardener-tmp", "emptyDir": {}},
    } in ops
    assert {
        "op": "add",
        "path": "/spec/containers/0/volumeMounts/-",
        "value": {"name": "hardener-tmp", "mountPath": "/tmp"},
    } in ops
    hardened(obj)


def test_pointers_are_escaped() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert join(["metadata", "annotations", "hardener.dev/skip"]) == (
        "/metadata/annotations/hardener.dev~1skip"
    )
    assert split("/a~1b/c~0d/0") == ["a/b", "c~d", "0"]
    obj = pod()
    obj["metadata"]["annotations"] = {"hardener.dev/skip-rules": "nope"}
    (finding,) = plan(obj).findings
    assert finding.pointer == "/metadata/annotations/hardener.dev~1skip-rules"


def test_explicit_values_are_never_changed() -> None:
    obj = pod(
        {
            "name": "app",
            "image": "x",
            "securityContext": {
                "allowPrivilegeEscalation": True,
                "readOnlyRootFilesystem": False,
                "runAsNonRoot": False,
                "seccompProfile": {"type": "Unconfined"},
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["NET_RAW"]},
            },
        },
        securityContext={"fsGroup": 0},
    )
    result = plan(obj)
    patched = jsonpatch.apply_patch(obj, result.ops)
    sc = patched["spec"]["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is True
    assert sc["readOnlyRootFilesystem"] is False
    assert sc["runAsNonRoot"] is False
    assert sc["seccompProfile"] == {"type": "Unconfined"}
    assert sc["capabilities"] == {"add": ["NET_ADMIN"], "drop": ["NET_RAW", "ALL"]}
    assert patched["spec"]["securityContext"]["fsGroup"] == 0
    rules = {f.rule for f in result.findings}
    assert rules >= {
        "no-privilege-escalation",
        "read-only-root-filesystem",
        "run-as-non-root",
        "seccomp-runtime-default",
        "drop-all-capabilities",
        "fs-group",
    }
    assert all(not f.fixable for f in result.findings)


def test_enforce_replaces_explicit_values() -> None:
    config = parse_config({"rules": {rule.id: {"enforce": True} for rule in RULES}})
    obj = pod(
        {
            "name": "app",
            "image": "x",
            "securityContext": {
                "allowPrivilegeEscalation": True,
                "readOnlyRootFilesystem": False,
                "runAsNonRoot": False,
                "seccompProfile": {"type": "Unconfined"},
                "capabilities": {"add": ["NET_ADMIN", "NET_BIND_SERVICE"]},
            },
        }
    )
    patched = hardened(obj, config)
    sc = patched["spec"]["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["capabilities"] == {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}


LINUX_ONLY = (
    "seccompProfile",
    "capabilities",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "fsGroup",
    "fsGroupChangePolicy",
    "runAsUser",
    "runAsGroup",
)


@pytest.mark.parametrize(
    "windows",
    [
        {"os": {"name": "windows"}},
        {"nodeSelector": {"kubernetes.io/os": "windows"}},
        {"securityContext": {"windowsOptions": {"hostProcess": True}}},
    ],
)
def test_windows_pods_get_no_linux_only_fields(windows: dict[str, Any]) -> None:
    config = parse_config({"rules": {"run-as-user": {"enabled": True}}})
    obj = pod(**windows)
    patched = hardened(obj, config)

    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keys(v)}
        if isinstance(node, list):
            return {k for v in node for k in keys(v)}
        return set()

    assert not keys(patched) & set(LINUX_ONLY)
    assert "volumes" not in patched["spec"]


def test_host_process_pods_are_left_alone() -> None:
    obj = pod(
        {"name": "app", "image": "x", "securityContext": {"windowsOptions": {"hostProcess": True}}},
        hostNetwork=True,
    )
    assert plan(obj).ops == []
    assert any(f.check == "windowsHostProcess" for f in plan(obj).findings)


def test_ephemeral_scope_touches_only_new_ephemeral_containers() -> None:
    obj = pod(
        ephemeralContainers=[
            {"name": "old", "image": "busybox"},
            {"name": "debugger", "image": "busybox"},
        ]
    )
    result = plan(obj, scope=Scope(ephemeral_containers=frozenset({"debugger"})))
    assert result.ops
    assert all(
        op["path"].startswith("/spec/ephemeralContainers/1/securityContext") for op in result.ops
    )
    sc = jsonpatch.apply_patch(obj, result.ops)["spec"]["ephemeralContainers"][1]["securityContext"]
    assert sc == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def test_ephemeral_scope_respects_pod_level_values() -> None:
    obj = pod(
        securityContext={
            "runAsNonRoot": True,
            "seccompProfile": {"type": "Localhost", "localhostProfile": "p"},
        },
        ephemeralContainers=[{"name": "debugger", "image": "busybox"}],
    )
    result = plan(obj, scope=Scope(ephemeral_containers=frozenset({"debugger"})))
    assert {op["path"] for op in result.ops} == {"/spec/ephemeralContainers/0/securityContext"}
    assert set(result.ops[0]["value"]) == {"allowPrivilegeEscalation", "capabilities"}


def test_opt_out_annotations() -> None:
    skip_all = pod()
    skip_all["metadata"]["annotations"] = {"hardener.dev/skip": "true"}
    assert plan(skip_all).ops == []

    skip_rules = template("Deployment", copy.deepcopy(POD_SPEC))
    skip_rules["metadata"]["annotations"] = {
        "hardener.dev/skip-rules": "read-only-root-filesystem, fs-group, no-such-rule"
    }
    result = plan(skip_rules)
    assert {c.rule for c in result.changes} == {
        "run-as-non-root",
        "seccomp-runtime-default",
        "no-privilege-escalation",
        "drop-all-capabilities",
    }
    (finding,) = result.findings
    assert "no-such-rule" in finding.message

    per_container = pod({"name": "app", "image": "x"}, {"name": "legacy", "image": "y"})
    per_container["metadata"]["annotations"] = {"skip.hardener.dev/legacy": "all"}
    patched = hardened(per_container)
    assert "securityContext" not in patched["spec"]["containers"][1]
    assert "volumeMounts" not in patched["spec"]["containers"][1]
    # The pod-level default would reach the skipped container, so it goes on "app" alone.
    assert "runAsNonRoot" not in patched["spec"].get("securityContext", {})
    assert patched["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] is True

    one_rule = pod()
    one_rule["metadata"]["annotations"] = {"skip.hardener.dev/app": "read-only-root-filesystem"}
    patched = hardened(one_rule)
    assert "readOnlyRootFilesystem" not in patched["spec"]["containers"][0]["securityContext"]


def test_exempt_namespaces_and_names() -> None:
    config = parse_config({"exempt": {"namespaces": ["kube-*"], "names": ["debug-*"]}})
    obj = pod()
    obj["metadata"]["namespace"] = "kube-system"
    assert plan(obj, config).ops == []
    obj["metadata"] = {"name": "debug-1"}
    assert plan(obj, config).ops == []
    obj["metadata"] = {"name": "p"}
    assert plan(obj, config, namespace="kube-public").ops == []
    assert plan(obj, config, namespace="default").ops


def test_baseline_profile_changes_neither_user_nor_filesystem() -> None:
    config = parse_config({"profile": "baseline"})
    patched = hardened(pod(), config)
    assert patched["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert patched["spec"]["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert "volumes" not in patched["spec"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"profile": "strict"}, "profile: 'strict' is not allowed; allowed: restricted, baseline"),
        ({"rules": {"no-such": {}}}, "rules.no-such: unknown rule"),
        ({"rules": {"fs-group": {"colour": 1}}}, "rules.fs-group.colour: unknown option"),
        ({"rules": {"fs-group": {"fs-group": "x"}}}, "rules.fs-group.fs-group: must be an integer"),
        (
            {"rules": {"fs-group": {"enforce": "yes"}}},
            "rules.fs-group.enforce: must be true or false",
        ),
        ({"writable-paths": ["tmp"]}, "writable-paths: paths must be absolute"),
        ({"ids": {"user": 0}}, "ids.user: must not be 0"),
        ({"mode": "dry"}, "mode: 'dry' is not allowed"),
        ({"version": "2.0"}, "version: invalid policy version '2.0': use 'latest'"),
        ({"surprise": 1}, "surprise: unknown key"),
        ([], "the top level must be a mapping"),
    ],
)
def test_config_errors_name_the_key(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "hardener.yaml")
    assert str(caught.value).startswith("invalid config: hardener.yaml")
    assert message in str(caught.value)


def test_join_keeps_tokens_that_compare_equal_apart() -> None:
    # The pointer cache finds paths by equality, where True == 1 and 1.0 == 1.
    assert join(("spec", "volumes", 1)) == "/spec/volumes/1"
    assert join(("spec", "volumes", True)) == "/spec/volumes/True"
    assert join(("spec", "volumes", 1.0)) == "/spec/volumes/1.0"  # type: ignore[arg-type]
    assert join(("spec", "volumes", 1)) == "/spec/volumes/1"
