"""The kubelet's ``verifyRunAsNonRoot``, replayed: its truth table, the effective security
context, Windows; ``check``'s ``kubelet-run-as-non-root`` finding with its exact line; and the
promise that the engine never emits a pod the kubelet refuses (a Hypothesis property over
image users and securityContext combinations)."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardener import parse_config, plan
from hardener.fixer.run import KUBELET_CHECK, CheckOptions, FixOptions, check_text, fix_text
from hardener.image_facts import ImageFacts, parse_image_user
from hardener.kubelet import refusal, refusals
from hardener.locate import pod_sites

ROOT = "container has runAsNonRoot and image will run as root"


def non_numeric(name: str) -> str:
    return (
        f"container has runAsNonRoot and image has non-numeric user ({name}), "
        "cannot verify user is non-root"
    )


BREAKS = "container's runAsUser breaks non-root policy"


def verify(user: str | None, pod_sc: Any = None, container_sc: Any = None, **kw: Any) -> str | None:
    spec = {"securityContext": pod_sc} if pod_sc is not None else {}
    container = {"securityContext": container_sc} if container_sc is not None else {}
    found = refusal(spec, container, None if user is None else parse_image_user(user), **kw)
    return None if found is None else found[0]


NON_ROOT = {"runAsNonRoot": True}


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", ROOT),
        ("0", ROOT),
        ("0:0", ROOT),
        ("+0", ROOT),
        ("root", non_numeric("root")),
        ("1000", None),
        ("1000:1000", None),
        ("1000:root", None),
        ("101:0", None),
        ("2147483647", None),
        ("nginx", non_numeric("nginx")),
        ("nobody", non_numeric("nobody")),
        ("nginx:nginx", non_numeric("nginx")),
        ("app:1000", non_numeric("app")),
        ("1_000", non_numeric("1_000")),  # Go's ParseInt takes no underscores in base 10
        (" 5", non_numeric(" 5")),
        ("99999999999999999999", non_numeric("99999999999999999999")),  # past int64: a name
    ],
)
def test_truth_table_without_run_as_user(user: str, expected: str | None) -> None:
    assert verify(user, NON_ROOT) == expected
    assert verify(user, None, NON_ROOT) == expected
    assert verify(user) is None  # no runAsNonRoot: nothing is checked


@pytest.mark.parametrize("user", ["2147483648", "-1"])
def test_invalid_user_id(user: str) -> None:
    message = verify(user, NON_ROOT)
    assert message is not None
    assert message.startswith(
        f"container has runAsNonRoot and image has an invalid user id ({user})"
    )


@pytest.mark.parametrize("user", ["", "0", "root", "1000", "nobody", None])
def test_run_as_user_decides_alone(user: str | None) -> None:
    assert verify(user, {"runAsNonRoot": True, "runAsUser": 1000}) is None
    assert verify(user, NON_ROOT, {"runAsUser": 7}) is None
    assert verify(user, {"runAsNonRoot": True, "runAsUser": 0}) == BREAKS
    # The container's value wins over the pod's, both ways.
    assert verify(user, {"runAsNonRoot": True, "runAsUser": 0}, {"runAsUser": 5}) is None
    assert verify(user, {"runAsNonRoot": True, "runAsUser": 5}, {"runAsUser": 0}) == BREAKS


def test_container_run_as_non_root_overrides_the_pod() -> None:
    assert verify("", NON_ROOT, {"runAsNonRoot": False}) is None
    assert verify("", {"runAsNonRoot": False}, NON_ROOT) == ROOT


def test_unknown_image_is_refused_only_when_the_manifest_proves_it() -> None:
    assert verify(None, NON_ROOT) is None
    assert verify(None, {"runAsNonRoot": True, "runAsUser": 0}) == BREAKS


def test_windows() -> None:
    admin = (
        "container's runAsUser (ContainerAdministrator) which will be regarded as root identity "
        "and will break non-root policy"
    )
    assert verify("ContainerAdministrator", NON_ROOT, windows=True) == admin
    assert verify("containeradministrator", NON_ROOT, windows=True) is not None
    assert verify("ContainerUser", NON_ROOT, windows=True) is None
    assert verify("", NON_ROOT, windows=True) is None  # no uid check on Windows
    assert verify("0", {"runAsNonRoot": True, "runAsUser": 0}, windows=True) is None
    named = {"runAsNonRoot": True, "windowsOptions": {"runAsUserName": "ContainerUser"}}
    assert verify("ContainerAdministrator", named, windows=True) is None
    explicit = {"windowsOptions": {"runAsUserName": "CONTAINERADMINISTRATOR"}}
    message = verify("ContainerUser", NON_ROOT, explicit, windows=True)
    assert message is not None and message.startswith("container's runAsUserName (")


def test_every_container_kind_is_checked() -> None:
    obj = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": NON_ROOT,
            "initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [{"name": "c", "image": "grafana"}],
            "ephemeralContainers": [{"name": "e", "image": "nobody-img"}],
        },
    }
    images = {
        "busybox": ImageFacts(reference="b", source="table", user=""),
        "grafana": ImageFacts(reference="g", source="table", user="472"),
        "nobody-img": ImageFacts(reference="n", source="table", user="nobody"),
    }
    found = refusals(pod_sites(obj)[0], images)
    assert [(r.container, r.pointer) for r in found] == [
        ("i", "/spec/initContainers/0/image"),
        ("e", "/spec/ephemeralContainers/0/image"),
    ]
    assert refusals(pod_sites(obj)[0]) == []  # without facts nothing is proven


# -- check -----------------------------------------------------------------------------------

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
      containers:
      - name: web
        image: nginx:1.27
      - name: root
        image: grafana/grafana
        securityContext:
          runAsUser: 0
"""


