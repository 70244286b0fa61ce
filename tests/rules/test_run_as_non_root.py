"""The ``run-as-non-root`` rule: what keeps it off a pod or a container (an explicit
``runAsUser: 0``), and the finding that says so.
"""

from __future__ import annotations

import jsonpatch

from tests.engine_support import plan, pod


def test_runtime_blockers_for_run_as_non_root() -> None:
    obj = pod(
        {"name": "app", "image": "x"},
        {"name": "root", "image": "y", "securityContext": {"runAsUser": 0}},
    )
    result = plan(obj)
    patched = jsonpatch.apply_patch(obj, result.ops)
    assert "runAsNonRoot" not in patched["spec"]["securityContext"]
    assert patched["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] is True
    assert "runAsNonRoot" not in patched["spec"]["containers"][1]["securityContext"]
    assert any(f.check == "runAsUser" and f.container == "root" for f in result.findings)

    root_pod = pod(securityContext={"runAsUser": 0})
    result = plan(root_pod)
    assert not any("runAsNonRoot" in str(op["value"]) for op in result.ops)
    assert any(f.check == "runAsUser" for f in result.findings)
