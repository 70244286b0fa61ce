"""References, the offline table and the layer reader, without a registry."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from hardener.config import ImageTableEntry
from hardener.images import BUILT_IN_TABLE, ReferenceError, match_table, parse_reference
from hardener.images._auth import parse_challenge
from hardener.images._layers import LayerDecoder, LayerFormatError, TarScan, passwd_entry
from tests.images.conftest import layer

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "normalised", "api_host"),
    [
        ("nginx", "docker.io/library/nginx:latest", "registry-1.docker.io"),
        ("nginx:1.27", "docker.io/library/nginx:1.27", "registry-1.docker.io"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7", "registry-1.docker.io"),
        (
            "index.docker.io/library/busybox",
            "docker.io/library/busybox:latest",
            "registry-1.docker.io",
        ),
        ("k8s.gcr.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io"),
        ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1", "localhost:5000"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000"),
        (f"nginx@{DIGEST}", f"docker.io/library/nginx@{DIGEST}", "registry-1.docker.io"),
        (f"ghcr.io/o/r:1@{DIGEST}", f"ghcr.io/o/r:1@{DIGEST}", "ghcr.io"),
    ],
)
def test_references_normalise_like_the_runtimes(image: str, normalised: str, api_host: str) -> None:
    ref = parse_reference(image)
    assert (str(ref), ref.api_host) == (normalised, api_host)
    assert ref.reference == (ref.digest or ref.tag)


@pytest.mark.parametrize(
    "image",
    ["", " nginx", "$IMAGE", "${REGISTRY}/app", "Nginx", "nginx:", "a//b", "nginx@sha256:xyz"],
)
def test_bad_references_are_refused_with_the_reason(image: str) -> None:
    with pytest.raises(ReferenceError, match="image"):
        parse_reference(image)


def test_the_table_picks_the_most_specific_row_and_the_config_wins() -> None:
    def key(image: str, overrides: dict[str, ImageTableEntry] | None = None) -> str | None:
        found = match_table(parse_reference(image), overrides)
        return None if found is None else found[0]

    assert key("nginx:1.27") == "nginx"
    assert key("docker.io/library/nginx") == "nginx"
    assert key("gcr.io/distroless/static-debian12") == "gcr.io/distroless/*"
    assert key("gcr.io/distroless/static-debian12:nonroot") == "gcr.io/distroless/*:*nonroot*"
    assert key("k8s.gcr.io/pause:3.9") == "registry.k8s.io/pause:3.[5-9]*"
    assert key("registry.k8s.io/pause:3.4.1") is None
    assert key("registry.k8s.io/pause:3.10") == "registry.k8s.io/pause:3.[1-9][0-9]*"
    assert key("example.com/app") is None
    mine = {"nginx": ImageTableEntry(user="101", uid=101), "nginx:1.2*": ImageTableEntry(user="7")}
    assert key("nginx:1.27", mine) == "nginx:1.2*"
    assert match_table(parse_reference("nginx:2"), mine) == ("nginx", mine["nginx"])
    for entry in BUILT_IN_TABLE.values():
        assert entry.source, "every built-in row names its source"


def test_challenges_parse_as_registries_send_them() -> None:
    bearer = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert bearer is not None and bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/nginx:pull",
    }
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and (basic.scheme, basic.params) == (
        "basic",
        {"realm": "Registry Realm"},
    )


def _scan(data: bytes, chunk: int, wanted: frozenset[str] = frozenset({"etc/passwd"})) -> TarScan:
    decoder = LayerDecoder(max_output=10_000_000)
    scan = TarScan(wanted)
    for i in range(0, len(data), chunk):
        scan.feed(decoder.feed(data[i : i + chunk]))
    scan.feed(decoder.finish())
    return scan


@pytest.mark.parametrize("chunk", [1, 7, 512, 65536])
def test_the_tar_reader_takes_any_chunking_and_long_names(chunk: int) -> None:
    long_dir = "d" * 150
    data = layer(
        {f"{long_dir}/x": b"1", "./etc/passwd": b"app:x:7:8::/:/bin/sh\n", "etc/group": b"g:x:1:\n"}
    )
    scan = _scan(data, chunk)
    assert scan.found == {"etc/passwd": b"app:x:7:8::/:/bin/sh\n"} and scan.ended
    assert passwd_entry(scan.found["etc/passwd"], "app") == (7, 8)
    assert passwd_entry(scan.found["etc/passwd"], "nobody") is None


def test_plain_tar_multi_member_gzip_links_and_zstd() -> None:
    assert _scan(layer({"etc/passwd": b"a:x:1:1::/:\n"}, compress=False), 100).found
    raw = layer({"etc/passwd": b"a:x:1:1::/:\n"}, compress=False)
    two_members = gzip.compress(raw[:1024], mtime=0) + gzip.compress(raw[1024:], mtime=0)
    assert _scan(two_members, 300).found == {"etc/passwd": b"a:x:1:1::/:\n"}

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("etc/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/usr/share/passwd"
        tar.addfile(info)
    assert _scan(buffer.getvalue(), 512).links == {"etc/passwd": "/usr/share/passwd"}

    with pytest.raises(LayerFormatError, match="zstd"):
        LayerDecoder(100).feed(b"\x28\xb5\x2f\xfd" + b"\0" * 10)
    with pytest.raises(LayerFormatError, match="bad number field"):
        _scan(b"x" * 2048, 512)
    with pytest.raises(LayerFormatError, match="checksum"):
        _scan(b"1" * 2048, 512)
    with pytest.raises(LayerFormatError, match="expands beyond"):
        decoder = LayerDecoder(max_output=1000)
        decoder.feed(gzip.compress(b"\0" * 100_000))
