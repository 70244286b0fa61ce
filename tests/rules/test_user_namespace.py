"""User namespaces in the engine: the ``user-namespace`` rule's conditions, alone and combined;
what ``run-as-non-root`` does with root, non-root, named and unknown images once a pod has its
own user namespace; the config's ``user-namespaces`` and ``images.root``; the cluster support
states; the policy version; and a Hypothesis property: for any pod, image facts and support,
the output is valid under the API server's ``hostUsers`` rules, passes the replayed kubelet
``verifyRunAsNonRoot``, maps every id the pod runs with, and passes the restricted
``runAsNonRoot`` and ``runAsUser`` checks whenever the pod runs in a user namespace."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardener import parse_config, plan
from hardener.config import Config
from hardener.fixer.run import INVALID_CHECK, CheckOptions, check_text
from hardener.image_facts import ImageFacts, parse_image_user
from hardener.kubelet import refusals
from hardener.locate import pod_sites
from hardener.model import Plan
from hardener.pss import evaluate_pod
from hardener.rules.user_namespace import REASONS
from hardener.userns import MAX_ID, ClusterView, NodeSupport, Support, conflicts

ROOT = ImageFacts(reference="docker.io/library/nginx:1.27", source="registry", user="")
NON_ROOT = ImageFacts(reference="example.com/app:1", source="registry", user="1000")
NAMED = ImageFacts(reference="example.com/cache:1", source="registry", user="memcache", uid=11211)
NAMED_ROOT = ImageFacts(reference="example.com/admin:1", source="registry", user="root", uid=0)
NAMED_UNRESOLVED = ImageFacts(reference="example.com/odd:1", source="registry", user="odd")
UNKNOWN = ImageFacts.unknown("example.com/secret:1", "401 Unauthorized")
IMAGES = {
    "nginx:1.27": ROOT,
    "app:1": NON_ROOT,
    "cache:1": NAMED,
    "admin:1": NAMED_ROOT,
    "odd:1": NAMED_UNRESOLVED,
    "secret:1": UNKNOWN,
}


def config(**data: Any) -> Config:
    return parse_config({"user-namespaces": "always", **data})


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": list(containers) or [c("web", "nginx:1.27")], **spec},
    }


def c(name: str, image: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def harden(
    obj: dict[str, Any],
    cfg: Config | None = None,
    support: Support | None = None,
    images: dict[str, ImageFacts] | None = None,
) -> tuple[dict[str, Any], Plan]:
    cfg = cfg or config()
    images = IMAGES if images is None else images
    result = plan(obj, cfg, images=images, user_namespaces=support)
    patched = jsonpatch.apply_patch(obj, result.ops)
    again = plan(patched, cfg, images=images, user_namespaces=support)
    assert again.ops == [], "hardening must be idempotent"
    return patched, result


def added(result: Plan) -> bool:
    return any(op["path"].endswith("/hostUsers") for op in result.ops)


def notes(result: Plan, rule: str = "user-namespace") -> list[str]:
    return [f.message for f in result.findings if f.rule == rule and f.check is None]


def reasons(result: Plan) -> list[str]:
    return [d.reason for d in result.decisions if d.rule == "user-namespace"]


def node(name: str, *, default: bool = True, os: str = "linux", **handlers: bool) -> dict[str, Any]:
    listed = [{"name": "", "features": {"userNamespaces": default}}]
    listed += [{"name": h, "features": {"userNamespaces": v}} for h, v in handlers.items()]
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/os": os}},
        "status": {
            "nodeInfo": {"operatingSystem": os, "kernelVersion": "6.8.0-45-generic"},
            "runtimeHandlers": listed,
        },
    }


def view(*nodes: dict[str, Any], classes: dict[str, str] | None = None) -> Support:
    runtime = [{"metadata": {"name": n}, "handler": h} for n, h in (classes or {}).items()]
    return Support.of_cluster(ClusterView.from_objects(nodes, runtime))


# -- the rule applies --------------------------------------------------------------------------


def test_an_eligible_pod_gets_host_users_false_and_its_root_image_keeps_its_user() -> None:
    patched, result = harden(pod())
    assert patched["spec"]["hostUsers"] is False
    security = patched["spec"]["containers"][0]["securityContext"]
    assert "runAsNonRoot" not in security and "runAsUser" not in security
    assert "runAsNonRoot" not in patched["spec"]["securityContext"]
    assert reasons(result) == ["added"]
    change = next(ch for ch in result.changes if ch.rule == "user-namespace")
    assert change.pointer == "/spec/hostUsers"
    assert (
        "its own user namespace" in change.message and "user-namespaces: always" in change.message
    )
    # Nothing to report: the root image is harmless there and restricted admits the pod.
    assert not [f for f in result.findings if f.container == "web"]
    assert not [f for f in result.findings if f.rule == "pss"]


@pytest.mark.parametrize(
    ("image", "security"),
    [
        ("app:1", {"runAsNonRoot": True}),  # numeric non-root: runAsNonRoot, as today
        ("cache:1", {"runAsNonRoot": True, "runAsUser": 11211}),  # a name with a known uid
        ("nginx:1.27", {}),  # root: kept as it is
        ("admin:1", {}),  # a name whose uid is 0
        ("odd:1", {}),  # a name whose uid is not known
        ("secret:1", {}),  # unknown facts, images.unknown: keep
    ],
)
def test_images_in_a_user_namespace(image: str, security: dict[str, Any]) -> None:
    patched, result = harden(pod(c("app", image)))
    assert patched["spec"]["hostUsers"] is False
    got = {
        k: v
        for holder in (patched["spec"], patched["spec"]["containers"][0])
        for k, v in holder.get("securityContext", {}).items()
        if k in ("runAsNonRoot", "runAsUser")
    }
    assert got == security
    assert notes(result, "run-as-non-root") == []
    assert not [f for f in result.findings if f.rule == "pss"]
    site = pod_sites(patched)[0]
    assert refusals(site, IMAGES) == []


def test_a_mixed_pod_keeps_run_as_non_root_where_the_image_allows_it() -> None:
    patched, _ = harden(pod(c("web", "nginx:1.27"), c("app", "app:1"), c("cache", "cache:1")))
    spec = patched["spec"]
    assert spec["hostUsers"] is False
    assert "runAsNonRoot" not in spec["securityContext"]
    web, app, cache = (x.get("securityContext", {}) for x in spec["containers"])
    assert "runAsNonRoot" not in web
    assert app["runAsNonRoot"] is True
    assert (cache["runAsNonRoot"], cache["runAsUser"]) == (True, 11211)


def test_unknown_images_under_assume_nonroot_still_get_run_as_non_root() -> None:
    patched, _ = harden(pod(c("x", "secret:1")), config(images={"unknown": "assume-nonroot"}))
    assert patched["spec"]["hostUsers"] is False
    assert patched["spec"]["securityContext"]["runAsNonRoot"] is True


def test_images_root_keep_reports_the_root_image_even_in_a_user_namespace() -> None:
    patched, result = harden(pod(), config(images={"root": "keep"}))
    assert patched["spec"]["hostUsers"] is False
    assert "runAsNonRoot" not in patched["spec"]["securityContext"]
    assert notes(result, "run-as-non-root") == [
        'container "web": image nginx:1.27 runs as root; set runAsUser or use a non-root image'
    ]


def test_images_root_run_as_user_gives_ids_even_in_a_user_namespace() -> None:
    patched, _ = harden(pod(), config(images={"root": "run-as-user"}))
    assert patched["spec"]["hostUsers"] is False
    security = patched["spec"]["containers"][0]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (65532, 65532)
    assert patched["spec"]["securityContext"]["runAsNonRoot"] is True


def test_explicit_root_values_are_no_finding_in_a_user_namespace() -> None:
    obj = pod(securityContext={"runAsUser": 0, "runAsNonRoot": False})
    patched, result = harden(obj)
    assert patched["spec"]["hostUsers"] is False
    assert patched["spec"]["securityContext"]["runAsUser"] == 0
    assert [f for f in result.findings if f.check in ("runAsUser", "runAsNonRoot")] == []


def test_a_controller_template_gets_it() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [c("web", "nginx:1.27")]}}},
    }
    patched, _ = harden(obj)
    assert patched["spec"]["template"]["spec"]["hostUsers"] is False


# -- each condition, alone and combined ------------------------------------------------------

VOLUME = {"name": "disk", "persistentVolumeClaim": {"claimName": "disk"}}
CONDITIONS: dict[str, tuple[dict[str, Any], str, str]] = {
    "hostNetwork": ({"hostNetwork": True}, "host-network", "/spec/hostNetwork"),
    "hostPID": ({"hostPID": True}, "host-pid", "/spec/hostPID"),
    "hostIPC": ({"hostIPC": True}, "host-ipc", "/spec/hostIPC"),
    "volumeDevices": (
        {
            "containers": [c("db", "app:1", volumeDevices=[{"name": "disk", "devicePath": "/d"}])],
            "volumes": [VOLUME],
        },
        "volume-devices",
        "/spec/containers/0/volumeDevices",
    ),
    "init volumeDevices": (
        {
            "initContainers": [
                c("init", "app:1", volumeDevices=[{"name": "disk", "devicePath": "/d"}])
            ],
            "volumes": [VOLUME],
        },
        "volume-devices",
        "/spec/initContainers/0/volumeDevices",
    ),
    "privileged": (
        {"containers": [c("web", "nginx:1.27", securityContext={"privileged": True})]},
        "privileged",
        "/spec/containers/0/securityContext/privileged",
    ),
    "windows": ({"os": {"name": "windows"}}, "windows", "/spec"),
    "windows nodeSelector": ({"nodeSelector": {"kubernetes.io/os": "windows"}}, "windows", "/spec"),
    "runAsUser above 65535": (
        {"securityContext": {"runAsUser": 70000}},
        "ids",
        "/spec/securityContext/runAsUser",
    ),
    "fsGroup above 65535": (
        {"securityContext": {"fsGroup": 100000}},
        "ids",
        "/spec/securityContext/fsGroup",
    ),
    "supplemental group above 65535": (
        {"securityContext": {"supplementalGroups": [5, 65536]}},
        "ids",
        "/spec/securityContext/supplementalGroups/1",
    ),
    "container runAsGroup above 65535": (
        {"containers": [c("web", "nginx:1.27", securityContext={"runAsGroup": 65536})]},
        "ids",
        "/spec/containers/0/securityContext/runAsGroup",
    ),
}


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_each_condition_alone_keeps_host_users_out_and_says_why(name: str) -> None:
    spec, code, pointer = CONDITIONS[name]
    patched, result = harden(pod(**spec))
    assert "hostUsers" not in patched["spec"]
    assert reasons(result) == [code]
    (note,) = [f for f in result.findings if f.rule == "user-namespace"]
    assert note.message.startswith("hostUsers: false left out: ")
    assert note.pointer == pointer
    assert note.check is None  # a note: the webhook shows it as a warning


def test_conditions_combined_are_all_named() -> None:
    spec = {
        "hostNetwork": True,
        "hostPID": True,
        "containers": [
            c("web", "nginx:1.27", securityContext={"privileged": True}),
            c("db", "app:1", volumeDevices=[{"name": "disk", "devicePath": "/d"}]),
        ],
        "volumes": [VOLUME],
    }
    patched, result = harden(pod(**spec))
    assert "hostUsers" not in patched["spec"]
    assert reasons(result) == ["host-network"]
    (message,) = notes(result)
    for part in (
        "the pod sets hostNetwork: true",
        "the pod sets hostPID: true",
        'container "db" has volumeDevices',
        'container "web" is privileged: true',
    ):
        assert part in message


@pytest.mark.parametrize("value", [False, None])
def test_false_host_namespaces_and_no_devices_do_not_block(value: bool | None) -> None:
    spec: dict[str, Any] = {
        "containers": [c("web", "nginx:1.27", volumeDevices=[])],
        **({} if value is None else {"hostNetwork": value, "hostPID": value, "hostIPC": value}),
    }
    patched, _ = harden(pod(**spec))
    assert patched["spec"]["hostUsers"] is False


def test_an_image_user_above_65535_keeps_host_users_out() -> None:
    big = ImageFacts(reference="example.com/big:1", source="registry", user="70000")
    patched, result = harden(pod(c("big", "big:1")), images={"big:1": big})
    assert "hostUsers" not in patched["spec"]
    assert reasons(result) == ["ids"]
    assert "uid 70000" in notes(result)[0]
    # The same image with a mapped runAsUser of its own is fine.
    patched, _ = harden(
        pod(c("big", "big:1", securityContext={"runAsUser": 1000})), images={"big:1": big}
    )
    assert patched["spec"]["hostUsers"] is False


def test_configured_ids_above_65535_keep_host_users_out() -> None:
    cfg = config(ids={"fs-group": 70000})
    patched, result = harden(pod(), cfg)
    assert "hostUsers" not in patched["spec"]
    assert reasons(result) == ["ids"]


def test_explicit_host_users_true_is_reported_and_kept() -> None:
    patched, result = harden(pod(hostUsers=True))
    assert patched["spec"]["hostUsers"] is True
    assert reasons(result) == ["host-users-true"]
    (message,) = notes(result)
    assert "hostUsers: true" in message and "left as it is" in message
    # The root image is then kept, as without user namespaces.
    assert notes(result, "run-as-non-root") == [
        'container "web": image nginx:1.27 runs as root; set runAsUser or use a non-root image'
    ]


def test_explicit_host_users_false_is_kept_and_its_conflicts_reported() -> None:
    patched, result = harden(pod(hostUsers=False, hostNetwork=True))
    assert patched["spec"]["hostUsers"] is False
    (finding,) = [f for f in result.findings if f.check == INVALID_CHECK]
    assert finding.pointer == "/spec/hostNetwork"
    assert "the API server rejects the two together" in finding.message


def test_explicit_host_users_false_counts_even_without_support() -> None:
    """A pod that already has a user namespace keeps its root image's user whatever the
    support: the kubelet runs it in one or refuses it, runAsNonRoot would change neither."""
    patched, result = harden(pod(hostUsers=False), parse_config({}))
    assert "runAsNonRoot" not in patched["spec"].get("securityContext", {})
    assert notes(result, "run-as-non-root") == []


def test_ephemeral_container_updates_leave_the_pod_alone() -> None:
    from hardener.engine import Scope

    obj = pod(ephemeralContainers=[c("debug", "nginx:1.27")])
    result = plan(
        obj, config(), images=IMAGES, scope=Scope(ephemeral_containers=frozenset({"debug"}))
    )
    assert not added(result)


def test_the_rule_can_be_turned_off_like_any_rule() -> None:
    patched, result = harden(pod(), config(rules={"user-namespace": False}))
    assert "hostUsers" not in patched["spec"]
    assert reasons(result) == []
    obj = pod()
    obj["metadata"]["annotations"] = {"hardener.dev/skip-rules": "user-namespace"}
    patched, _ = harden(obj)
    assert "hostUsers" not in patched["spec"]


# -- support ---------------------------------------------------------------------------------


def test_never_and_offline_are_silent() -> None:
    for cfg in (parse_config({"user-namespaces": "never"}), parse_config({})):
        patched, result = harden(pod(hostNetwork=True), cfg)
        assert "hostUsers" not in patched["spec"]
        assert notes(result) == []
    _, result = harden(pod(), parse_config({}))
    assert reasons(result) == ["offline"]
    # fix and check say it once in the summary: the root image's note stays as it was.
    assert notes(result, "run-as-non-root") == [
        'container "web": image nginx:1.27 runs as root; set runAsUser or use a non-root image'
    ]


def test_auto_follows_the_cluster_view() -> None:
    auto = parse_config({})
    patched, result = harden(pod(), auto, view(node("a"), node("b")))
    assert patched["spec"]["hostUsers"] is False
    assert "every Linux node supports user namespaces" in result.changes[0].message

    patched, result = harden(pod(), auto, view(node("a"), node("b", default=False)))
    assert "hostUsers" not in patched["spec"]
    assert reasons(result) == ["unsupported"]
    # The warning on the pod whose root image was kept because support is missing: the
    # image's own line, and one that says why the pod got no user namespace.
    kept, why = notes(result, "run-as-non-root")
    assert kept.startswith('container "web": image nginx:1.27 runs as root;')
    assert why == (
        'no user namespace for this pod, in which container "web" could run as root safely: '
        "node b reports no user namespace support for the default runtime handler"
    )
    (finding,) = [f for f in result.findings if f.message == why]
    assert finding.pointer == "/spec"
    # With images.root: keep, user namespaces are not the way chosen: nothing said about them.
    _, result = harden(
        pod(), parse_config({"images": {"root": "keep"}}), view(node("b", default=False))
    )
    assert len(notes(result, "run-as-non-root")) == 1
    # A Windows node needs nothing; a cluster without Linux nodes gets nothing.
    patched, _ = harden(pod(), auto, view(node("a"), node("w", default=False, os="windows")))
    assert patched["spec"]["hostUsers"] is False
    _, result = harden(pod(), auto, view(node("w", os="windows")))
    assert reasons(result) == ["no-linux-nodes"]


def test_support_missing_is_not_reported_for_non_root_images() -> None:
    _, result = harden(pod(c("app", "app:1")), parse_config({}), view(node("a", default=False)))
    assert reasons(result) == ["unsupported"]
    assert [f for f in result.findings if f.check is None] == []


def test_unknown_support_turns_the_rule_off_and_says_why() -> None:
    support = Support.unknown("the API server has not answered yet")
    patched, result = harden(pod(), parse_config({}), support)
    assert "hostUsers" not in patched["spec"]
    assert reasons(result) == ["unknown"]
    assert "the API server has not answered yet" in notes(result, "run-as-non-root")[1]


def test_runtime_class_handlers() -> None:
    auto = parse_config({})
    support = view(
        node("a", kata=False, crun=True),
        node("b", kata=True, crun=True),
        classes={"fast": "crun", "vm": "kata"},
    )
    patched, _ = harden(pod(runtimeClassName="fast"), auto, support)
    assert patched["spec"]["hostUsers"] is False
    patched, result = harden(pod(runtimeClassName="vm"), auto, support)
    assert "hostUsers" not in patched["spec"]
    assert (
        'node a reports no user namespace support for runtime handler "kata"'
        in (notes(result, "run-as-non-root")[1])
    )
    _, result = harden(pod(runtimeClassName="gone"), auto, support)
    assert reasons(result) == ["unknown-runtime-class"]
    # RuntimeClasses that could not be read: only the default handler is decided.
    unreadable = Support.of_cluster(ClusterView.from_objects([node("a")], None))
    _, result = harden(pod(runtimeClassName="fast"), auto, unreadable)
    assert reasons(result) == ["unknown-runtime-class"]
    patched, _ = harden(pod(), auto, unreadable)
    assert patched["spec"]["hostUsers"] is False


def test_always_and_never_override_what_a_face_learnt() -> None:
    unsupported = view(node("a", default=False))
    patched, _ = harden(pod(), config(), unsupported)
    assert patched["spec"]["hostUsers"] is False
    patched, _ = harden(pod(), parse_config({"user-namespaces": "never"}), view(node("a")))
    assert "hostUsers" not in patched["spec"]


def test_node_reading() -> None:
    read = NodeSupport.from_node(node("a", crun=False))
    assert (read.name, read.linux, read.kernel, dict(read.handlers)) == (
        "a",
        True,
        "6.8.0-45-generic",
        {"": True, "crun": False},
    )
    assert read.kernel_ok is True
    bare = NodeSupport.from_node({"metadata": {"name": "old"}})
    assert (bare.linux, dict(bare.handlers), bare.kernel_ok) == (True, {}, None)
    old = NodeSupport.from_node({"status": {"nodeInfo": {"kernelVersion": "5.15.0-1"}}})
    assert old.kernel_ok is False
    junk = NodeSupport.from_node({"metadata": [], "status": {"runtimeHandlers": [1, {"x": 2}]}})
    assert (junk.name, dict(junk.handlers)) == ("", {})


# -- the policy version ----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1.34", "v1.30"])
def test_before_v1_35_the_rule_hardens_but_root_images_are_kept(version: str) -> None:
    patched, result = harden(pod(), config(version=version))
    assert patched["spec"]["hostUsers"] is False
    assert "runAsNonRoot" not in patched["spec"]["securityContext"]
    assert notes(result, "run-as-non-root") == [
        'container "web": image nginx:1.27 runs as root; set runAsUser or use a non-root image'
    ]
    assert [f.check for f in result.findings if f.rule == "pss"] == ["runAsNonRoot"]


def test_v1_35_relaxes() -> None:
    patched, result = harden(pod(), config(version="v1.35"))
    assert patched["spec"]["hostUsers"] is False
    assert [f for f in result.findings if f.rule == "pss"] == []


# -- check -----------------------------------------------------------------------------------

INVALID = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  hostUsers: false
  hostPID: true
  os:
    name: windows
  containers:
  - name: c
    image: nginx
    volumeDevices:
    - {name: v, devicePath: /dev/x}
---
apiVersion: v1
kind: Pod
metadata:
  name: fine
spec:
  hostUsers: false
  hostNetwork: false
  containers:
  - name: c
    image: nginx
"""


