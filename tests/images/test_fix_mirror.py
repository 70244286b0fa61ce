"""Done when: ``hardener fix`` on real-world manifests whose images a loopback registry mirror
serves leaves no container the kubelet refuses, and decides each from its image.

The manifests are ``../shared/corpus`` (copied, then fixed in place). For every image reference
they name, an image is pushed to Debian's ``docker-registry`` on loopback, with the user the
real image has where hardener's offline table knows it (the users of
``../shared/docs/image-facts.md``: root, numeric, a name with its uid in the image's
``/etc/passwd``, and the image's VOLUMEs), and otherwise a user and VOLUMEs drawn
deterministically from the reference (root, ``0``, numeric non-root, a name in the image's
``/etc/passwd``). Every registry the references name is mirrored to that one registry
(``images.registries.<host>.mirror``, ``insecure: true``), and ``hardener fix`` looks the
images up itself.

Then, over every container of every hardened pod:

- the replayed kubelet (``hardener.kubelet``) refuses nothing it would not have refused in the
  manifest as written (an explicit ``runAsNonRoot: true`` on a root image is the manifest's own,
  and is kept);
- a container whose image runs as a numeric non-root user runs with ``runAsNonRoot: true``;
- a container whose image runs as a name gets ``runAsUser`` = the uid in the image's
  ``/etc/passwd``;
- with ``readOnlyRootFilesystem: true``, every image VOLUME is a writable mount.

Each "unless" (an explicit value hardener must keep, an opt-out) is counted, and the counts are
printed (``pytest -s``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hardener.cli import main
from hardener.image_facts import ImageFacts, parse_image_user
from hardener.images import ReferenceError, images_of, match_table, parse_reference
from hardener.kubelet import refusals
from hardener.locate import PodSite, pod_sites
from tests._shared import need
from tests.conftest import load_all
from tests.images.conftest import Registry, image_config, layer, start_registry
from tests.images.test_fix_lookup import mirror_config

PASSWD = (
    b"root:x:0:0:root:/root:/bin/sh\n"
    b"nobody:x:65534:65534:nobody:/:/bin/false\n"
    b"app:x:10001:10001:app:/home/app:/bin/false\n"
)
GROUP = b"root:x:0:\nnobody:x:65534:\napp:x:10001:\n"
UIDS = {"root": 0, "nobody": 65534, "app": 10001}
# For images the table does not know: mostly root, as most images are.
DRAWN_USERS = ("", "", "", "0", "1000", "1001:0", "nobody", "app:app")
DRAWN_VOLUMES: tuple[tuple[str, ...], ...] = ((), (), ("/data",), ("/var/lib/app", "/cache"))
EXTENSIONS = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Pushed:
    user: str
    uid: int | None
    """The uid the image runs as (from the user, or its /etc/passwd)."""
    volumes: tuple[str, ...]

    def facts(self, reference: str) -> ImageFacts:
        """What the kubelet sees of this image."""
        return ImageFacts(reference=reference, source="registry", user=self.user, uid=self.uid)


def _drawn(image: str, choices: tuple[Any, ...], salt: str) -> Any:
    pick = int(hashlib.sha256((salt + image).encode()).hexdigest(), 16)
    return choices[pick % len(choices)]


def _image_for(image: str) -> tuple[Pushed, bytes]:
    """The image to push for a reference, and the /etc/passwd of its layer."""
    matched = match_table(parse_reference(image))
    if matched is not None:
        entry = matched[1]
        user = parse_image_user(entry.user)
        passwd = PASSWD
        uid = user.uid
        if user.name is not None:
            if entry.uid is None:  # a name the table cannot resolve: not one to test
                return _image_for("drawn:" + image)
            passwd += f"{user.name}:x:{entry.uid}:{entry.gid or entry.uid}::/:/bin/false\n".encode()
            uid = entry.uid
        return Pushed(entry.user, uid, tuple(entry.volumes)), passwd
    user_text = _drawn(image, DRAWN_USERS, "user")
    user = parse_image_user(user_text)
    uid = user.uid if user.name is None else UIDS[user.name]
    return Pushed(user_text, uid, _drawn(image, DRAWN_VOLUMES, "volumes")), PASSWD


def _push(registry: Registry, images: list[str]) -> tuple[dict[str, Pushed], set[str]]:
    """Push every image (one per repository path: the mirror serves every registry from one
    namespace); what was pushed per image string, and the registry hosts named."""
    pushed: dict[str, Pushed] = {}
    hosts: set[str] = set()
    by_path: dict[tuple[str, str], Pushed] = {}
    jobs: dict[str, list[tuple[str, Pushed, bytes]]] = {}
    layers: dict[bytes, bytes] = {}
    for image in images:
        try:
            ref = parse_reference(image)
        except ReferenceError:
            continue  # no runtime could pull it; its facts stay unknown
        hosts.add(ref.registry)
        if ref.digest is not None:
            continue  # a digest cannot be made to order: its facts stay unknown
        path = (ref.repository, ref.tag or "latest")
        if path not in by_path:
            facts, passwd = _image_for(image)
            if passwd not in layers:
                layers[passwd] = layer({"etc/passwd": passwd, "etc/group": GROUP})
            by_path[path] = facts
            jobs.setdefault(path[0], []).append((path[1], facts, layers[passwd]))
        pushed[image] = by_path[path]

    def push(repository: str) -> None:
        # One repository's uploads in turn: the same blob twice at once is refused.
        for tag, facts, data in jobs[repository]:
            registry.push_image(repository, tag, image_config(facts.user, facts.volumes), [data])

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(push, jobs))
    return pushed, hosts


def _documents(root: Path) -> dict[Path, list[Any]]:
    """Every YAML/JSON document of the tree that libyaml reads, by file."""
    found: dict[Path, list[Any]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix not in EXTENSIONS or not path.is_file():
            continue
        try:
            found[path] = load_all(path.read_text())
        except Exception:  # a template or invalid YAML: fix leaves it alone too
            continue
    return found


def _sites(documents: list[Any]) -> list[PodSite]:
    sites: list[PodSite] = []
    for document in documents:
        try:
            sites.extend(pod_sites(document))
        except Exception:  # not a workload of a shape hardener reads
            continue
    return sites


def _effective(site: PodSite, container: dict[str, Any], key: str) -> Any:
    own = container.get("securityContext")
    if isinstance(own, dict) and own.get(key) is not None:
        return own[key]
    pod = site.spec.get("securityContext")
    return pod.get(key) if isinstance(pod, dict) else None


def _opted_out(site: PodSite, name: str) -> bool:
    annotations = site.metadata.get("annotations")
    if not isinstance(annotations, dict):
        return False
    return any(
        key in ("hardener.dev/skip", "hardener.dev/skip-rules", f"skip.hardener.dev/{name}")
        for key in annotations
    )


def test_fix_with_a_mirror_starts_every_container_from_its_image_facts(
    tmp_path: Path, images_online: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = need("corpus")
    tree = tmp_path / "corpus"
    shutil.copytree(corpus, tree)
    for entry in [tree, *tree.rglob("*")]:  # ../shared is read-only; fix must write the copy
        entry.chmod(entry.stat().st_mode | stat.S_IWUSR)
    before = _documents(tree)
    images = images_of(d for docs in before.values() for d in docs)
    registry = start_registry(tmp_path, None)
    try:
        started = time.monotonic()
        pushed, hosts = _push(registry, images)
        push_seconds = time.monotonic() - started
        config = mirror_config(
            tmp_path / "hardener.yaml",
            registry.base,
            timeout=10.0,
            **{host: registry.base for host in hosts if host != "docker.io"},
        )
        started = time.monotonic()
        main(["fix", "-j", "2", "--format", "json", "--config", str(config), str(tree)])
        fix_seconds = time.monotonic() - started
    finally:
        registry.stop()
    out, err = capsys.readouterr()
    report = json.loads(out)
    after = _documents(tree)
    facts = {image: p.facts(parse_reference(image).__str__()) for image, p in pushed.items()}

    tally: Counter[str] = Counter()
    for path, documents in after.items():
        old_sites = _sites(before.get(path, []))
        new_sites = _sites(documents)
        if len(old_sites) != len(new_sites):
            tally["files whose documents changed shape (not expected)"] += 1
            continue
        for old, new in zip(old_sites, new_sites, strict=True):
            # The kubelet: nothing refused that the manifest as written does not already ask.
            was = {(r.container, r.reason) for r in refusals(old, facts)}
            now = {(r.container, r.reason) for r in refusals(new, facts)}
            assert now <= was, (str(path), new.spec_path, now - was)
            tally["refused as written, explicit values kept"] += len(now)
            windows = (new.spec.get("os") or {}).get("name") == "windows"
            for old_c, new_c in zip(old.containers, new.containers, strict=True):
                container = new_c.container
                tally["containers"] += 1
                image = container.get("image")
                known = pushed.get(image) if isinstance(image, str) else None
                if known is None:
                    tally["containers with an image not served (digest, invalid)"] += 1
                    continue
                tally["containers with a served image"] += 1
                if _opted_out(new, new_c.name) or windows:
                    tally["opted out or Windows"] += 1
                    continue
                explicit_user = _effective(old, old_c.container, "runAsUser")
                explicit_flag = _effective(old, old_c.container, "runAsNonRoot")
                user = parse_image_user(known.user)
                if user.name is None and user.uid not in (None, 0):
                    # A numeric non-root image: runAsNonRoot, unless the manifest said no.
                    if explicit_flag is False or explicit_user == 0:
                        tally["numeric image, runAsNonRoot false or root set by hand"] += 1
                    else:
                        assert _effective(new, container, "runAsNonRoot") is True, (
                            str(path),
                            new_c.name,
                            image,
                        )
                        tally["numeric non-root image: runAsNonRoot"] += 1
                if user.name is not None and known.uid not in (None, 0):
                    if explicit_user is not None or explicit_flag is False:
                        tally["named image, runAsUser or runAsNonRoot false set by hand"] += 1
                    else:
                        assert _effective(new, container, "runAsUser") == known.uid, (
                            str(path),
                            new_c.name,
                            image,
                        )
                        assert _effective(new, container, "runAsNonRoot") is True
                        tally["named image: runAsUser from /etc/passwd"] += 1
                if user.is_root and explicit_user is None and explicit_flag is None:
                    assert _effective(new, container, "runAsNonRoot") is None, (str(path), image)
                    tally["root image: kept its user"] += 1
                old_own = old_c.container.get("securityContext") or {}
                own = container.get("securityContext") or {}
                if known.volumes and own.get("readOnlyRootFilesystem") is True:
                    if "readOnlyRootFilesystem" in old_own:
                        # The manifest's own read-only root: hardener keeps the container as
                        # it is (the rule adds mounts only where it sets the flag).
                        tally["image VOLUMEs under a read-only root set by hand"] += 1
                        continue
                    volumes = {
                        v.get("name"): v
                        for v in new.spec.get("volumes") or []
                        if isinstance(v, dict)
                    }
                    mounts = [m for m in container.get("volumeMounts") or [] if isinstance(m, dict)]
                    for volume in known.volumes:
                        # A mount at the path or above it decides what is there ("/data/"
                        # is "/data", as the kubelet cleans it).
                        covering = [
                            m
                            for m in mounts
                            if volume == "/" + str(m.get("mountPath")).strip("/")
                            or volume.startswith(str(m.get("mountPath")).rstrip("/") + "/")
                        ]
                        assert covering, (str(path), new_c.name, image, volume)
                        added = [
                            m
                            for m in covering
                            if m not in (old_c.container.get("volumeMounts") or [])
                        ]
                        if added:
                            [mount] = added
                            assert mount.get("readOnly") is not True
                            assert volumes[mount["name"]] == {"name": mount["name"], "emptyDir": {}}
                            tally["image VOLUMEs writable under a read-only root"] += 1
                        else:
                            tally["image VOLUMEs under the manifest's own mount"] += 1
    print(
        f"\n{len(images)} image references, {len(pushed)} served, {len(hosts)} registries; "
        f"push {push_seconds:.1f}s, fix {fix_seconds:.1f}s"
    )
    for key, count in sorted(tally.items()):
        print(f"  {key}: {count}")
    print(err[err.find("hardener fix:") :])
    assert "files whose documents changed shape (not expected)" not in tally
    assert tally["numeric non-root image: runAsNonRoot"] > 20, tally
    assert tally["named image: runAsUser from /etc/passwd"] > 20, tally
    assert tally["image VOLUMEs writable under a read-only root"] > 20, tally
    assert tally["root image: kept its user"] > 50, tally
    # Every served image was looked up in the mirror (images pushed alike share a digest: the
    # later ones are answered from the run's cache); only what was not served (digests,
    # references no runtime could pull) fell back to the table or stayed unknown.
    looked_up = {entry["image"]: entry for entry in report["images"]["images"]}
    # Not those of the files fix refuses (duplicate keys): 2 images only they name.
    assert looked_up.keys() <= set(images) and len(looked_up) > 200
    for image, entry in looked_up.items():
        if image in pushed:
            assert entry["source"] in ("registry", "cache"), entry
            assert (entry["user"], entry["uid"]) == (pushed[image].user, pushed[image].uid)
        else:
            assert entry["source"] in ("table", "unknown"), entry