def kubelet_findings(text: str, images: dict[str, ImageFacts] | None = None) -> list[Any]:
    result = check_text(text, "web.yaml", CheckOptions(images=images))
    return [f for d in result.documents for f in d.findings if f.check_or_rule == KUBELET_CHECK]


def test_check_without_facts_flags_only_what_the_manifest_proves() -> None:
    [finding] = kubelet_findings(MANIFEST)
    assert finding.container == "root"
    assert finding.message == f'container "root" would not start: {BREAKS}'
    assert (finding.line, finding.column) == (16, 11)  # the runAsUser: 0 line
    assert finding.pointer == "/spec/template/spec/containers/1/securityContext/runAsUser"
    assert not finding.fixable


def test_check_with_facts_flags_the_image_user() -> None:
    images = {
        "nginx:1.27": ImageFacts(reference="docker.io/library/nginx:1.27", source="table", user="")
    }
    found = kubelet_findings(MANIFEST, images)
    assert [(f.container, f.line) for f in found] == [("web", 12), ("root", 16)]
    assert found[0].message == f'container "web" would not start: {ROOT}'


def test_fix_never_produces_the_kubelet_finding() -> None:
    images = {
        "nginx:1.27": ImageFacts(reference="n", source="table", user=""),
        "grafana/grafana": ImageFacts(reference="g", source="table", user="472"),
    }
    text = MANIFEST.replace("        runAsNonRoot: true\n", "        fsGroup: 1\n").replace(
        "          runAsUser: 0\n", "          privileged: false\n"
    )
    assert kubelet_findings(text, images) == []
    fixed = fix_text(text, "web.yaml", FixOptions(images=images)).fixed
    assert fixed is not None
    assert kubelet_findings(fixed, images) == []
    after = check_text(text, "web.yaml", CheckOptions(images=images, after_fix=True))
    assert not [f for d in after.documents for f in d.findings if f.check_or_rule == KUBELET_CHECK]


# -- the promise, as a property --------------------------------------------------------------

USERS = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "0:0",
            "root",
            "1000",
            "1000:0",
            "101:0",
            "65535:65535",
            "nobody",
            "nginx:nginx",
            "app:1000",
            "-1",
            "2147483647",
            "2147483648",
            "99999999999999999999",
            "+5",
            "1_000",
            "ContainerAdministrator",
            "containeradministrator",
            "ContainerUser",
        ]
    ),
    st.text(max_size=12),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
)
RESOLVED = st.one_of(st.none(), st.integers(min_value=-3, max_value=2**32))
FLAG = st.sampled_from([None, True, False])
RUN_AS = st.sampled_from([None, 0, 1000, 65532])
NAME = st.sampled_from([None, "ContainerAdministrator", "ContainerUser"])


