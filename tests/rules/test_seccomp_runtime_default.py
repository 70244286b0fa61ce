"""The ``seccomp-runtime-default`` rule: the legacy seccomp annotations count, and a pod-level
profile is not added where every container already has one.
"""

from __future__ import annotations

import jsonpatch

from tests.engine_support import hardened, plan, pod


def test_seccomp_legacy_annotations() -> None:
    obj = pod()
    obj["metadata"]["annotations"] = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
    result = plan(obj)
    patched = jsonpatch.apply_patch(obj, result.ops)
    assert "seccompProfile" not in patched["spec"]["securityContext"]
    assert any(f.check == "seccompProfile_baseline" for f in result.findings)

    obj = pod({"name": "a", "image": "x"}, {"name": "b", "image": "x"})
    obj["metadata"]["annotations"] = {
        "container.seccomp.security.alpha.kubernetes.io/a": "runtime/default"
    }
    patched = hardened(obj)
    assert patched["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_seccomp_not_set_when_every_container_has_a_profile() -> None:
    profile = {"type": "Localhost", "localhostProfile": "x.json"}
    obj = pod({"name": "a", "image": "x", "securityContext": {"seccompProfile": profile}})
    patched = hardened(obj)
    assert "seccompProfile" not in patched["spec"]["securityContext"]
