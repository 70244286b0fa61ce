"""The ``fs-group`` rule and its ``only-with-volumes`` option."""

from __future__ import annotations

from tests.engine_support import hardened, parse_config, pod


def test_fs_group_only_with_volumes_option() -> None:
    config = parse_config(
        {
            "rules": {
                "fs-group": {"only-with-volumes": True},
                "read-only-root-filesystem": {"enabled": False},
            }
        }
    )
    patched = hardened(pod(), config)
    assert "fsGroup" not in patched["spec"]["securityContext"]
    with_volume = pod(volumes=[{"name": "d", "emptyDir": {}}])
    assert hardened(with_volume, config)["spec"]["securityContext"]["fsGroup"] == 65532