def test_check_reports_user_namespace_invalid_at_the_exact_line() -> None:
    result = check_text(INVALID, "pods.yaml", CheckOptions())
    found = [
        (d.name, f.line, f.pointer)
        for d in result.documents
        for f in d.findings
        if f.check_or_rule == INVALID_CHECK
    ]
    assert found == [
        ("p", 7, "/spec/hostPID"),
        ("p", 13, "/spec/containers/0/volumeDevices"),
        ("p", 6, "/spec/hostUsers"),
    ]
    messages = [
        f.message for d in result.documents for f in d.findings if f.check_or_rule == INVALID_CHECK
    ]
    assert messages[2] == (
        "hostUsers: false is set, but the pod is a Windows pod (os.name: windows): the API "
        "server rejects the two together; remove one of them"
    )


def test_check_follows_the_v1_35_relaxation() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostUsers: false\n" + (
        "  containers:\n  - name: c\n    image: nginx\n    securityContext: {runAsUser: 0}\n"
    )
    latest = check_text(text, "p.yaml", CheckOptions())
    old = check_text(text, "p.yaml", CheckOptions(version="v1.34"))
    checks = [{f.check_or_rule for d in r.documents for f in d.findings} for r in (latest, old)]
    assert not {"runAsNonRoot", "runAsUser"} & checks[0]
    assert {"runAsNonRoot", "runAsUser"} <= checks[1]