@st.composite
def security_context(draw: st.DrawFn, windows: bool) -> dict[str, Any] | None:
    sc: dict[str, Any] = {}
    for key, strategy in (("runAsNonRoot", FLAG), ("runAsUser", RUN_AS), ("runAsGroup", RUN_AS)):
        value = draw(strategy)
        if value is not None:
            sc[key] = value
    if windows and (name := draw(NAME)) is not None:
        sc["windowsOptions"] = {"runAsUserName": name}
    return sc or draw(st.sampled_from([None, {}]))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], dict[str, ImageFacts], Any]:
    windows = draw(st.booleans())
    truth: dict[str, str] = {}
    images: dict[str, ImageFacts] = {}
    containers = []
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        image = f"img{index}"
        user = draw(USERS)
        truth[image] = user
        known = draw(st.sampled_from(["known", "known", "unknown", "absent"]))
        if known == "known":
            uid = draw(RESOLVED) if parse_image_user(user).name is not None else None
            images[image] = ImageFacts(reference=image, source="registry", user=user, uid=uid)
        elif known == "unknown":
            images[image] = ImageFacts.unknown(image, "lookup failed")
        container: dict[str, Any] = {"name": f"c{index}", "image": image}
        if (sc := draw(security_context(windows))) is not None:
            container["securityContext"] = sc
        containers.append(container)
    split = draw(st.integers(min_value=0, max_value=len(containers) - 1))
    spec: dict[str, Any] = {"containers": containers[split:] or containers}
    if split and containers[:split]:
        spec["initContainers"] = containers[:split]
    if (sc := draw(security_context(windows))) is not None:
        spec["securityContext"] = sc
    if windows:
        spec["os"] = {"name": "windows"}
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    data: dict[str, Any] = {
        "images": {
            "root": draw(st.sampled_from(["keep", "run-as-user"])),
            "unknown": draw(st.sampled_from(["keep", "assume-nonroot"])),
        }
    }
    if draw(st.booleans()):
        data["rules"] = {"run-as-non-root": {"enforce": True}}
    if draw(st.booleans()):
        data.setdefault("rules", {})["run-as-user"] = {"enabled": True}
    return obj, truth, images, parse_config(data)


def by_container(obj: dict[str, Any], truth: dict[str, str]) -> dict[str, str]:
    """The kubelet's verdict per container, against the images' true users."""
    facts = {
        image: ImageFacts(reference=image, source="registry", user=user)
        for image, user in truth.items()
    }
    return {r.container: r.reason for site in pod_sites(obj) for r in refusals(site, facts)}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_the_engine_never_emits_a_pod_the_kubelet_refuses(
    scenario: tuple[dict[str, Any], dict[str, str], dict[str, ImageFacts], Any],
) -> None:
    obj, truth, images, config = scenario
    result = plan(obj, config, images=images)
    patched = jsonpatch.apply_patch(obj, result.ops)
    before, after = by_container(obj, truth), by_container(patched, truth)
    guessed = config.image_policy.unknown == "assume-nonroot"
    containers = [*obj["spec"]["containers"], *obj["spec"].get("initContainers", [])]
    for name, reason in after.items():
        image = next(c["image"] for c in containers if c["name"] == name)
        known = image in images and images[image].known
        if name in before:
            # The user's own values already fail: nothing added made it worse, and it is
            # reported whenever the engine could know it: facts known, or a value in the
            # manifest (runAsUser 0, runAsUserName ContainerAdministrator). A Windows image's
            # own ContainerAdministrator user is not known without facts.
            assert reason == before[name]
            explicit = reason.startswith(
                ("container's runAsUser breaks", "container's runAsUserName")
            )
            if known or explicit:
                assert any(f.container in (name, None) for f in result.findings), (name, reason)
            continue
        # Only the documented opt-in may guess wrong: images.unknown: assume-nonroot on an
        # image whose facts are not known.
        assert guessed and not known, f"{name}: the engine made the kubelet refuse it: {reason}"
    assert plan(patched, config, images=images).ops == [], "hardening must be idempotent"
