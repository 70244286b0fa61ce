"""The ``read-only-root-filesystem`` rule: the writable-path volumes and mounts it adds never
duplicate a volume name or a mount path.
"""

from __future__ import annotations

from tests.engine_support import hardened, pod


def test_read_only_root_filesystem_never_duplicates_volumes_or_mounts() -> None:
    obj = pod(
        {"name": "app", "image": "x", "volumeMounts": [{"name": "t", "mountPath": "/tmp/"}]},
        {"name": "side", "image": "y"},
        volumes=[{"name": "t", "emptyDir": {}}, {"name": "hardener-tmp", "secret": {}}],
    )
    obj["metadata"]["annotations"] = {"hardener.dev/writable-paths": "/var/cache/nginx"}
    patched = hardened(obj)
    names = [v["name"] for v in patched["spec"]["volumes"]]
    assert len(names) == len(set(names))
    assert names == ["t", "hardener-tmp", "hardener-var-cache-nginx", "hardener-tmp-2"]
    for container in patched["spec"]["containers"]:
        paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
        assert len(paths) == len(set(paths))
    assert patched["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "t", "mountPath": "/tmp/"},
        {"name": "hardener-var-cache-nginx", "mountPath": "/var/cache/nginx"},
    ]
    assert patched["spec"]["containers"][1]["volumeMounts"] == [
        {"name": "hardener-tmp-2", "mountPath": "/tmp"},
        {"name": "hardener-var-cache-nginx", "mountPath": "/var/cache/nginx"},
    ]
