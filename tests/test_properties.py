"""Property tests: for any pod the engine is given, its ops apply with jsonpatch, hardening is
idempotent, explicit values survive, and the result is one the API server accepts."""

from __future__ import annotations

from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardener import parse_config, plan
from hardener.config import Config
from hardener.rules import RULES

maybe_bool = st.sampled_from([None, True, False])
capability = st.sampled_from(
    ["ALL", "all", "NET_RAW", "NET_BIND_SERVICE", "SYS_ADMIN", "CAP_SYS_ADMIN", "CHOWN"]
)
profile = st.one_of(
    st.none(),
    st.sampled_from(
        [
            {"type": "RuntimeDefault"},
            {"type": "Unconfined"},
            {"type": "Localhost", "localhostProfile": "p.json"},
        ]
    ),
)
user = st.one_of(st.none(), st.sampled_from([0, 1000, 65532]))


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


@st.composite
def capabilities(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    return _drop_none(
        {
            "add": draw(st.one_of(st.none(), st.lists(capability, max_size=3))),
            "drop": draw(st.one_of(st.none(), st.lists(capability, max_size=3))),
        }
    )


@st.composite
def security_context(draw: st.DrawFn, pod_level: bool) -> dict[str, Any] | None:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return None
    fields: dict[str, Any] = {
        "runAsNonRoot": draw(maybe_bool),
        "runAsUser": draw(user),
        "runAsGroup": draw(user),
        "seccompProfile": draw(profile),
    }
    if pod_level:
        fields["fsGroup"] = draw(st.one_of(st.none(), st.sampled_from([0, 2000])))
    else:
        fields.update(
            {
                "privileged": draw(maybe_bool),
                "allowPrivilegeEscalation": draw(maybe_bool),
                "readOnlyRootFilesystem": draw(maybe_bool),
                "capabilities": draw(capabilities()),
            }
        )
    return _drop_none(fields)


@st.composite
def container(draw: st.DrawFn, name: str) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "image": "registry.example.com/x:1"}
    sc = draw(security_context(False))
    if sc is not None:
        result["securityContext"] = sc
    if draw(st.booleans()):
        result["volumeMounts"] = draw(
            st.lists(
                st.sampled_from(
                    [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "scratch", "mountPath": "/tmp"},
                    ]
                ),
                max_size=2,
                unique_by=lambda m: m["name"],
            )
        )
    return result


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(
            st.sampled_from(["app", "side", "init", "debug"]), min_size=1, max_size=3, unique=True
        )
    )
    spec: dict[str, Any] = {"containers": [draw(container(n)) for n in names[:2]]}
    if len(names) > 2:
        spec["initContainers"] = [draw(container(names[2]))]
    sc = draw(security_context(True))
    if sc is not None:
        spec["securityContext"] = sc
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "data", "emptyDir": {}}, {"name": "scratch", "emptyDir": {}}]
    if draw(st.integers(0, 5)) == 0:
        spec["os"] = {"name": "windows"}
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": spec,
    }
    if draw(st.booleans()):
        obj = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"template": {"metadata": {}, "spec": spec}},
        }
    return obj


configs = st.sampled_from(
    [
        parse_config({}),
        parse_config({"profile": "baseline"}),
        parse_config(
            {"rules": {"run-as-user": {"enabled": True}, "fs-group": {"only-with-volumes": True}}}
        ),
        parse_config({"rules": {rule.id: {"enforce": True} for rule in RULES}}),
    ]
)


def leaves(node: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(node, dict) and node:
        return {k: v for key, child in node.items() for k, v in leaves(child, (*path, key)).items()}
    if isinstance(node, list) and node:
        return {k: v for i, child in enumerate(node) for k, v in leaves(child, (*path, i)).items()}
    return {path: node}


def lookup(node: Any, path: tuple[Any, ...]) -> Any:
    for token in path:
        node = node[token]
    return node


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(obj=pods(), config=configs)
def test_ops_apply_and_hardening_is_idempotent(obj: dict[str, Any], config: Config) -> None:
    result = plan(obj, config)
    patched = jsonpatch.apply_patch(obj, result.ops)
    # The fixer verifies its edits against Plan.hardened: it must be what the ops give.
    assert result.hardened == patched
    assert plan(patched, config).ops == []


@PROPERTY
@given(obj=pods())
def test_explicit_values_survive_without_enforce(obj: dict[str, Any]) -> None:
    patched = jsonpatch.apply_patch(obj, plan(obj).ops)
    for path, value in leaves(obj).items():
        if value is None or value == {} or value == []:
            continue
        assert lookup(patched, path) == value, path


@PROPERTY
@given(obj=pods(), config=configs)
def test_result_is_one_the_api_server_accepts(obj: dict[str, Any], config: Config) -> None:
    patched = jsonpatch.apply_patch(obj, plan(obj, config).ops)
    spec, before = pod_spec(patched), pod_spec(obj)
    windows = spec.get("os", {}).get("name") == "windows"
    names = [v["name"] for v in spec.get("volumes", [])]
    assert len(names) == len(set(names))
    for field in ("containers", "initContainers"):
        for c, old in zip(spec.get(field, []), before.get(field, []), strict=True):
            sc = c.get("securityContext", {})
            caps = [
                x.upper().removeprefix("CAP_") for x in sc.get("capabilities", {}).get("add", [])
            ]
            was = old.get("securityContext", {}).get("allowPrivilegeEscalation")
            if (sc.get("privileged") is True or "SYS_ADMIN" in caps) and was is not False:
                assert sc.get("allowPrivilegeEscalation") is not False
            mounts = c.get("volumeMounts", [])
            paths = [m["mountPath"].rstrip("/") for m in mounts]
            assert len(paths) == len(set(paths))
            for mount in mounts[len(old.get("volumeMounts", [])) :]:
                assert mount["name"] in names
            if windows:
                assert set(sc) - set(old.get("securityContext", {})) <= {"runAsNonRoot"}
                assert len(mounts) == len(old.get("volumeMounts", []))
    if windows:
        added = set(spec.get("securityContext", {})) - set(before.get("securityContext", {}))
        assert added <= {"runAsNonRoot"}
        assert spec.get("volumes") == before.get("volumes")


@PROPERTY
@given(obj=pods(), config=configs)
def test_hardened_equals_jsonpatch(obj: dict[str, Any], config: Config) -> None:
    import copy

    original = copy.deepcopy(obj)
    planned = plan(obj, config, evaluate=False)
    assert planned.hardened == jsonpatch.apply_patch(obj, planned.ops)
    assert obj == original, "planning must not modify the input"
