"""Violations: messages, pointers, containers, the fixable flag, controllers, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardener.model import InvalidObjectError
from hardener.pss import Violation, evaluate, evaluate_pod

from .pods import restricted_pod


def only(spec: dict[str, Any], check: str, **kwargs: Any) -> list[Violation]:
    found = evaluate_pod(spec, kwargs.pop("metadata", {}), **kwargs)
    assert {v.check for v in found} == {check}, found
    return found


def test_violation_fields_for_an_absent_field() -> None:
    spec = restricted_pod()
    del spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    [violation] = only(spec, "allowPrivilegeEscalation")
    assert violation == Violation(
        check="allowPrivilegeEscalation",
        level="restricted",
        message='container "app" must set securityContext.allowPrivilegeEscalation=false',
        pointer="/spec/containers/0",
        container="app",
        fixable=True,
    )


def test_explicit_value_points_at_the_field_and_is_not_fixable() -> None:
    spec = restricted_pod()
    spec["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    [violation] = only(spec, "allowPrivilegeEscalation")
    assert violation.pointer == "/spec/initContainers/0/securityContext/allowPrivilegeEscalation"
    assert violation.container == "init"
    assert not violation.fixable


def test_host_namespaces_message() -> None:
    found = only(restricted_pod(hostNetwork=True, hostPID=False, hostIPC=True), "hostNamespaces")
    assert [(v.message, v.pointer, v.level) for v in found] == [
        ("host namespaces (hostNetwork=true)", "/spec/hostNetwork", "baseline"),
        ("host namespaces (hostIPC=true)", "/spec/hostIPC", "baseline"),
    ]


def test_run_as_non_root_absent_everywhere_is_fixable_per_container() -> None:
    spec = restricted_pod()
    del spec["securityContext"]["runAsNonRoot"]
    found = only(spec, "runAsNonRoot")
    assert [(v.message, v.pointer, v.fixable) for v in found] == [
        (
            'pod or container "init" must set securityContext.runAsNonRoot=true',
            "/spec/initContainers/0",
            True,
        ),
        (
            'pod or container "app" must set securityContext.runAsNonRoot=true',
            "/spec/containers/0",
            True,
        ),
    ]


def test_run_as_non_root_resolves_pod_and_container_levels() -> None:
    spec = restricted_pod()
    del spec["securityContext"]["runAsNonRoot"]
    for container in spec["containers"] + spec["initContainers"]:
        container["securityContext"]["runAsNonRoot"] = True
    assert evaluate_pod(spec, {}) == []
    spec["securityContext"]["runAsNonRoot"] = False
    [pod_level] = only(spec, "runAsNonRoot")
    assert pod_level.message == "pod must not set securityContext.runAsNonRoot=false"
    assert pod_level.pointer == "/spec/securityContext/runAsNonRoot"
    assert not pod_level.fixable


def test_run_as_non_root_false_in_a_container_overrides_the_pod() -> None:
    spec = restricted_pod()
    spec["containers"][0]["securityContext"]["runAsNonRoot"] = False
    [violation] = only(spec, "runAsNonRoot")
    assert violation.message == 'container "app" must not set securityContext.runAsNonRoot=false'
    assert not violation.fixable


def test_implicit_violation_is_not_fixable_when_the_pod_says_false() -> None:
    spec = restricted_pod()
    spec["securityContext"]["runAsNonRoot"] = False
    spec["initContainers"][0]["securityContext"]["runAsNonRoot"] = True
    found = only(spec, "runAsNonRoot")
    assert [(v.pointer, v.fixable) for v in found] == [
        ("/spec/securityContext/runAsNonRoot", False),
        ("/spec/containers/0", False),
    ]


def test_seccomp_restricted_pod_or_container_level() -> None:
    spec = restricted_pod()
    del spec["securityContext"]["seccompProfile"]
    found = only(spec, "seccompProfile_restricted")
    assert [(v.container, v.pointer, v.fixable) for v in found] == [
        ("init", "/spec/initContainers/0", True),
        ("app", "/spec/containers/0", True),
    ]
    assert found[1].message == (
        'pod or container "app" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost"'
    )
    for container in spec["containers"] + spec["initContainers"]:
        container["securityContext"]["seccompProfile"] = {
            "type": "Localhost",
            "localhostProfile": "x",
        }
    assert evaluate_pod(spec, {}) == []


def test_seccomp_unconfined_is_explicit() -> None:
    spec = restricted_pod()
    spec["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    found = only(spec, "seccompProfile_restricted")
    assert [(v.message, v.pointer, v.fixable) for v in found] == [
        (
            'pod must not set securityContext.seccompProfile.type to "Unconfined"',
            "/spec/securityContext/seccompProfile/type",
            False,
        ),
        (
            'pod or container "init" must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost"',
            "/spec/initContainers/0",
            False,
        ),
        (
            'pod or container "app" must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost"',
            "/spec/containers/0",
            False,
        ),
    ]


def test_capabilities_restricted() -> None:
    spec = restricted_pod()
    spec["containers"][0]["securityContext"]["capabilities"] = {
        "add": ["NET_BIND_SERVICE", "SYS_ADMIN"],
        "drop": ["NET_RAW"],
    }
    del spec["initContainers"][0]["securityContext"]["capabilities"]
    found = only(spec, "capabilities_restricted")
    assert [(v.message, v.pointer, v.fixable) for v in found] == [
        (
            'container "init" must set securityContext.capabilities.drop=["ALL"]',
            "/spec/initContainers/0",
            True,
        ),
        (
            'container "app" must set securityContext.capabilities.drop=["ALL"]',
            "/spec/containers/0/securityContext/capabilities/drop",
            True,
        ),
        (
            'container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add',
            "/spec/containers/0/securityContext/capabilities/add/1",
            False,
        ),
    ]


def test_capabilities_baseline_allow_list() -> None:
    spec = {
        "containers": [
            {"name": "app", "securityContext": {"capabilities": {"add": ["CHOWN", "NET_RAW"]}}}
        ]
    }
    [violation] = only(spec, "capabilities_baseline", level="baseline")
    assert (
        violation.message
        == 'container "app" must not include "NET_RAW" in securityContext.capabilities.add'
    )
    assert violation.pointer == "/spec/containers/0/securityContext/capabilities/add/1"


def test_restricted_includes_baseline() -> None:
    spec = restricted_pod()
    spec["containers"][0]["securityContext"]["privileged"] = True
    [violation] = only(spec, "privileged")
    assert violation.level == "baseline"
    assert violation.message == 'container "app" must not set securityContext.privileged=true'


def test_ephemeral_containers_are_checked() -> None:
    spec = restricted_pod(ephemeralContainers=[{"name": "debug", "image": "busybox"}])
    found = evaluate_pod(spec, {})
    assert {v.check for v in found} == {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
    }
    assert {v.pointer for v in found} == {"/spec/ephemeralContainers/0"}
    assert {v.container for v in found} == {"debug"}


def test_volumes() -> None:
    spec = restricted_pod(
        volumes=[
            {"name": "img", "image": {"reference": "r"}},
            {"name": "defaulted"},
            {"name": "nfs", "nfs": {"server": "s", "path": "/"}},
            {"name": "host", "hostPath": {"path": "/"}},
            {"name": "odd", "someNewSource": {}},
        ]
    )
    found = evaluate_pod(spec, {})
    assert [(v.check, v.pointer) for v in found] == [
        ("restrictedVolumes", "/spec/volumes/2/nfs"),
        ("restrictedVolumes", "/spec/volumes/3/hostPath"),
        ("restrictedVolumes", "/spec/volumes/4/someNewSource"),
    ]
    assert found[0].message == 'volume "nfs" uses restricted volume type "nfs"'
    baseline = evaluate_pod(spec, {}, level="baseline")
    assert [(v.check, v.pointer) for v in baseline] == [
        ("hostPathVolumes", "/spec/volumes/3/hostPath")
    ]


def test_host_ports_and_probes() -> None:
    spec = {
        "containers": [
            {
                "name": "app",
                "ports": [
                    {"containerPort": 80},
                    {"containerPort": 81, "hostPort": 0},
                    {"hostPort": 8080},
                ],
                "readinessProbe": {"tcpSocket": {"host": "::1", "port": 1}},
            }
        ]
    }
    found = evaluate_pod(spec, {}, level="baseline")
    assert [(v.check, v.message, v.pointer) for v in found] == [
        (
            "hostPorts",
            'container "app" must not use hostPort 8080',
            "/spec/containers/0/ports/2/hostPort",
        ),
        (
            "hostProbesAndHostLifecycle",
            'container "app" must not set readinessProbe.tcpSocket.host '
            '(probe or lifecycle host "::1")',
            "/spec/containers/0/readinessProbe/tcpSocket/host",
        ),
    ]


def test_apparmor_annotations_and_fields() -> None:
    spec = {
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
        "containers": [
            {"name": "app", "securityContext": {"appArmorProfile": {"type": "Localhost"}}}
        ],
    }
    metadata = {
        "annotations": {
            "container.apparmor.security.beta.kubernetes.io/app": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/ok": "localhost/profile",
        }
    }
    found = only(spec, "appArmorProfile", metadata=metadata, level="baseline")
    assert [(v.pointer, v.container) for v in found] == [
        ("/spec/securityContext/appArmorProfile/type", None),
        ("/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1app", "app"),
    ]
    assert found[0].message == 'pod must not set AppArmor profile type to "Unconfined"'


def test_selinux() -> None:
    spec = {
        "securityContext": {"seLinuxOptions": {"type": "container_t", "level": "s0:c1"}},
        "containers": [
            {
                "name": "app",
                "securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "root"}},
            }
        ],
    }
    found = only(spec, "seLinuxOptions", level="baseline")
    assert [(v.message, v.pointer) for v in found] == [
        (
            'container "app" set forbidden securityContext.seLinuxOptions: type "spc_t"',
            "/spec/containers/0/securityContext/seLinuxOptions/type",
        ),
        (
            'container "app" set forbidden securityContext.seLinuxOptions: user may not be set',
            "/spec/containers/0/securityContext/seLinuxOptions/user",
        ),
    ]


def test_windows_host_process() -> None:
    spec = {
        "securityContext": {"windowsOptions": {"hostProcess": True}},
        "containers": [
            {"name": "app", "securityContext": {"windowsOptions": {"hostProcess": False}}}
        ],
    }
    [violation] = only(spec, "windowsHostProcess", level="baseline")
    assert violation.message == "pod must not set securityContext.windowsOptions.hostProcess=true"


def test_custom_pointers() -> None:
    spec = {"hostPID": True, "containers": [{"name": "app"}]}
    [violation] = evaluate_pod(
        spec, {}, level="baseline", spec_pointer="/items/0/spec/template/spec", meta_pointer="/m"
    )
    assert violation.pointer == "/items/0/spec/template/spec/hostPID"


def test_evaluate_walks_every_pod_site() -> None:
    bad_container = {"name": "app", "securityContext": {"privileged": True}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [bad_container]}}},
    }
    cronjob = {
        "kind": "CronJob",
        "spec": {
            "jobTemplate": {"spec": {"template": {"spec": {"hostNetwork": True, "containers": []}}}}
        },
    }
    found = evaluate({"kind": "List", "items": [deployment, cronjob]}, level="baseline")
    assert [(v.check, v.pointer) for v in found] == [
        ("privileged", "/items/0/spec/template/spec/containers/0/securityContext/privileged"),
        ("hostNamespaces", "/items/1/spec/jobTemplate/spec/template/spec/hostNetwork"),
    ]
    assert evaluate({"kind": "ConfigMap", "data": {}}) == []


def test_evaluate_uses_the_pod_template_annotations() -> None:
    note = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
    deployment = {
        "kind": "Deployment",
        "metadata": {"annotations": note},
        "spec": {
            "template": {"metadata": {"annotations": note}, "spec": {"containers": [{"name": "a"}]}}
        },
    }
    [violation] = evaluate(deployment, level="baseline", version="v1.18")
    assert (
        violation.pointer
        == "/spec/template/metadata/annotations/seccomp.security.alpha.kubernetes.io~1pod"
    )


def test_bad_level_or_version_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="level"):
        evaluate_pod({"containers": []}, {}, level="privileged")
    with pytest.raises(ValueError, match="policy version"):
        evaluate_pod({"containers": []}, {}, version="v2.1")


def test_evaluate_reports_wrongly_typed_pod_sites_as_invalid_objects() -> None:
    with pytest.raises(InvalidObjectError, match="/spec/containers"):
        evaluate({"kind": "Pod", "spec": {"containers": "app"}})


@pytest.mark.parametrize(
    ("spec", "check", "pointer"),
    [
        ({"hostNetwork": "yes"}, "hostNamespaces", "/spec/hostNetwork"),
        ({"securityContext": {"runAsUser": "0"}}, "runAsUser", "/spec/securityContext/runAsUser"),
        (
            {"securityContext": {"runAsNonRoot": "true"}},
            "runAsNonRoot",
            "/spec/securityContext/runAsNonRoot",
        ),
        (
            {"securityContext": {"sysctls": "kernel.msgmax"}},
            "sysctls",
            "/spec/securityContext/sysctls",
        ),
        (
            {"securityContext": {"seccompProfile": "RuntimeDefault"}},
            "seccompProfile_restricted",
            None,
        ),
        ({"volumes": ["hostPath"]}, "restrictedVolumes", "/spec/volumes/0"),
    ],
)
def test_wrong_types_at_pod_level_are_violations(
    spec: dict[str, Any], check: str, pointer: str | None
) -> None:
    full = restricted_pod()
    full.update(spec)
    if "securityContext" in spec:
        full["securityContext"] = {**restricted_pod()["securityContext"], **spec["securityContext"]}
    found = [v for v in evaluate_pod(full, {}) if v.check == check]
    assert found, evaluate_pod(full, {})
    assert not any(v.fixable for v in found)
    if pointer is not None:
        assert found[0].pointer == pointer
    assert "wrong type" in found[0].message or "must be a boolean" in found[0].message


@pytest.mark.parametrize(
    ("security_context", "checks"),
    [
        ("privileged", {"allowPrivilegeEscalation", "capabilities_restricted"}),
        ({"allowPrivilegeEscalation": "false"}, {"allowPrivilegeEscalation"}),
        ({"privileged": 1}, {"privileged"}),
        ({"capabilities": "ALL"}, {"capabilities_restricted"}),
        ({"capabilities": {"drop": "ALL"}}, {"capabilities_restricted"}),
        ({"capabilities": {"drop": ["ALL"], "add": "SYS_ADMIN"}}, {"capabilities_restricted"}),
        ({"procMount": 0}, {"procMount_restricted"}),
        ({"seLinuxOptions": "spc_t"}, {"seLinuxOptions"}),
        ({"windowsOptions": {"hostProcess": "yes"}}, {"windowsHostProcess"}),
    ],
)
def test_wrong_types_in_a_container_are_violations(security_context: Any, checks: set[str]) -> None:
    spec = restricted_pod()
    if isinstance(security_context, dict):
        spec["containers"][0]["securityContext"].update(security_context)
    else:
        spec["containers"][0]["securityContext"] = security_context
    found = evaluate_pod(spec, {})
    assert {v.check for v in found} == checks
    assert not any(v.fixable for v in found)


def test_null_is_the_same_as_absent() -> None:
    spec = restricted_pod(hostNetwork=None, volumes=None)
    spec["containers"][0]["securityContext"]["privileged"] = None
    assert evaluate_pod(spec, {}) == []
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = None
    [violation] = evaluate_pod(spec, {})
    assert violation.fixable


def test_unnamed_and_non_object_containers() -> None:
    spec = {"containers": ["junk", {"securityContext": {"privileged": True}}]}
    [violation] = evaluate_pod(spec, {"annotations": "none"}, level="baseline")
    assert violation.container == "containers[1]"
    assert violation.pointer == "/spec/containers/1/securityContext/privileged"
    assert evaluate_pod("not a pod", None, level="restricted") == []  # type: ignore[arg-type]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 70000)
    | st.sampled_from(["", "ALL", "Unconfined", "windows"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "type",
                    "add",
                    "drop",
                    "hostPort",
                    "host",
                    "httpGet",
                    "path",
                    "hostPath",
                    "nfs",
                ]
            ),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)
FIELDS = [
    "containers",
    "initContainers",
    "ephemeralContainers",
    "securityContext",
    "volumes",
    "hostNetwork",
    "hostUsers",
    "os",
]
CONTAINER_FIELDS = ["name", "securityContext", "ports", "livenessProbe", "lifecycle"]
SC_FIELDS = [
    "allowPrivilegeEscalation",
    "capabilities",
    "privileged",
    "procMount",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile",
    "seLinuxOptions",
    "appArmorProfile",
    "windowsOptions",
    "sysctls",
]
security_contexts = st.dictionaries(st.sampled_from(SC_FIELDS), json_values, max_size=5)
containers = st.dictionaries(
    st.sampled_from(CONTAINER_FIELDS), json_values | security_contexts, max_size=4
)
pod_specs = st.dictionaries(
    st.sampled_from(FIELDS),
    json_values | st.lists(containers, max_size=3) | security_contexts,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(spec=pod_specs, metadata=st.dictionaries(st.just("annotations"), json_values))
def test_any_shape_is_evaluated_without_crashing(
    spec: dict[str, Any], metadata: dict[str, Any]
) -> None:
    for level in ("baseline", "restricted"):
        for version in ("v1.0", "v1.24", "latest"):
            for violation in evaluate_pod(spec, metadata, level=level, version=version):
                assert violation.pointer.startswith(("/spec", "/metadata"))
                assert violation.message