# -- the property ----------------------------------------------------------------------------

USERS = st.sampled_from(
    [
        *["", "0", "root", "1000", "1000:1000", "101:0", "nobody", "nginx:nginx"] * 3,
        *["app:70000", "70000", "2147483648"],
    ]
)
# Blockers are drawn rarely, so that most pods reach the support decision.
UIDS = st.sampled_from([*[None, 0, 101, 11211, 65535] * 3, 65536, 2**31])
IDS = st.sampled_from([*[None] * 12, 0, 1000, 65532, 65535, 0, 1000, 65536, 100000])
FLAG = st.sampled_from([None, None, None, True, False])
PRIVILEGED = st.sampled_from([*[None] * 12, False, True])


@st.composite
def security_context(draw: st.DrawFn, pod_level: bool) -> dict[str, Any] | None:
    sc: dict[str, Any] = {}
    for key, strategy in (
        ("runAsNonRoot", FLAG),
        ("runAsUser", IDS),
        ("runAsGroup", IDS),
        ("privileged", PRIVILEGED),
    ):
        if pod_level and key == "privileged":
            continue
        value = draw(strategy)
        if value is not None:
            sc[key] = value
    if pod_level:
        if (group := draw(IDS)) is not None:
            sc["fsGroup"] = group
        if draw(st.integers(0, 5)) == 0:
            sc["supplementalGroups"] = [draw(IDS.filter(lambda v: v is not None))]
    return sc or None


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[dict[str, Any], dict[str, ImageFacts], dict[str, ImageFacts], Config, Support | None]:
    truth: dict[str, ImageFacts] = {}
    images: dict[str, ImageFacts] = {}
    containers: list[dict[str, Any]] = []
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        image = f"img{index}"
        user = draw(USERS)
        uid = draw(UIDS) if parse_image_user(user).name is not None else None
        truth[image] = ImageFacts(reference=image, source="registry", user=user, uid=uid)
        known = draw(st.sampled_from(["known", "known", "unknown", "absent"]))
        if known == "known":
            images[image] = truth[image]
        elif known == "unknown":
            images[image] = ImageFacts.unknown(image, "lookup failed")
        container: dict[str, Any] = {"name": f"c{index}", "image": image}
        if (sc := draw(security_context(False))) is not None:
            container["securityContext"] = sc
        if draw(st.integers(0, 19)) == 0:
            container["volumeDevices"] = [{"name": "disk", "devicePath": "/dev/d"}]
        containers.append(container)
    split = draw(st.integers(min_value=0, max_value=len(containers) - 1))
    spec: dict[str, Any] = {"containers": containers[split:]}
    if containers[:split]:
        spec["initContainers"] = containers[:split]
    if (sc := draw(security_context(True))) is not None:
        spec["securityContext"] = sc
    for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if (value := draw(st.sampled_from([*[None] * 12, False, True]))) is not None:
            spec[key] = value
    if draw(st.integers(0, 19)) == 0:
        spec["os"] = {"name": "windows"}
    if draw(st.integers(0, 19)) == 0:
        spec["nodeSelector"] = {"kubernetes.io/os": "windows"}
    if (runtime := draw(st.sampled_from([None, None, "fast", "vm", "gone"]))) is not None:
        spec["runtimeClassName"] = runtime
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    data: dict[str, Any] = {
        "user-namespaces": draw(st.sampled_from(["auto", "auto", "always", "always", "never"])),
        "version": draw(st.sampled_from(["latest", "v1.35", "v1.34"])),
        "images": {
            "root": draw(st.sampled_from(["user-namespace", "keep", "run-as-user"])),
            "unknown": draw(st.sampled_from(["keep", "assume-nonroot"])),
        },
    }
    if draw(st.booleans()):
        data["rules"] = {"run-as-non-root": {"enforce": True}}
    if draw(st.booleans()):
        data.setdefault("rules", {})["run-as-user"] = {"enabled": True}
    support = draw(
        st.sampled_from(
            [
                None,
                Support.unknown("not yet"),
                view(node("a"), node("b"), classes={"fast": "crun"}),
                view(node("a"), classes={"fast": "crun"}),
                view(node("a", crun=True), node("b", crun=True), classes={"fast": "crun"}),
                view(node("a"), node("b", default=False), classes={"vm": "kata"}),
            ]
        )
    )
    return obj, truth, images, parse_config(data), support


