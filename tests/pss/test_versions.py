"""Version gating and the Windows / user-namespace exemptions, on small hand-made pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hardener.audit import namespace_policy
from hardener.audit._audit import ENFORCE_VERSION_LABEL
from hardener.cli import main
from hardener.config import ConfigError, default_config, parse_config
from hardener.pss import (
    Version,
    canonical_version,
    evaluate,
    evaluate_pod,
    parse_version,
    resolve_version,
)

from .pods import restricted_pod


def checks(
    spec: dict[str, Any],
    level: str,
    version: str,
    metadata: dict[str, Any] | None = None,
) -> set[str]:
    return {v.check for v in evaluate_pod(spec, metadata or {}, level=level, version=version)}


@pytest.mark.parametrize("level", ["baseline", "restricted"])
@pytest.mark.parametrize("version", [f"v1.{n}" for n in range(36)] + ["latest"])
def test_the_restricted_pod_passes_everywhere(level: str, version: str) -> None:
    assert checks(restricted_pod(), level, version) == set()


def test_allow_privilege_escalation_from_1_8() -> None:
    spec = restricted_pod()
    del spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    assert checks(spec, "restricted", "v1.7") == set()
    assert checks(spec, "restricted", "v1.8") == {"allowPrivilegeEscalation"}


def test_run_as_user_from_1_23() -> None:
    spec = restricted_pod()
    spec["securityContext"]["runAsUser"] = 0
    assert checks(spec, "restricted", "v1.22") == set()
    assert checks(spec, "restricted", "v1.23") == {"runAsUser"}
    assert checks(spec, "baseline", "latest") == set()


def test_capabilities_restricted_from_1_22() -> None:
    spec = restricted_pod()
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["CHOWN"]}
    assert checks(spec, "restricted", "v1.21") == set()
    assert checks(spec, "restricted", "v1.22") == {"capabilities_restricted"}


def test_seccomp_annotations_before_1_19_fields_after() -> None:
    unconfined_field = restricted_pod(securityContext={"seccompProfile": {"type": "Unconfined"}})
    annotated: dict[str, Any] = {"containers": [{"name": "app"}]}
    notes = {"annotations": {"container.seccomp.security.alpha.kubernetes.io/app": "unconfined"}}
    assert checks(unconfined_field, "baseline", "v1.18") == set()
    assert checks(annotated, "baseline", "v1.18", notes) == {"seccompProfile_baseline"}
    assert checks(unconfined_field, "baseline", "v1.19") == {"seccompProfile_baseline"}
    assert checks(annotated, "baseline", "v1.19", notes) == set()
    pod_note = {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}}
    assert checks(annotated, "baseline", "v1.0", pod_note) == set()


def test_seccomp_restricted_replaces_baseline_from_1_19() -> None:
    spec = restricted_pod()
    spec["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert checks(spec, "restricted", "v1.19") == {"seccompProfile_restricted"}
    assert checks(spec, "baseline", "v1.19") == {"seccompProfile_baseline"}


@pytest.mark.parametrize(
    ("sysctl", "first"),
    [
        ("kernel.shm_rmid_forced", "v1.0"),
        ("net.ipv4.ip_unprivileged_port_start", "v1.0"),
        ("net.ipv4.ip_local_reserved_ports", "v1.27"),
        ("net.ipv4.tcp_keepalive_time", "v1.29"),
        ("net.ipv4.tcp_fin_timeout", "v1.29"),
        ("net.ipv4.tcp_keepalive_intvl", "v1.29"),
        ("net.ipv4.tcp_keepalive_probes", "v1.29"),
        ("net.ipv4.tcp_rmem", "v1.32"),
        ("net.ipv4.tcp_wmem", "v1.32"),
    ],
)
def test_safe_sysctls_grow_per_version(sysctl: str, first: str) -> None:
    spec = {"containers": [{"name": "app"}], "securityContext": {"sysctls": [{"name": sysctl}]}}
    minor = int(first.split(".")[1])
    if minor:
        assert checks(spec, "baseline", f"v1.{minor - 1}") == {"sysctls"}
    assert checks(spec, "baseline", first) == set()
    assert checks(spec, "baseline", "latest") == set()


def test_unsafe_sysctl_is_never_allowed() -> None:
    spec = {
        "containers": [{"name": "app"}],
        "securityContext": {"sysctls": [{"name": "kernel.msgmax"}]},
    }
    assert checks(spec, "baseline", "latest") == {"sysctls"}


def test_selinux_container_engine_t_from_1_31() -> None:
    spec = {
        "containers": [
            {"name": "app", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}
        ]
    }
    assert checks(spec, "baseline", "v1.30") == {"seLinuxOptions"}
    assert checks(spec, "baseline", "v1.31") == set()


def test_probe_and_lifecycle_host_from_1_34() -> None:
    spec = {
        "containers": [
            {"name": "app", "lifecycle": {"preStop": {"httpGet": {"host": "10.0.0.1", "port": 80}}}}
        ]
    }
    assert checks(spec, "baseline", "v1.33") == set()
    assert checks(spec, "baseline", "v1.34") == {"hostProbesAndHostLifecycle"}


def test_proc_mount_and_user_namespaces_from_1_35() -> None:
    spec = restricted_pod(hostUsers=False)
    spec["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    assert checks(spec, "baseline", "v1.34") == {"procMount"}
    assert checks(spec, "baseline", "v1.35") == set()
    assert checks(spec, "restricted", "v1.34") == {"procMount"}
    assert checks(spec, "restricted", "v1.35") == {"procMount_restricted"}
    spec["hostUsers"] = True
    assert checks(spec, "baseline", "v1.35") == {"procMount"}
    assert checks(spec, "restricted", "v1.35") == {"procMount_restricted"}


@pytest.mark.parametrize("check", ["runAsNonRoot", "runAsUser"])
def test_root_in_a_user_namespace_is_allowed_from_1_35(check: str) -> None:
    spec = restricted_pod(hostUsers=False, securityContext={"runAsUser": 0, "runAsNonRoot": False})
    spec["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    assert check in checks(spec, "restricted", "v1.34")
    assert check not in checks(spec, "restricted", "v1.35")
    spec["hostUsers"] = True
    assert check in checks(spec, "restricted", "v1.35")


WINDOWS_EXEMPT = {
    "allowPrivilegeEscalation",
    "capabilities_restricted",
    "seccompProfile_restricted",
}


def windows_pod(os_name: str = "windows") -> dict[str, Any]:
    """A pod that sets none of the Linux-only restricted fields."""
    return {
        "os": {"name": os_name},
        "containers": [{"name": "app", "image": "app"}],
        "initContainers": [{"name": "init", "image": "init"}],
        "securityContext": {"runAsNonRoot": True},
    }


def test_windows_pods_are_exempt_from_linux_only_checks_from_1_25() -> None:
    assert checks(windows_pod(), "restricted", "v1.24") == WINDOWS_EXEMPT
    assert checks(windows_pod(), "restricted", "v1.25") == set()
    assert checks(windows_pod(), "restricted", "latest") == set()


@pytest.mark.parametrize("os_name", ["linux", "Windows", ""])
def test_other_pods_are_not_exempt(os_name: str) -> None:
    assert checks(windows_pod(os_name), "restricted", "latest") == WINDOWS_EXEMPT


def test_windows_pods_still_need_run_as_non_root_and_baseline() -> None:
    spec = windows_pod()
    del spec["securityContext"]
    spec["hostNetwork"] = True
    spec["containers"][0]["securityContext"] = {"windowsOptions": {"hostProcess": True}}
    assert checks(spec, "restricted", "latest") == {
        "runAsNonRoot",
        "hostNamespaces",
        "windowsHostProcess",
    }


# --- the one grammar of a policy version ----------------------------------------------------

# What Pod Security Admission accepts in pod-security.kubernetes.io/enforce-version (a
# kube-apiserver v1.36 refuses a namespace labelled with any of the rejected ones).
PSA_ACCEPTS = {"latest": None, "v1.0": (1, 0), "v1.7": (1, 7), "v1.25": (1, 25), "v1.99": (1, 99)}
PSA_REFUSES = ["v1.07", "v1.00", "1.25", "V1.25", "Latest", "v2.0", "v1", "v1.x", " v1.25", ""]
# What a person may type for the config or --version besides PSA's own forms: the "v" left
# out, blanks around. Each means one PSA version and is shown in PSA's form.
TYPED = {"1.25": "v1.25", " v1.25 ": "v1.25", "1.0": "v1.0", " latest": "latest"}
REFUSED_EVERYWHERE = ["v1.07", "1.07", "v1.00", "v2.0", "V1.25", "Latest", "v1", "newest", ""]


@pytest.mark.parametrize(("text", "expected"), PSA_ACCEPTS.items())
def test_label_grammar_accepts_what_psa_accepts(text: str, expected: Version | None) -> None:
    assert parse_version(text, strict=True) == expected
    assert parse_version(text) == expected
    assert canonical_version(text) == text


@pytest.mark.parametrize("text", PSA_REFUSES)
def test_label_grammar_refuses_what_psa_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="policy version"):
        parse_version(text, strict=True)


@pytest.mark.parametrize(("text", "canonical"), TYPED.items())
def test_a_typed_version_means_one_psa_version(text: str, canonical: str) -> None:
    assert canonical_version(text) == canonical


@pytest.mark.parametrize("text", REFUSED_EVERYWHERE)
def test_config_cli_and_audit_refuse_the_same_versions(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="invalid config: <config>: version: "):
        parse_config({"version": text})
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n")
    assert main(["check", "--version", text, str(pod)]) == 2
    assert "--version" in capsys.readouterr().err
    policy = namespace_policy({ENFORCE_VERSION_LABEL: text}, default_config())
    assert policy.version == "latest" and policy.note is not None


@pytest.mark.parametrize("text", [*PSA_ACCEPTS, *TYPED])
def test_config_cli_and_audit_accept_the_same_versions(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canonical = canonical_version(text)
    assert parse_config({"version": text}).version == canonical
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n")
    assert main(["check", "--version", text, str(pod)]) == 0
    assert f"(restricted, {canonical})" in capsys.readouterr().err
    # A label is read with PSA's own grammar: only PSA's forms are valid there.
    policy = namespace_policy({ENFORCE_VERSION_LABEL: text}, default_config())
    assert (policy.version, policy.note is None) == (
        (canonical, True) if text in PSA_ACCEPTS else ("latest", False)
    )


def test_a_number_in_the_config_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"version: .*quote it"):
        parse_config({"version": 1.30})


@pytest.mark.parametrize("version", [[1, 25], (1,), (2, 0), (1, "25"), (True, 25), 1.25, {}])
def test_a_malformed_version_is_a_value_error(version: Any) -> None:
    with pytest.raises(ValueError, match="policy version"):
        resolve_version(version)
    with pytest.raises(ValueError, match="policy version"):
        evaluate_pod(restricted_pod(), {}, version=version)
    with pytest.raises(ValueError, match="policy version"):
        evaluate({"kind": "Pod", "spec": restricted_pod()}, version=version)


def test_a_parsed_version_is_accepted() -> None:
    assert resolve_version((1, 25)) == (1, 25)
    assert resolve_version(None) == resolve_version("latest")
