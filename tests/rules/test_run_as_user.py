"""The ``run-as-user`` rule (off by default) and the ``ids`` block it takes its values from."""

from __future__ import annotations

from tests.engine_support import hardened, parse_config, pod


def test_run_as_user_rule_and_ids() -> None:
    config = parse_config(
        {
            "ids": {"user": 1001, "group": 1002, "fs-group": 1003},
            "rules": {"run-as-user": {"enabled": True}},
        }
    )
    sc = hardened(pod(), config)["spec"]["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (1001, 1002, 1002)
