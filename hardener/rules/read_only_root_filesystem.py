"""read-only-root-filesystem: mount each container's root filesystem read-only.

Sets each container's ``securityContext.readOnlyRootFilesystem: true``, so an intruder cannot
drop tools or alter binaries in the image. Programs still need somewhere to write temporary
files, so for each writable path (``/tmp`` by default; the ``writable-paths`` option and the pod
annotation ``hardener.dev/writable-paths: "/var/cache/nginx,/run"`` add more; so do the image's
``VOLUME`` paths and the paths the offline table knows it writes, when the caller passes the
image's facts) the container gets a mount of a companion ``emptyDir`` volume, unless it already
mounts something at that path or above it. Runtimes differ on whether an image ``VOLUME``
stays writable under a read-only root (containerd makes it so unless told otherwise; CRI-O
creates it owned by root), so hardener mounts it rather than rely on either.
One companion volume serves every container for a path; an existing volume name is never
reused for something else and a mount path is never duplicated.

An explicit ``readOnlyRootFilesystem: false`` is reported; with ``enforce`` it is replaced.
The rule needs pod-level volumes, so it does not touch ephemeral containers added to a running
pod.

FAIL::

    spec:
      containers:
      - name: app
        image: nginx

FIXED::

    spec:
      containers:
      - name: app
        image: nginx
        securityContext:
          readOnlyRootFilesystem: true
        volumeMounts:
        - name: hardener-tmp
          mountPath: /tmp
      volumes:
      - name: hardener-tmp
        emptyDir: {}
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from hardener.locate import ContainerSite
from hardener.rules.base import MISSING, Rule, RuleContext, as_bool

WRITABLE_PATHS_ANNOTATION: Final = "hardener.dev/writable-paths"


def writable_paths(ctx: RuleContext) -> list[str]:
    """The configured and annotated writable paths of the pod, normalised, each once."""
    paths: list[str] = [str(p) for p in ctx.options["writable-paths"]]
    extra = ctx.annotations.get(WRITABLE_PATHS_ANNOTATION, "")
    paths.extend(p.strip() for p in extra.split(",") if p.strip())
    return _unique(paths)


def _unique(paths: list[str], known: list[str] | None = None) -> list[str]:
    unique: list[str] = list(known or ())
    for path in paths:
        normal = "/" + path.strip("/") if path.strip("/") else "/"
        if normal not in unique and normal != "/":
            unique.append(normal)
    return unique


def _image_paths(ctx: RuleContext, container: ContainerSite, base: list[str]) -> list[str]:
    """``base`` plus the image's ``VOLUME`` paths and the paths it is known to write."""
    facts = ctx.facts(container)
    if facts is None or not (facts.volumes or facts.writable_paths):
        return base
    return _unique([*facts.volumes, *facts.writable_paths], base)


def _covered(directory: str, mounted: set[str]) -> bool:
    """A mount at the path, or at a directory above it, already decides what is there."""
    return any(
        directory == path or path == "/" or directory.startswith(path + "/") for path in mounted
    )


@lru_cache(maxsize=256)
def volume_base_name(path: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"
    return f"hardener-{slug}"[:63].rstrip("-")


def _mount_paths(ctx: RuleContext, container: ContainerSite) -> set[str]:
    mounts = ctx.get((*container.path, "volumeMounts"))
    paths: set[str] = set()
    if isinstance(mounts, list):
        for mount in mounts:
            if isinstance(mount, dict) and isinstance(mount.get("mountPath"), str):
                paths.add("/" + mount["mountPath"].strip("/"))
    return paths


def _mount_names(ctx: RuleContext, container: ContainerSite) -> set[str]:
    mounts = ctx.get((*container.path, "volumeMounts"))
    if not isinstance(mounts, list):
        return set()
    return {m["name"] for m in mounts if isinstance(m, dict) and isinstance(m.get("name"), str)}


def _volumes(ctx: RuleContext) -> dict[str, object]:
    volumes = ctx.get((*ctx.site.spec_path, "volumes"))
    if not isinstance(volumes, list):
        return {}
    # A name that is not a string names no volume a mount could refer to.
    return {v["name"]: v for v in volumes if isinstance(v, dict) and isinstance(v.get("name"), str)}


def _companion(ctx: RuleContext, path: str) -> str:
    """The name of the emptyDir volume for ``path``, adding it to the pod if needed."""
    base = volume_base_name(path)
    volumes = _volumes(ctx)
    name, suffix = base, 2
    while name in volumes:
        if volumes[name] == {"name": name, "emptyDir": {}}:
            return name
        name = f"{base[: 60 - len(str(suffix))]}-{suffix}"
        suffix += 1
    ctx.append(
        (*ctx.site.spec_path, "volumes"),
        {"name": name, "emptyDir": {}},
        f"added emptyDir volume {name!r} for writable path {path}",
    )
    return name


def apply(ctx: RuleContext) -> None:
    writable: list[str] | None = None  # worked out once, for the first container that needs it
    for container in ctx.containers:
        path = (*container.path, "securityContext", "readOnlyRootFilesystem")
        current = ctx.container_sc(container, "readOnlyRootFilesystem")
        if current is not MISSING:
            if as_bool(current) is False:
                if not ctx.enforce:
                    ctx.finding(
                        f'container "{container.name}" sets '
                        "securityContext.readOnlyRootFilesystem=false",
                        path,
                        container=container,
                    )
                    continue
                ctx.set(
                    path,
                    True,
                    f'enforced readOnlyRootFilesystem=true on container "{container.name}"',
                    container=container,
                    replace=True,
                )
            else:
                continue
        else:
            ctx.set(
                path,
                True,
                f'set readOnlyRootFilesystem=true on container "{container.name}"',
                container=container,
            )
        if writable is None:
            writable = writable_paths(ctx)
        wanted = _image_paths(ctx, container, writable)
        if not wanted:
            continue
        mounted = _mount_paths(ctx, container)
        names: set[str] | None = None
        for directory in wanted:
            if _covered(directory, mounted):
                continue
            name = _companion(ctx, directory)
            if names is None:
                names = _mount_names(ctx, container)
            if name in names:
                continue
            ctx.append(
                (*container.path, "volumeMounts"),
                {"name": name, "mountPath": directory},
                f'mounted {name!r} at {directory} in container "{container.name}"',
                container=container,
            )
            mounted.add(directory)
            names.add(name)


RULE: Final[Rule] = Rule(
    id="read-only-root-filesystem",
    title="Mount the root filesystem read-only, with emptyDir volumes for writable paths",
    rationale=(
        "A writable root filesystem lets an intruder install tools and tamper with the "
        "application's own files; a read-only one, with explicit scratch space, does not."
    ),
    apply=apply,
    options={"writable-paths": ["/tmp"]},
    profiles=frozenset({"restricted"}),
    ephemeral=False,
)
