"""The engine's decisions from image facts: one test per case of the image user, the explicit
values that make the image irrelevant, mixed pods, Windows, the config's ``images.root`` and
``images.unknown``, image VOLUMEs under a read-only root, and idempotence with facts. Every
hardened pod is also run through the replayed kubelet check."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from hardener import parse_config, plan
from hardener.config import Config
from hardener.image_facts import ImageFacts
from hardener.kubelet import refusals
from hardener.locate import pod_sites
from hardener.model import Plan
from hardener.rules import RULES
from hardener.rules.run_as_non_root import decide_image

ONLY_RUN_AS_NON_ROOT = {rule.id: {"enabled": rule.id == "run-as-non-root"} for rule in RULES}


def config(**images: str) -> Config:
    return parse_config({"rules": ONLY_RUN_AS_NON_ROOT, "images": images})


def facts(user: str, uid: int | None = None, **extra: Any) -> ImageFacts:
    return ImageFacts(
        reference="registry.example/x:1", source="registry", user=user, uid=uid, **extra
    )


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": list(containers), **spec},
    }


def c(name: str, image: str, **sc: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if sc:
        container["securityContext"] = sc
    return container


def harden(
    obj: dict[str, Any], images: dict[str, ImageFacts], cfg: Config | None = None
) -> tuple[dict[str, Any], Plan]:
    cfg = cfg or config()
    result = plan(obj, cfg, images=images)
    patched = jsonpatch.apply_patch(obj, result.ops)
    assert plan(patched, cfg, images=images).ops == [], "hardening must be idempotent"
    for site in pod_sites(patched):
        assert refusals(site, images) == [] or refusals(site, images) == refusals(
            pod_sites(obj)[0], images
        ), "hardener must never make the kubelet refuse a container"
    return patched, result


def sc_of(obj: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    holder = obj["spec"] if index is None else obj["spec"]["containers"][index]
    value: dict[str, Any] = holder.get("securityContext", {})
    return value


def notes(result: Plan) -> list[str]:
    return [f.message for f in result.findings if f.rule == "run-as-non-root" and f.check is None]


# -- the image user --------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["101", "1000:1000", "1000:root", "101:0", "65535:65535"])
def test_numeric_non_root_user_gets_run_as_non_root_alone(user: str) -> None:
    patched, result = harden(pod(c("app", "img")), {"img": facts(user)})
    assert sc_of(patched) == {"runAsNonRoot": True}
    assert "securityContext" not in patched["spec"]["containers"][0]
    uid = user.split(":")[0]
    assert (
        result.changes[0].message
        == f"set runAsNonRoot=true on the pod: image img runs as uid {uid}"
    )


def test_named_user_with_a_known_uid_keeps_its_own_user() -> None:
    patched, result = harden(pod(c("cache", "memcached")), {"memcached": facts("memcache", 11211)})
    assert sc_of(patched, 0) == {"runAsUser": 11211}
    assert sc_of(patched) == {"runAsNonRoot": True}
    by_pointer = {ch.pointer: ch.message for ch in result.changes}
    assert (
        'image memcached runs as user "memcache", uid 11211'
        in by_pointer["/spec/containers/0/securityContext/runAsUser"]
    )


@pytest.mark.parametrize(
    ("user", "uid", "how"),
    [
        ("", None, ""),
        ("0", None, ""),
        ("0:0", None, ""),
        ("root", 0, ' (user "root" is uid 0)'),
    ],
)
def test_root_image_is_kept_and_reported(user: str, uid: int | None, how: str) -> None:
    patched, result = harden(pod(c("web", "nginx")), {"nginx": facts(user, uid)})
    assert patched == pod(c("web", "nginx"))
    [finding] = [f for f in result.findings if f.rule == "run-as-non-root"]
    assert finding.message == (
        f'container "web": image nginx runs as root{how}; set runAsUser or use a non-root image'
    )
    assert finding.pointer == "/spec/containers/0/image"
    assert finding.check is None and finding.container == "web"


def test_root_image_with_run_as_user_gets_the_configured_ids() -> None:
    cfg = parse_config(
        {
            "rules": ONLY_RUN_AS_NON_ROOT,
            "ids": {"user": 1001, "group": 2002},
            "images": {"root": "run-as-user"},
        }
    )
    patched, result = harden(pod(c("web", "nginx")), {"nginx": facts("")}, cfg)
    assert sc_of(patched, 0) == {"runAsUser": 1001, "runAsGroup": 2002}
    assert sc_of(patched) == {"runAsNonRoot": True}
    assert "images.root: run-as-user" in result.changes[0].message


def test_run_as_user_keeps_an_explicit_group() -> None:
    cfg = config(root="run-as-user")
    obj = pod(c("web", "nginx"), securityContext={"runAsGroup": 5})
    patched, _ = harden(obj, {"nginx": facts("0")}, cfg)
    assert sc_of(patched, 0) == {"runAsUser": 65532}
    assert sc_of(patched) == {"runAsGroup": 5, "runAsNonRoot": True}


@pytest.mark.parametrize("unknown", ["keep", "assume-nonroot"])
@pytest.mark.parametrize("user", ["nobody", "nginx:nginx", "app:1000", "1_000", " 5"])
def test_named_user_without_uid_never_gets_bare_run_as_non_root(user: str, unknown: str) -> None:
    patched, result = harden(pod(c("app", "img")), {"img": facts(user)}, config(unknown=unknown))
    assert patched == pod(c("app", "img"))
    [message] = notes(result)
    assert "a name the kubelet cannot verify as non-root" in message


@pytest.mark.parametrize("user", ["-1", "2147483648", "4294967295:0"])
def test_user_id_the_kubelet_calls_invalid_is_kept(user: str) -> None:
    patched, result = harden(pod(c("app", "img")), {"img": facts(user)})
    assert patched == pod(c("app", "img"))
    assert "refuses as invalid" in notes(result)[0]


def test_named_user_resolving_to_an_invalid_uid_is_kept() -> None:
    patched, result = harden(pod(c("app", "img")), {"img": facts("big", 2**31)})
    assert patched == pod(c("app", "img"))
    assert "refuses as invalid" in notes(result)[0]


# -- unknown images --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images",
    [{}, {"$IMAGE": ImageFacts.unknown("$IMAGE", "not a reference that can be looked up")}],
)
def test_unknown_image_is_kept_by_default(images: dict[str, ImageFacts]) -> None:
    patched, result = harden(pod(c("app", "$IMAGE")), images)
    assert patched == pod(c("app", "$IMAGE"))
    [message] = notes(result)
    assert "the user of image $IMAGE is not known" in message
    assert "(images.unknown: keep)" in message
    if images:
        assert "not a reference that can be looked up" in message


def test_unknown_image_with_assume_nonroot_gets_run_as_non_root() -> None:
    patched, result = harden(pod(c("app", "app:1")), {}, config(unknown="assume-nonroot"))
    assert sc_of(patched) == {"runAsNonRoot": True}
    assert "assumed non-root (images.unknown: assume-nonroot)" in result.changes[0].message


def test_default_config_keeps_unknown_images() -> None:
    assert parse_config({}).image_policy.unknown == "keep"
    # user-namespace: a root image keeps its user in a pod with hostUsers: false, and is
    # kept (no runAsNonRoot, a finding) in any other pod, as keep does.
    assert parse_config({}).image_policy.root == "user-namespace"


# -- explicit values -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["pod", "container"])
def test_explicit_non_zero_run_as_user_makes_the_image_irrelevant(where: str) -> None:
    if where == "pod":
        obj = pod(c("web", "nginx"), securityContext={"runAsUser": 1000})
    else:
        obj = pod(c("web", "nginx", runAsUser=1000))
    patched, result = harden(obj, {"nginx": facts("")})
    assert sc_of(patched).get("runAsNonRoot") is True
    assert sc_of(patched).get("runAsUser", 1000) == 1000
    assert sc_of(patched, 0).get("runAsUser", 1000) == 1000
    assert notes(result) == []


def test_explicit_run_as_user_is_never_overridden_by_the_image_uid() -> None:
    obj = pod(c("cache", "memcached", runAsUser=4242))
    patched, _ = harden(obj, {"memcached": facts("memcache", 11211)})
    assert sc_of(patched, 0) == {"runAsUser": 4242}
    assert sc_of(patched) == {"runAsNonRoot": True}


def test_explicit_run_as_user_zero_is_reported_and_left() -> None:
    obj = pod(c("web", "grafana", runAsUser=0))
    patched, result = harden(obj, {"grafana": facts("472")})
    assert patched == obj
    assert any(f.check == "runAsUser" for f in result.findings)


def test_explicit_run_as_non_root_gets_the_image_uid_that_lets_it_start() -> None:
    obj = pod(c("cache", "memcached"), securityContext={"runAsNonRoot": True})
    patched, _ = harden(obj, {"memcached": facts("memcache", 11211)})
    assert sc_of(patched, 0) == {"runAsUser": 11211}


def test_explicit_run_as_non_root_on_a_root_image_is_reported_not_made_worse() -> None:
    obj = pod(c("web", "nginx", runAsNonRoot=True))
    patched, result = harden(obj, {"nginx": facts("")})
    assert patched == obj
    [message] = notes(result)
    assert message.startswith('container "web" will not start: the kubelet says "container has')
    assert "image will run as root" in message


def test_enforce_does_not_turn_a_root_image_into_a_refused_pod() -> None:
    rules = {**ONLY_RUN_AS_NON_ROOT, "run-as-non-root": {"enforce": True}}
    cfg = parse_config({"rules": rules})
    obj = pod(c("web", "nginx", runAsNonRoot=False), c("app", "grafana", runAsNonRoot=False))
    patched, result = harden(obj, {"nginx": facts(""), "grafana": facts("472")}, cfg)
    assert sc_of(patched, 0) == {"runAsNonRoot": False}
    assert sc_of(patched, 1) == {"runAsNonRoot": True}
    assert any(
        f.pointer == "/spec/containers/0/securityContext/runAsNonRoot" for f in result.findings
    )


def test_run_as_user_rule_runs_first_and_makes_any_image_safe() -> None:
    rules = {**ONLY_RUN_AS_NON_ROOT, "run-as-user": {"enabled": True}}
    patched, _ = harden(
        pod(c("web", "nginx")), {"nginx": facts("")}, parse_config({"rules": rules})
    )
    assert sc_of(patched) == {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True}


# -- pods whose containers differ ------------------------------------------------------------


def test_containers_that_differ_get_run_as_non_root_each() -> None:
    obj = pod(
        c("web", "nginx"),
        c("dash", "grafana"),
        c("cache", "memcached"),
        initContainers=[c("init", "busybox")],
    )
    images = {
        "nginx": facts(""),
        "grafana": facts("472"),
        "memcached": facts("memcache", 11211),
        "busybox": facts(""),
    }
    patched, result = harden(obj, images)
    assert "securityContext" not in patched["spec"]
    assert "securityContext" not in patched["spec"]["containers"][0]
    assert sc_of(patched, 1) == {"runAsNonRoot": True}
    assert sc_of(patched, 2) == {"runAsUser": 11211, "runAsNonRoot": True}
    assert "securityContext" not in patched["spec"]["initContainers"][0]
    assert sorted(f.container for f in result.findings if f.rule == "run-as-non-root") == [
        "init",
        "web",
    ]


def test_containers_that_agree_share_a_pod_level_value() -> None:
    obj = pod(c("a", "grafana"), c("b", "bitnami"))
    patched, result = harden(obj, {"grafana": facts("472"), "bitnami": facts("1001")})
    assert sc_of(patched) == {"runAsNonRoot": True}
    assert result.changes[0].message == (
        "set runAsNonRoot=true on the pod: image grafana runs as uid 472; "
        "image bitnami runs as uid 1001"
    )


def test_ephemeral_container_decides_alone() -> None:
    from hardener import Scope

    obj = pod(
        c("web", "grafana"),
        ephemeralContainers=[c("debug", "busybox"), c("shell", "alpine-nonroot")],
    )
    images = {"busybox": facts(""), "alpine-nonroot": facts("65532")}
    result = plan(
        obj,
        config(),
        images=images,
        scope=Scope(ephemeral_containers=frozenset({"debug", "shell"})),
    )
    assert [op["path"] for op in result.ops] == ["/spec/ephemeralContainers/1/securityContext"]


# -- Windows ---------------------------------------------------------------------------------


def test_windows_refuses_only_container_administrator() -> None:
    obj = pod(c("a", "servercore"), c("b", "nanoserver"), os={"name": "windows"})
    images = {
        "servercore": facts("ContainerAdministrator"),
        "nanoserver": facts("ContainerUser"),
    }
    patched, result = harden(obj, images)
    assert "securityContext" not in patched["spec"]["containers"][0]
    assert sc_of(patched, 1) == {"runAsNonRoot": True}
    assert "runs as ContainerAdministrator" in notes(result)[0]


def test_windows_explicit_user_name_decides() -> None:
    options = {"windowsOptions": {"runAsUserName": "ContainerUser"}}
    obj = pod(c("a", "servercore"), os={"name": "windows"}, securityContext=options)
    patched, _ = harden(obj, {"servercore": facts("ContainerAdministrator")})
    assert sc_of(patched)["runAsNonRoot"] is True


# -- image VOLUMEs and writable paths under a read-only root ---------------------------------


def ro_config() -> Config:
    only = {rule.id: {"enabled": rule.id == "read-only-root-filesystem"} for rule in RULES}
    return parse_config({"rules": only})


def mounts(obj: dict[str, Any], index: int) -> dict[str, str]:
    return {
        m["mountPath"]: m["name"] for m in obj["spec"]["containers"][index].get("volumeMounts", [])
    }


def test_image_volumes_and_table_paths_get_empty_dirs() -> None:
    images = {
        "redis": facts("", volumes=("/data",)),
        "nginx": facts("", writable_paths=("/var/cache/nginx", "/var/run", "/tmp")),
    }
    obj = pod(c("a", "redis"), c("b", "nginx"), c("c", "redis"))
    patched, result = harden(obj, images, ro_config())
    assert mounts(patched, 0) == {"/tmp": "hardener-tmp", "/data": "hardener-data"}
    assert mounts(patched, 1) == {
        "/tmp": "hardener-tmp",
        "/var/cache/nginx": "hardener-var-cache-nginx",
        "/var/run": "hardener-var-run",
    }
    assert mounts(patched, 2) == mounts(patched, 0)
    names = [v["name"] for v in patched["spec"]["volumes"]]
    assert names == sorted(set(names), key=names.index), "no duplicate volume names"
    assert len(names) == 4
    assert all(v["emptyDir"] == {} for v in patched["spec"]["volumes"])
    assert any("/data" in ch.message for ch in result.changes)


def test_a_mount_at_or_above_an_image_volume_covers_it() -> None:
    images = {"pg": facts("", volumes=("/var/lib/postgresql/data", "/run/postgresql"))}
    container = c("db", "pg")
    container["volumeMounts"] = [
        {"name": "pgdata", "mountPath": "/var/lib/postgresql"},
        {"name": "run", "mountPath": "/run/postgresql/"},
    ]
    obj = pod(
        container,
        volumes=[
            {"name": "pgdata", "persistentVolumeClaim": {"claimName": "pg"}},
            {"name": "run", "emptyDir": {}},
        ],
    )
    patched, _ = harden(obj, images, ro_config())
    assert mounts(patched, 0) == {
        "/var/lib/postgresql": "pgdata",
        "/run/postgresql/": "run",
        "/tmp": "hardener-tmp",
    }


def test_an_existing_volume_name_is_never_reused() -> None:
    obj = pod(c("a", "redis"), volumes=[{"name": "hardener-data", "configMap": {"name": "x"}}])
    patched, _ = harden(obj, {"redis": facts("", volumes=("/data",))}, ro_config())
    assert mounts(patched, 0)["/data"] == "hardener-data-2"


def test_no_volumes_without_a_read_only_root_being_added() -> None:
    obj = pod(c("a", "redis", readOnlyRootFilesystem=True))
    patched, _ = harden(obj, {"redis": facts("", volumes=("/data",))}, ro_config())
    assert patched == obj


# -- idempotence and the decision function ---------------------------------------------------


@pytest.mark.parametrize("root", ["keep", "run-as-user"])
@pytest.mark.parametrize("unknown", ["keep", "assume-nonroot"])
def test_full_profile_with_facts_is_idempotent(root: str, unknown: str) -> None:
    cfg = parse_config({"images": {"root": root, "unknown": unknown}})
    obj = pod(
        c("web", "nginx"),
        c("cache", "memcached"),
        c("dash", "grafana"),
        c("mystery", "private:1"),
        initContainers=[c("init", "busybox", runAsNonRoot=True)],
    )
    images = {
        "nginx": facts("", writable_paths=("/var/cache/nginx",)),
        "memcached": facts("memcache", 11211),
        "grafana": facts("472", volumes=("/var/lib/grafana",)),
        "busybox": facts(""),
    }
    harden(obj, images, cfg)


def test_decide_image_names_each_action() -> None:
    from hardener.image_facts import ImagePolicy

    keep, lenient = ImagePolicy(), ImagePolicy(root="run-as-user", unknown="assume-nonroot")
    assert decide_image("a", facts("101"), keep).action == "non-root"
    assert decide_image("a", facts("app", 7), keep).action == "run-as-uid"
    assert decide_image("a", facts(""), keep).action == "keep"
    assert decide_image("a", facts(""), lenient, (5, 6)).run_as_group == 6
    assert decide_image("a", None, keep).action == "keep"
    assert decide_image("a", None, lenient).action == "assume"
    assert decide_image("a", facts("ContainerUser"), keep, windows=True).action == "non-root"
