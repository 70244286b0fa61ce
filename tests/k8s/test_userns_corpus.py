"""Real-world manifests, their images served by a loopback registry mirror, hardened with
``user-namespaces: always``, sent to the real kube-apiserver v1.36.

The images: every image reference of ``../shared/corpus`` is pushed to Debian's
``docker-registry`` on loopback, with the user the real image has where hardener's offline
table knows it (nginx, redis, busybox, memcached, prometheus, ...), and otherwise a user drawn
deterministically from root, ``0``, a numeric non-root uid, ``nobody`` (in the image's
``/etc/passwd``) and an unresolvable name. Every registry the references name is mirrored to
that one registry (``images.registries.<host>.mirror``), and the facts come from hardener's
own registry client (``ImageResolver``), reading manifests, configs and layers.

For every pod (a bare Pod, or the pod a workload's template makes, created as a bare Pod in a
namespace enforcing ``restricted:latest``, server-side dry run):

- a pod given ``hostUsers: false`` is never invalid (the API server's ``hostUsers`` rules);
- the server's verdict is the PSS evaluator's, and nothing the pod is refused for is
  ``runAsNonRoot`` or ``runAsUser``; what it is refused for is something hardener must not
  change (an explicit value: a hostPath volume, a host port, ``privileged``, an added
  capability);
- every container whose image runs as root, in a pod eligible for user namespaces, is
  admitted whenever the rest of its pod meets restricted;
- the replayed kubelet refuses no container that it would not have refused before;

and every workload object that the server accepts as written is still accepted hardened.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from hardener import parse_config, plan
from hardener.config import ImageSettings, RegistrySettings
from hardener.image_facts import ImageFacts, parse_image_user
from hardener.images import ImageResolver, match_table, parse_reference
from hardener.images import ReferenceError as ImageReferenceError
from hardener.kubelet import refusals
from hardener.locate import PodSite, pod_sites
from hardener.pss import evaluate_pod
from hardener.userns import conflicts, runs_as_root
from tests._shared import SHARED
from tests.apiserver import RESOURCES, APIServer
from tests.images.conftest import Registry, image_config, layer, start_registry
from tests.k8s.conftest import RESTRICTED
from tests.webhook.conftest import as_json, corpus_files, documents, objects_of

pytestmark = pytest.mark.apiserver

NAMESPACE = "userns-corpus"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"
# Users for images the offline table does not know: mostly root, as most images are.
DRAWN = ("", "", "", "0", "1000", "nobody", "app:app")
# Fields of a template that a bare Pod in a test namespace cannot keep: the PriorityClass and
# the RuntimeClass named must exist, and the pod must not be bound to a node.
DROPPED = ("priorityClassName", "runtimeClassName", "nodeName")


@dataclass
class Corpus:
    objects: list[dict[str, Any]]
    """Every workload object of the corpus, as the API server would receive it."""
    facts: dict[str, ImageFacts]
    pushed: dict[str, str]
    """Image reference -> the config.User pushed for it."""


def _corpus_objects() -> list[dict[str, Any]]:
    found = []
    for name, text in corpus_files():
        if name.startswith("data/"):
            continue
        for document in documents(text):
            for obj in objects_of(as_json(document)):
                try:
                    if pod_sites(obj):
                        found.append(obj)
                except Exception:  # a document of the wrong shape: not a workload to harden
                    continue
    return found


def _images(objects: list[dict[str, Any]]) -> list[str]:
    images = {
        c.container["image"]
        for obj in objects
        for site in pod_sites(obj)
        for c in site.containers
        if isinstance(c.container.get("image"), str)
    }
    return sorted(images)


def _user_for(image: str) -> tuple[str, bytes]:
    """The config.User to push for ``image`` and the /etc/passwd of its layer."""
    ref = parse_reference(image)
    matched = match_table(ref)
    if matched is not None:
        entry = matched[1]
        if parse_image_user(entry.user).name is not None and entry.uid is not None:
            name = parse_image_user(entry.user).name
            line = f"{name}:x:{entry.uid}:{entry.gid or entry.uid}::/:/bin/false\n"
            return entry.user, PASSWD + line.encode()
        return entry.user, PASSWD
    pick = int(hashlib.sha256(image.encode()).hexdigest(), 16) % len(DRAWN)
    return DRAWN[pick], PASSWD


def _push(registry: Registry, images: list[str]) -> tuple[dict[str, str], set[str]]:
    pushed: dict[str, str] = {}
    hosts: set[str] = set()
    layers: dict[bytes, bytes] = {}
    # One mirror for every registry: references of different registries with the same path
    # (quay.io/x/y and docker.io/x/y) are one image in it, pushed once.
    by_path: dict[tuple[str, str], str] = {}
    jobs: list[tuple[tuple[str, str], str, bytes]] = []
    for image in images:
        try:
            ref = parse_reference(image)
        except ImageReferenceError:
            continue
        hosts.add(ref.registry)
        if ref.digest is not None:
            continue  # a digest cannot be made to order: its facts stay unknown
        path = (ref.repository, ref.tag or "latest")
        if path not in by_path:
            user, passwd = _user_for(image)
            if passwd not in layers:
                layers[passwd] = layer({"etc/passwd": passwd, "etc/group": GROUP})
            jobs.append((path, user, layers[passwd]))
            by_path[path] = user
        pushed[image] = by_path[path]

    by_repository: dict[str, list[tuple[str, str, bytes]]] = {}
    for (repository, tag), user, data in jobs:
        by_repository.setdefault(repository, []).append((tag, user, data))

    def push(repository: str) -> None:
        # One repository's uploads in turn: the same blob uploaded twice at once to one
        # repository is refused.
        for tag, user, data in by_repository[repository]:
            registry.push_image(repository, tag, image_config(user), [data])

    # Repositories side by side: a few at a time keep the setup to seconds.
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(push, by_repository))
    return pushed, hosts


async def _resolve(images: list[str], hosts: set[str], mirror: str) -> dict[str, ImageFacts]:
    settings = ImageSettings(
        registries={h: RegistrySettings(mirror=mirror, insecure=True) for h in hosts},
        timeout_seconds=10.0,
    )
    async with ImageResolver(settings, cache_dir=None, concurrency=16) as resolver:
        return await resolver.lookup_many(images)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    if not (SHARED / "corpus").is_dir():
        pytest.skip("../shared/corpus is not present beside the repository")
    objects = _corpus_objects()
    images = _images(objects)
    directory = tmp_path_factory.mktemp("mirror")
    registry = start_registry(directory, None)
    try:
        pushed, hosts = _push(registry, images)
        facts = asyncio.run(_resolve(images, hosts, registry.base))
        yield Corpus(objects, facts, pushed)
    finally:
        registry.stop()


def test_the_mirror_serves_every_image(corpus: Corpus) -> None:
    assert len(corpus.objects) > 500 and len(corpus.pushed) > 200
    for image, user in corpus.pushed.items():
        facts = corpus.facts[image]
        # Images pushed alike share a digest: the second is answered from the run's memory.
        assert facts.source in ("registry", "cache"), (image, facts.detail)
        assert facts.user == user
        name = parse_image_user(user).name
        if name == "nobody":
            assert facts.uid == 65534, (image, facts.detail)
        elif name == "app":
            assert facts.uid is None  # not in its /etc/passwd
    users = Counter("root" if parse_image_user(u).is_root else u for u in corpus.pushed.values())
    assert users["root"] > len(corpus.pushed) / 2, users


def _bare_pod(site: PodSite, number: int) -> dict[str, Any]:
    spec = copy.deepcopy(site.spec)
    for key in DROPPED:
        spec.pop(key, None)
    metadata: dict[str, Any] = {"name": f"corpus-{number}"}
    for key in ("labels", "annotations"):
        if isinstance(site.metadata.get(key), dict):
            metadata[key] = copy.deepcopy(site.metadata[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _create(apiserver: APIServer, obj: dict[str, Any]) -> tuple[int, str]:
    answer = apiserver.create(obj, NAMESPACE, dry_run=True)
    return answer.status, answer.message


def _causes(apiserver: APIServer, obj: dict[str, Any]) -> set[tuple[str, str]]:
    """What the server finds invalid in ``obj``: (field, reason) of each cause."""
    answer = apiserver.create(obj, NAMESPACE, dry_run=True)
    if answer.status != 422:
        return set()
    causes = answer.body.get("details", {}).get("causes", [])
    return {(c.get("field", ""), c.get("reason", "")) for c in causes}


@pytest.fixture(scope="module")
def namespace(apiserver: APIServer, corpus: Corpus) -> str:
    apiserver.create_namespace(NAMESPACE, RESTRICTED)
    accounts = {
        site.spec.get("serviceAccountName") or site.spec.get("serviceAccount")
        for obj in corpus.objects
        for site in pod_sites(obj)
    }
    for account in sorted(a for a in accounts if isinstance(a, str) and a and a != "default"):
        apiserver.request(
            "POST",
            f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        )
    return NAMESPACE


def test_root_containers_of_eligible_pods_are_admitted_valid_and_start(
    apiserver: APIServer, corpus: Corpus, namespace: str
) -> None:
    config = parse_config({"user-namespaces": "always"})
    tally: Counter[str] = Counter()
    refused_for: Counter[str] = Counter()
    seen: set[str] = set()
    number = 0
    for obj in corpus.objects:
        result = plan(obj, config, images=corpus.facts)
        hardened = result.hardened
        reasons = [d.reason for d in result.decisions if d.rule == "user-namespace"]
        for before, after, reason in zip(pod_sites(obj), pod_sites(hardened), reasons, strict=True):
            key = json.dumps([after.spec, after.metadata], sort_keys=True)
            if key in seen:
                continue  # the same pod in several files: sent once
            seen.add(key)
            number += 1
            roots = [n for n, v in runs_as_root(after, corpus.facts).items() if v is True]
            in_user_namespace = after.spec.get("hostUsers") is False
            if reason == "added":
                assert conflicts(after) == [], reason
            # The kubelet: nothing refused that was not refused before hardening.
            was = {(r.container, r.reason) for r in refusals(before, corpus.facts)}
            now = {(r.container, r.reason) for r in refusals(after, corpus.facts)}
            assert now <= was, (number, now - was)

            status, message = _create(apiserver, _bare_pod(after, number))
            violations = evaluate_pod(after.spec, after.metadata, level="restricted")
            checks = sorted({v.check for v in violations})
            if status == 422:
                # Invalid as the corpus wrote it (a volume mount naming no volume, ...), and
                # for nothing hardener added: the causes are the original's.
                hardened_causes = _causes(apiserver, _bare_pod(after, number))
                original_causes = _causes(apiserver, _bare_pod(before, number))
                assert original_causes and hardened_causes <= original_causes, (number, message)
                tally["invalid as written"] += 1
                continue
            if status == 400:
                # Not even decodable as a Pod (a string where an integer belongs): as written.
                assert _create(apiserver, _bare_pod(before, number))[0] == 400, message
                tally["undecodable as written"] += 1
                continue
            assert status in (201, 403), (number, status, message)
            # The server's verdict is the evaluator's.
            assert (status == 201) == (not violations), (number, message, checks)
            if in_user_namespace:
                assert not {"runAsNonRoot", "runAsUser"} & set(checks), (number, checks)
                # What is left is what the pod asks for explicitly: hardener must not change it.
                assert not [v for v in violations if v.fixable], (number, checks)
            if reason == "added":
                tally["eligible pods"] += 1
                tally["root containers in eligible pods"] += len(roots)
                if status == 201:
                    tally["root containers admitted"] += len(roots)
                else:
                    tally["root containers refused"] += len(roots)
                    refused_for.update(checks)
            else:
                tally[f"not eligible: {reason}"] += 1
    print(dict(tally), dict(refused_for))
    assert tally["root containers admitted"] > 50, tally
    # Every refusal of an eligible root pod is about something it asks for explicitly.
    assert not {"runAsNonRoot", "runAsUser"} & set(refused_for)


def test_hardened_workloads_are_still_valid(
    apiserver: APIServer, corpus: Corpus, namespace: str
) -> None:
    config = parse_config({"user-namespaces": "always"})
    tally: Counter[str] = Counter()
    for obj in corpus.objects:
        if (obj.get("apiVersion"), obj.get("kind")) not in RESOURCES or obj.get("kind") == "Pod":
            continue
        result = plan(obj, config, images=corpus.facts)
        if not any(op["path"].endswith("/hostUsers") for op in result.ops):
            continue
        hardened = copy.deepcopy(result.hardened)
        hardened.setdefault("metadata", {}).pop("namespace", None)
        status, message = _create(apiserver, hardened)
        if status == 400:
            assert _create(apiserver, obj)[0] == 400, message
            tally["undecodable as written"] += 1
            continue
        if status == 422:
            original = copy.deepcopy(obj)
            original.setdefault("metadata", {}).pop("namespace", None)
            assert _causes(apiserver, hardened) <= _causes(apiserver, original), message
            assert _causes(apiserver, original), message
            tally["invalid as written"] += 1
            continue
        assert status == 201, (obj["kind"], obj.get("metadata", {}).get("name"), message)
        tally[obj["kind"]] += 1
    print(dict(tally))
    assert sum(n for k, n in tally.items() if k != "invalid as written") > 100, tally
