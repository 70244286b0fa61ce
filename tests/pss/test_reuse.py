"""What the evaluator works out once (the checks of a level and version, the tokens of the
caller's pointers, container labels) or in one pass (the securityContext fields a pod has)
never changes a result: every call reads the pod it is given."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hardener.pss import evaluate, evaluate_pod

from .pods import restricted_pod


def checks(spec: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    return [(v.check, v.pointer) for v in evaluate_pod(spec, {}, **kwargs)]


def test_a_pod_changed_between_calls_is_read_again() -> None:
    spec = restricted_pod()
    assert checks(spec) == []
    spec["containers"][0]["securityContext"]["privileged"] = True
    assert checks(spec) == [("privileged", "/spec/containers/0/securityContext/privileged")]
    del spec["containers"][0]["securityContext"]["privileged"]
    assert checks(spec) == []


def test_the_same_version_however_spelled_gives_the_same_result() -> None:
    spec = restricted_pod()
    spec["containers"][0]["securityContext"]["runAsUser"] = 0
    expected = checks(spec, version="v1.25")
    assert expected == [("runAsUser", "/spec/containers/0/securityContext/runAsUser")]
    for spelling in ("1.25", " v1.25 ", (1, 25)):
        assert checks(spec, version=spelling) == expected
    assert checks(spec, version="v1.22") == []  # runAsUser starts at v1.23


def test_levels_and_versions_do_not_leak_into_each_other() -> None:
    spec = restricted_pod(hostNetwork=True)
    del spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    for _ in range(2):
        assert {c for c, _ in checks(spec, level="baseline")} == {"hostNamespaces"}
        assert {c for c, _ in checks(spec, level="restricted")} == {
            "hostNamespaces",
            "allowPrivilegeEscalation",
        }
        assert {c for c, _ in checks(spec, level="restricted", version="v1.7")} == {
            "hostNamespaces"
        }


def test_an_unhashable_level_is_still_an_invalid_level() -> None:
    with pytest.raises(ValueError, match="invalid level"):
        evaluate_pod(restricted_pod(), {}, level=["restricted"])  # type: ignore[arg-type]


def test_pointers_of_each_call_are_used() -> None:
    spec = restricted_pod(hostPID=True)
    for pointer in ("/spec", "/items/3/spec/template/spec", "/a~1b/~0c"):
        [violation] = evaluate_pod(spec, {}, spec_pointer=pointer)
        assert violation.pointer == pointer + "/hostPID"


def test_container_labels_follow_the_names() -> None:
    spec = restricted_pod()
    for name in ("app", 'we"ird', "back\\slash", "app"):
        spec["containers"][0]["name"] = name
        spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        [violation] = evaluate_pod(spec, {})
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        assert violation.message.startswith(f'container "{quoted}" must set')
        assert violation.container == name


# A check about a securityContext field that no securityContext of the pod has is skipped.
# Whichever holder (the pod, or a container of any kind) has the field, it is still checked.
SINGLE_FIELDS = [
    ("privileged", True, "privileged", False),
    ("procMount", "Unmasked", "procMount_restricted", False),
    ("runAsUser", 0, "runAsUser", True),
    ("seLinuxOptions", {"type": "spc_t"}, "seLinuxOptions", True),
    ("appArmorProfile", {"type": "Unconfined"}, "appArmorProfile", True),
    ("windowsOptions", {"hostProcess": True}, "windowsHostProcess", True),
    ("capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "capabilities_restricted", False),
]
HOLDERS = ["pod", "initContainers", "containers", "ephemeralContainers"]


@pytest.mark.parametrize("holder", HOLDERS)
@pytest.mark.parametrize(("field", "value", "check", "at_pod_level"), SINGLE_FIELDS)
def test_a_field_set_in_one_place_only_is_checked(
    holder: str, field: str, value: Any, check: str, at_pod_level: bool
) -> None:
    debug = copy.deepcopy(restricted_pod()["containers"][0])
    spec = restricted_pod(ephemeralContainers=[debug])
    assert checks(spec) == []
    if holder == "pod":
        if not at_pod_level:
            return  # a container-only field: nothing to check at pod level
        spec["securityContext"][field] = value
        base = "/spec/securityContext"
    else:
        spec[holder][0]["securityContext"][field] = value
        base = f"/spec/{holder}/0/securityContext"
    found = checks(spec)
    assert any(c == check and p.startswith(f"{base}/{field}") for c, p in found), found
    assert all(p.startswith(base) for _, p in found), found


def test_a_field_set_to_null_is_absent() -> None:
    spec = restricted_pod()
    spec["containers"][0]["securityContext"]["privileged"] = None
    spec["securityContext"]["runAsUser"] = None
    assert checks(spec) == []


def test_evaluate_and_evaluate_pod_agree() -> None:
    spec = restricted_pod(hostIPC=True, volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    spec["initContainers"][0]["securityContext"]["capabilities"]["add"] = ["NET_RAW"]
    pod = {"kind": "Pod", "metadata": {}, "spec": spec}
    deployment = {
        "kind": "Deployment",
        "spec": {"template": {"metadata": {}, "spec": copy.deepcopy(spec)}},
    }
    for level in ("baseline", "restricted"):
        alone = evaluate_pod(spec, {}, level=level)
        assert alone and evaluate(pod, level=level) == alone
        assert [v.pointer for v in evaluate(deployment, level=level)] == [
            "/spec/template" + v.pointer for v in alone
        ]
