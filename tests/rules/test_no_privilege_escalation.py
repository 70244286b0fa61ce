"""The ``no-privilege-escalation`` rule: ``allowPrivilegeEscalation: false`` is never set next to
what the API server refuses it with (``privileged``, ``CAP_SYS_ADMIN``), even when enforced.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine_support import hardened, parse_config, plan, pod


@pytest.mark.parametrize(
    "security_context",
    [
        {"privileged": True},
        {"capabilities": {"add": ["SYS_ADMIN"]}},
        {"capabilities": {"add": ["cap_sys_admin"]}},
        {"privileged": True, "allowPrivilegeEscalation": True},
    ],
)
def test_no_privilege_escalation_never_next_to_privileged(security_context: dict[str, Any]) -> None:
    config = parse_config({"rules": {"no-privilege-escalation": {"enforce": True}}})
    obj = pod({"name": "app", "image": "x", "securityContext": security_context})
    result = plan(obj, config)
    patched = hardened(obj, config)
    assert (
        patched["spec"]["containers"][0]["securityContext"].get("allowPrivilegeEscalation")
        is not False
    )
    assert any(f.rule == "no-privilege-escalation" for f in result.findings)