def api_rejects(spec: dict[str, Any]) -> list[str]:
    """The API server's ``hostUsers`` validation, written out here apart from hardener's own
    (``tests/k8s/test_userns_apiserver.py`` holds it to the real server's answers)."""
    if spec.get("hostUsers") is not False:
        return []
    rejected = [key for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True]
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if container.get("volumeDevices"):
                rejected.append(f"{field}/{container['name']}/volumeDevices")
    if (spec.get("os") or {}).get("name") == "windows":
        rejected.append("os")
    return rejected


def effective_ids(site: Any, truth: dict[str, ImageFacts]) -> list[int]:
    """Every id the kubelet would run the pod's processes with (or chown its volumes to),
    the images' true users included."""
    pod_sc = site.spec.get("securityContext") or {}
    ids = [pod_sc.get("fsGroup"), *pod_sc.get("supplementalGroups", [])]
    for container in site.containers:
        sc = container.container.get("securityContext") or {}
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        if user is None:
            facts = truth[container.container["image"]]
            user = facts.uid if facts.uid is not None else parse_image_user(facts.user).uid
        ids += [user, group]
    return [i for i in ids if isinstance(i, int)]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_any_pod_any_facts_any_support(
    scenario: tuple[
        dict[str, Any], dict[str, ImageFacts], dict[str, ImageFacts], Config, Support | None
    ],
) -> None:
    obj, truth, images, cfg, support = scenario
    result = plan(obj, cfg, images=images, user_namespaces=support)
    patched = jsonpatch.apply_patch(obj, result.ops)
    assert {d.reason for d in result.decisions} <= set(REASONS)
    (before,) = pod_sites(obj)
    (after,) = pod_sites(patched)

    if added(result):
        # Valid under the API server's hostUsers rules, supported, and every id mapped (where
        # the facts let hardener know the image's user).
        assert api_rejects(patched["spec"]) == []
        assert conflicts(after) == []
        assert "hostUsers" not in obj["spec"]
        assert cfg.user_namespaces != "never"
        runtime = obj["spec"].get("runtimeClassName")
        assert Support.for_mode(cfg.user_namespaces, support).for_pod(runtime).supported
        assert not any(
            (c.container.get("securityContext") or {}).get("privileged") is True
            for c in after.containers
        )
        images_known = all(
            c.container["image"] in images and images[c.container["image"]].known
            for c in after.containers
        )
        if images_known:
            assert all(0 <= i <= MAX_ID for i in effective_ids(after, truth))
    else:
        assert after.spec.get("hostUsers") == obj["spec"].get("hostUsers")

    # The kubelet: nothing hardener added makes it refuse a container.
    was = {r.container: r.reason for r in refusals(before, truth)}
    guessed = cfg.image_policy.unknown == "assume-nonroot"
    for refused in refusals(after, truth):
        if refused.container in was:
            assert refused.reason == was[refused.container]
            continue
        image = next(c.container["image"] for c in after.containers if c.name == refused.container)
        assert guessed and not (image in images and images[image].known), refused

    # Restricted's runAsNonRoot and runAsUser: met whenever the pod runs in a user namespace
    # under a policy that relaxes them.
    if after.spec.get("hostUsers") is False and cfg.version != "v1.34":
        left = evaluate_pod(after.spec, after.metadata, level="restricted", version=cfg.version)
        assert not [v for v in left if v.check in ("runAsNonRoot", "runAsUser")]

    assert plan(patched, cfg, images=images, user_namespaces=support).ops == []


