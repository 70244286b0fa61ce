"""The offline table: well-known images, what they run as and where they write.

Used when lookups are off or fail; its facts are reported as ``table``, never as looked up.
Every row names its source (the Dockerfile or doc it was read from, see
docs/images.md); the config's ``images.table`` adds rows and overrides these by key.

Keys are image names; ``nginx`` means ``docker.io/library/nginx``. A key may carry a tag after
the last ``:`` and may use shell globs (``gcr.io/distroless/*:nonroot*``); globbed names are
written in full. The most specific key wins: a tag beats no tag, a literal beats a glob, and
the config beats the built-in table.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
from collections.abc import Mapping

from hardener.config import ImageTableEntry
from hardener.images._reference import Reference, ReferenceError, parse_reference

__all__ = ["BUILT_IN_TABLE", "TableMatch", "match_table"]


def _row(
    user: str,
    source: str,
    uid: int | None = None,
    gid: int | None = None,
    writable: tuple[str, ...] = (),
    volumes: tuple[str, ...] = (),
) -> ImageTableEntry:
    return ImageTableEntry(
        user=user, uid=uid, gid=gid, writable_paths=writable, volumes=volumes, source=source
    )


# Rows that stand under two keys (two registries, or two globs for one range of tags).
_PROMETHEUS = _row(
    "nobody",
    "prometheus/prometheus Dockerfile (b5c61f3); busybox nobody is 65534",
    uid=65534,
    gid=65534,
    volumes=("/prometheus",),
)
_NODE_EXPORTER = _row(
    "nobody", "prometheus/node_exporter Dockerfile (0c561fa)", uid=65534, gid=65534
)
_PAUSE = _row(
    "65535:65535", "kubernetes/kubernetes#95038; containerd PR #5211", uid=65535, gid=65535
)

BUILT_IN_TABLE: Mapping[str, ImageTableEntry] = {
    "nginx": _row(
        "",
        "nginxinc/docker-nginx mainline/debian/Dockerfile (b430bec)",
        writable=("/var/cache/nginx", "/var/run"),
    ),
    "nginxinc/nginx-unprivileged": _row(
        "101",
        "nginxinc/docker-nginx-unprivileged mainline/debian/Dockerfile (8ead5ce)",
        uid=101,
        writable=("/tmp",),
    ),
    "redis": _row("", "docker-library/redis 7.2/debian/Dockerfile (e9204996)", volumes=("/data",)),
    "postgres": _row(
        "",
        "docker-library/postgres 17/bookworm and 18/bookworm Dockerfiles (6edb0a8c4d)",
        writable=("/var/run/postgresql",),
    ),
    "mysql": _row(
        "",
        "docker-library/mysql 8.4/Dockerfile.oracle (7f30fdb)",
        writable=("/var/run/mysqld",),
        volumes=("/var/lib/mysql",),
    ),
    "mongo": _row(
        "",
        "docker-library/mongo 8.0/Dockerfile (2c69a57b9)",
        volumes=("/data/db", "/data/configdb"),
    ),
    "busybox": _row("", "docker-library/busybox latest-1/glibc/Dockerfile (9c20878)"),
    "alpine": _row("", "docker-library/official-images library/alpine (37079fb336)"),
    "ubuntu": _row("", "docker-library/official-images library/ubuntu; repo2docker#1346"),
    "python": _row("", "docker-library/python 3.13/slim-bookworm/Dockerfile (4f070595)"),
    "node": _row("", "nodejs/docker-node 22/bookworm-slim/Dockerfile (f27d936f)"),
    "golang": _row(
        "", "docker-library/golang 1.26/bookworm/Dockerfile (7c8c182)", writable=("/go",)
    ),
    "httpd": _row(
        "",
        "docker-library/httpd 2.4/Dockerfile, 2.4/httpd-foreground (9b63b37)",
        writable=("/usr/local/apache2/logs",),
    ),
    "memcached": _row(
        "memcache", "docker-library/memcached 1/debian/Dockerfile (53ac0ec)", uid=11211, gid=11211
    ),
    "rabbitmq": _row(
        "",
        "docker-library/rabbitmq 4.1/ubuntu/Dockerfile (9193c1d)",
        writable=("/etc/rabbitmq", "/tmp/rabbitmq-ssl", "/var/log/rabbitmq"),
        volumes=("/var/lib/rabbitmq",),
    ),
    "elasticsearch": _row(
        "1000:0",
        "docker-library/repo-info repos/elasticsearch/tag-details.md (16760b2), 8.19 history",
        uid=1000,
        gid=0,
        writable=("/usr/share/elasticsearch/data", "/usr/share/elasticsearch/logs", "/tmp"),
    ),
    "grafana/grafana": _row(
        "472",
        "grafana/grafana Dockerfile (78515af)",
        uid=472,
        writable=("/var/lib/grafana", "/var/log/grafana"),
    ),
    "prom/prometheus": _PROMETHEUS,
    "quay.io/prometheus/prometheus": _PROMETHEUS,
    "quay.io/prometheus/node-exporter": _NODE_EXPORTER,
    "prom/node-exporter": _NODE_EXPORTER,
    "gcr.io/distroless/*": _row(
        "0", "GoogleContainerTools/distroless static/static.bzl (user = uid)", uid=0
    ),
    "gcr.io/distroless/*:*nonroot*": _row(
        "65532", "GoogleContainerTools/distroless common/variables.bzl (nonroot)", uid=65532
    ),
    "registry.k8s.io/pause:3.[5-9]*": _PAUSE,
    "registry.k8s.io/pause:3.[1-9][0-9]*": _PAUSE,
    "hashicorp/http-echo:1.*": _row(
        "65532", "hashicorp/http-echo Dockerfile (b69bfb9): distroless nonroot", uid=65532
    ),
    "docker.io/bitnami/*": _row(
        "1001",
        "bitnami/containers bitnami/nginx/1.25/debian-12/Dockerfile (08cc60a)",
        uid=1001,
        writable=("/tmp",),
    ),
    "wordpress": _row(
        "",
        "docker-library/wordpress latest/php8.4/apache/Dockerfile (bf223d1c2)",
        writable=("/tmp",),
        volumes=("/var/www/html",),
    ),
    "traefik": _row(
        "",
        "traefik/traefik-library-image tmpl/scratch/tmplv3.Dockerfile (6973938)",
        writable=("/tmp",),
    ),
}

TableMatch = tuple[str, ImageTableEntry]


@functools.lru_cache(maxsize=4096)
def _split(key: str) -> tuple[str, str | None]:
    """``name[:tag]`` with the name normalised unless it holds a glob."""
    slash = key.rfind("/")
    colon = key.rfind(":")
    name, tag = (key[:colon], key[colon + 1 :]) if colon > slash else (key, None)
    if not any(c in name for c in "*?["):
        with contextlib.suppress(ReferenceError):
            name = parse_reference(name).name
    return name, tag


def match_table(
    ref: Reference, overrides: Mapping[str, ImageTableEntry] | None = None
) -> TableMatch | None:
    """The most specific row for ``ref`` (config rows first), with its key."""
    best: tuple[tuple[int, int, int, int], str, ImageTableEntry] | None = None
    for rank, table in ((1, overrides or {}), (0, BUILT_IN_TABLE)):
        for key, entry in table.items():
            name, tag = _split(key)
            if not fnmatch.fnmatchcase(ref.name, name):
                continue
            if tag is not None and (ref.tag is None or not fnmatch.fnmatchcase(ref.tag, tag)):
                continue
            literal_name = not any(c in name for c in "*?[")
            literal_tag = tag is not None and not any(c in tag for c in "*?[")
            score = (int(tag is not None), int(literal_name), int(literal_tag), rank)
            if best is None or score > best[0]:
                best = (score, key, entry)
    return None if best is None else (best[1], best[2])
