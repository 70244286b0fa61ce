"""Capability names: the engine's "already dropped" and the PSS evaluator's verdict agree.

Pod Security Admission compares capability names exactly: only ``drop: [ALL]`` meets the
restricted level (a kube-apiserver v1.36 rejects ``all``, ``All``, ``CAP_ALL``, ``"ALL "``),
and only ``NET_BIND_SERVICE`` may be added. Container runtimes accept the other spellings, so
a user's ``all`` is kept and ``ALL`` is appended next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from hardener import parse_config, plan
from hardener.cli import main
from hardener.pss import drops_all, evaluate
from tests.engine_support import hardened, pod

ONLY_CAPABILITIES = parse_config(
    {
        "rules": {
            name: {"enabled": name == "drop-all-capabilities"}
            for name in (
                "drop-all-capabilities",
                "no-privilege-escalation",
                "run-as-non-root",
                "seccomp-runtime-default",
                "read-only-root-filesystem",
                "run-as-user",
                "fs-group",
            )
        }
    }
)

DROP_LISTS: list[list[Any]] = [
    ["all"],
    ["All"],
    ["CAP_ALL"],
    ["cap_all"],
    ["ALL "],
    [" ALL"],
    ["all", "ALL"],
    ["ALL"],
    ["ALL", "ALL"],
    ["NET_RAW"],
    [],
]


def _pod_dropping(drop: list[Any]) -> dict[str, Any]:
    return pod(
        {"name": "app", "image": "nginx", "securityContext": {"capabilities": {"drop": drop}}}
    )


def _capability_violations(obj: Any) -> list[str]:
    return [v.message for v in evaluate(obj) if v.check == "capabilities_restricted"]


@pytest.mark.parametrize("drop", DROP_LISTS, ids=[repr(d) for d in DROP_LISTS])
def test_engine_and_evaluator_agree_on_what_is_dropped(drop: list[Any]) -> None:
    obj = _pod_dropping(drop)
    ops = plan(obj, ONLY_CAPABILITIES).ops
    flagged = _capability_violations(obj)
    assert bool(ops) == bool(flagged) == (not drops_all(drop)), (ops, flagged)
    assert _capability_violations(jsonpatch.apply_patch(obj, ops)) == []


def test_lower_case_all_gets_ALL_appended_and_is_kept() -> None:
    obj = _pod_dropping(["all"])
    result = plan(obj, ONLY_CAPABILITIES)
    assert result.ops == [
        {
            "op": "add",
            "path": "/spec/containers/0/securityContext/capabilities/drop/-",
            "value": "ALL",
        }
    ]
    [change] = result.changes
    assert '"all"' in change.message and "exactly" in change.message
    assert [f for f in result.findings if f.rule == "drop-all-capabilities"] == []
    patched = hardened(obj, ONLY_CAPABILITIES)
    assert patched["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] == [
        "all",
        "ALL",
    ]


def test_evaluator_says_why_all_is_not_enough() -> None:
    [message] = _capability_violations(_pod_dropping(["NET_RAW", "all"]))
    assert message == (
        'container "app" must set securityContext.capabilities.drop=["ALL"] '
        '("all" drops every capability at run time, but Pod Security Admission '
        'only accepts "ALL" spelled exactly)'
    )
    [plain] = _capability_violations(_pod_dropping(["NET_RAW"]))
    assert plain == 'container "app" must set securityContext.capabilities.drop=["ALL"]'


@pytest.mark.parametrize("spelling", ["net_bind_service", "CAP_NET_BIND_SERVICE"])
def test_an_allowed_capability_spelled_otherwise_is_reported(spelling: str) -> None:
    container = {
        "name": "app",
        "image": "nginx",
        "securityContext": {"capabilities": {"add": [spelling], "drop": ["ALL"]}},
    }
    obj = pod(container)
    for enforce in (False, True):
        config = parse_config({"rules": {"drop-all-capabilities": {"enforce": enforce}}})
        result = plan(obj, config)
        caps = jsonpatch.apply_patch(obj, result.ops)["spec"]["containers"][0]["securityContext"]
        assert caps["capabilities"]["add"] == [spelling]  # never rewritten, never taken away
        [finding] = [f for f in result.findings if f.rule == "drop-all-capabilities"]
        assert spelling in finding.message and '"NET_BIND_SERVICE"' in finding.message
    assert any(v.check == "capabilities_restricted" for v in evaluate(obj))


def test_check_says_why_all_is_not_enough(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(
        "apiVersion: v1\n"
        "kind: Pod\n"
        "metadata: {name: web}\n"
        "spec:\n"
        "  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n"
        "  containers:\n"
        "  - name: app\n"
        "    image: nginx\n"
        "    securityContext:\n"
        "      allowPrivilegeEscalation: false\n"
        "      capabilities: {drop: [all]}\n",
        encoding="utf-8",
    )
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "capabilities_restricted" in out
    assert 'only accepts "ALL" spelled exactly' in out
    # nginx runs as root (the offline table: the suite runs offline), so the pod's own
    # runAsNonRoot keeps it from starting: the one thing left after the fix, and not fixable.
    assert main(["check", "--after-fix", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("[") == 1
    assert "[kubelet-run-as-non-root]" in out and "image will run as root" in out
    # With an image that runs as a numeric non-root user, nothing is left.
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "image: nginx", "image: nginxinc/nginx-unprivileged"
        )
    )
    assert main(["check", "--after-fix", str(path)]) == 0