# -- fix and check without a cluster ---------------------------------------------------------

POD_YAML = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n" + (
    "  - name: c\n    image: nginx\n"
)
OFF = "user namespaces: off (user-namespaces: auto, and no cluster to ask); set user-namespaces: "


@pytest.mark.parametrize("command", ["fix", "check"])
def test_fix_and_check_say_once_that_auto_is_off_and_how_to_turn_it_on(
    command: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from hardener.cli import main

    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(POD_YAML, encoding="utf-8")
    (tmp_path / "c.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    extra = ["--check"] if command == "fix" else []
    main([command, *extra, str(tmp_path)])
    err = capsys.readouterr().err
    assert err.count(OFF) == 1, err
    assert "always in the config when every node supports them" in err

    # Files without pods: nothing to say. always: on, nothing to say either.
    main([command, *extra, str(tmp_path / "c.yaml")])
    assert OFF not in capsys.readouterr().err
    config = tmp_path / "always.yml"
    config.write_text("user-namespaces: always\n", encoding="utf-8")
    main([command, *extra, "--config", str(config), str(tmp_path / "a.yaml")])
    assert OFF not in capsys.readouterr().err


def test_fix_with_always_writes_host_users_false(tmp_path: Any) -> None:
    from hardener.cli import main

    path = tmp_path / "pod.yaml"
    path.write_text(POD_YAML, encoding="utf-8")
    config = tmp_path / "hardener.yml"
    config.write_text("user-namespaces: always\n", encoding="utf-8")
    assert main(["fix", "--config", str(config), str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert "  hostUsers: false\n" in text
    before = text
    assert main(["fix", "--config", str(config), str(path)]) == 0
    assert path.read_text(encoding="utf-8") == before, "a hardened file stays byte-identical"
