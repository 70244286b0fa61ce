"""Recorded results of ``hardener.pss.evaluate``: the exact violations (order, messages,
pointers, containers, fixable flags) or the exact error, for a large set of inputs.

The inputs (*cases*):

- every distinct Pod Security Admission fixture (``../shared/fixtures/pss`` when it exists,
  always the copy in ``tests/data/pss``), keyed by the hash of the file;
- every document of ``../shared/corpus`` (when it exists) that has a kind;
- mutations of the seed pods below: each value the checks can reach is deleted, or replaced
  by values of every JSON type, one at a time (bad input must keep its documented result);
- pods put together at random from the fields the checks read (``RandomPods``).

Mutations and random pods are evaluated both with ``evaluate(pod)`` and with
``evaluate_pod(spec, metadata)``, which also takes the shapes ``pod_sites`` refuses. Each case
is evaluated at both levels and at the policy versions around every change of behaviour.

``tests/pss/data/recorded.json`` holds what the evaluator returned when it was recorded: the
fixtures in full (violations and outcomes stored once, one a line, so that a change reads as
a diff), the other groups as a 48-bit digest per case in order plus one of the case keys.
``test_recorded.py`` asserts that the evaluator still returns exactly that. Record again,
only on purpose (a deliberate change of a message, a new check), with::

    python -m tests.pss.recorded
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from hardener.model import HardenerError
from hardener.pss import LEVELS, evaluate, evaluate_pod
from tests._shared import SHARED, copy_of, shared

FIXTURE_ROOTS = [SHARED / "fixtures" / "pss", copy_of("fixtures/pss")]
CORPUS = SHARED / "corpus"
RECORDED = Path(__file__).resolve().parent / "data" / "recorded.json"

# Both sides of every version where a check starts or changes its behaviour, and a future one.
VERSIONS_FULL = (
    "v1.0",
    "v1.7",
    "v1.8",
    "v1.18",
    "v1.19",
    "v1.21",
    "v1.22",
    "v1.23",
    "v1.24",
    "v1.25",
    "v1.26",
    "v1.27",
    "v1.28",
    "v1.29",
    "v1.30",
    "v1.31",
    "v1.32",
    "v1.33",
    "v1.34",
    "v1.35",
    "latest",
    "v1.99",
)
# For the many corpus documents and mutations: one version per span of equal behaviour for
# everything except the safe sysctl list (which the fixtures cover at every version).
VERSIONS_SHORT = ("v1.0", "v1.18", "v1.19", "v1.24", "v1.25", "v1.30", "v1.34", "latest")
# For the mutations, which are about the shape of the input: before and after the seccomp
# fields, the Windows exemptions and the user-namespace exemptions.
VERSIONS_MUTATION = ("v1.18", "v1.24", "v1.34", "latest")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Case = tuple[str, Any, tuple[str, ...]]
"""(key, object, versions)."""


class PodSpec(NamedTuple):
    """A case evaluated with ``evaluate_pod(spec, metadata)`` rather than ``evaluate(object)``:
    the shapes that ``pod_sites`` refuses (a securityContext that is a string...) reach the
    checks this way."""

    spec: Any
    metadata: Any


def _both_ways(key: str, pod: dict[str, Any], versions: tuple[str, ...]) -> Iterator[Case]:
    yield key, pod, versions
    yield f"{key} (pod spec)", PodSpec(pod.get("spec"), pod.get("metadata")), versions


def fixture_cases() -> Iterator[Case]:
    seen: set[str] = set()
    for root in FIXTURE_ROOTS:
        if not root.is_dir():
            continue
        for path in sorted(root.glob("*/v1.*/*/*.yaml")):
            data = path.read_bytes()
            key = "fixture/" + hashlib.sha256(data).hexdigest()[:16]
            if key in seen:
                continue
            seen.add(key)
            yield key, yaml.load(data, Loader=_Loader), VERSIONS_FULL


def corpus_cases() -> Iterator[Case]:
    if not CORPUS.is_dir():
        return
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        try:
            documents = list(yaml.load_all(path.read_bytes(), Loader=_Loader))
        except yaml.YAMLError:
            continue
        name = path.relative_to(CORPUS).as_posix()
        for index, document in enumerate(documents):
            if isinstance(document, dict) and "kind" in document:
                yield f"corpus/{name}#{index}", document, VERSIONS_SHORT


def _container(name: str, sc: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "ports": [{"hostPort": 0}, {"containerPort": 9090}],
        "livenessProbe": {"httpGet": {"port": 8080}},
        "readinessProbe": {"tcpSocket": {"host": ""}},
        "lifecycle": {"preStop": {"httpGet": {}}},
        "securityContext": sc,
    }


_GOOD_SC: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    "procMount": "Default",
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "Localhost"},
    "seLinuxOptions": {"type": "container_t", "level": "s0"},
    "appArmorProfile": {"type": "RuntimeDefault"},
    "windowsOptions": {"hostProcess": False},
}

_BAD_SC: dict[str, Any] = {
    "allowPrivilegeEscalation": True,
    "privileged": True,
    "capabilities": {"drop": ["NET_RAW"], "add": ["SYS_ADMIN", "NET_BIND_SERVICE", "CHOWN"]},
    "procMount": "Unmasked",
    "runAsNonRoot": False,
    "runAsUser": 0,
    "seccompProfile": {"type": "Unconfined"},
    "seLinuxOptions": {"type": "spc_t", "user": "root", "role": "sysadm_r"},
    "appArmorProfile": {"type": "Unconfined"},
    "windowsOptions": {"hostProcess": True},
}


def _pod(spec: dict[str, Any], annotations: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"annotations": annotations},
        "spec": spec,
    }


def seed_pods() -> dict[str, dict[str, Any]]:
    """Pods whose every field the checks read is mutated by ``mutation_cases``."""
    good = _pod(
        {
            "os": {"name": "linux"},
            "hostUsers": True,
            "hostNetwork": False,
            "hostPID": False,
            "hostIPC": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
                "seLinuxOptions": {"type": "container_init_t"},
                "appArmorProfile": {"type": "Localhost"},
                "sysctls": [{"name": "net.ipv4.tcp_syncookies"}],
                "windowsOptions": {"hostProcess": False},
            },
            "initContainers": [_container("init", copy.deepcopy(_GOOD_SC))],
            "containers": [_container("app", copy.deepcopy(_GOOD_SC))],
            "ephemeralContainers": [{"name": "debug"}],
            "volumes": [
                {"name": "config", "configMap": {}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "plain"},
            ],
        },
        {
            "container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
            "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
            "container.seccomp.security.alpha.kubernetes.io/app": "localhost/profile.json",
        },
    )
    bad_container = _container("app", copy.deepcopy(_BAD_SC))
    bad_container["ports"][0]["hostPort"] = 80
    bad_container["livenessProbe"]["httpGet"]["host"] = "10.0.0.1"
    bad_container["lifecycle"]["postStart"] = {"tcpSocket": {"host": "node"}}
    bad = _pod(
        {
            "hostNetwork": True,
            "hostPID": True,
            "hostIPC": True,
            "securityContext": {
                "runAsNonRoot": False,
                "runAsUser": 0,
                "seccompProfile": {"type": "Unconfined"},
                "seLinuxOptions": {"type": "spc_t", "role": "r"},
                "appArmorProfile": {"type": "Unconfined"},
                "sysctls": [{"name": "kernel.msgmax"}, {}],
                "windowsOptions": {"hostProcess": True},
            },
            "initContainers": [{"name": "init"}],
            "containers": [bad_container, {"name": "sidecar", "securityContext": {}}],
            "volumes": [
                {"name": "host", "hostPath": {}},
                {"name": "share", "nfs": {}},
                {"name": "odd", "someNewSource": {}},
            ],
        },
        {
            "container.apparmor.security.beta.kubernetes.io/app": "unconfined",
            "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/app": "unconfined",
        },
    )
    windows = copy.deepcopy(bad)
    windows["spec"]["os"] = {"name": "windows"}
    windows["spec"]["hostUsers"] = False
    return {"good": good, "bad": bad, "windows-userns": windows}


# One value of each JSON type, and an integer that is not 0 (for hostPort and runAsUser).
_REPLACEMENTS: tuple[Any, ...] = (None, False, 0, 7, "x", [], {})
_DELETED = object()


def _paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _mutated(seed: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    pod = copy.deepcopy(seed)
    parent: Any = pod
    for token in path[:-1]:
        parent = parent[token]
    if value is _DELETED:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return pod


def mutation_cases() -> Iterator[Case]:
    for seed_name, seed in seed_pods().items():
        yield from _both_ways(f"mutation/{seed_name}", seed, VERSIONS_MUTATION)
        for path in _paths(seed):
            if not path or path[0] not in ("spec", "metadata"):
                continue
            where = "/".join(str(token) for token in path)
            yield from _both_ways(
                f"mutation/{seed_name}/{where} deleted",
                _mutated(seed, path, _DELETED),
                VERSIONS_MUTATION,
            )
            for value in _REPLACEMENTS:
                yield from _both_ways(
                    f"mutation/{seed_name}/{where}={json.dumps(value)}",
                    _mutated(seed, path, value),
                    VERSIONS_MUTATION,
                )


class RandomPods:
    """Pods made of the fields the checks read, with values picked at random (of the right
    type mostly, of any type sometimes), the same ones on every run and Python version: only
    ``random()`` is drawn from the seeded generator, whose sequence Python keeps stable."""

    VALUES: tuple[Any, ...] = (
        *(None, True, False, 0, 1, 7, 1.5, "", "x", [], {}),
        *("ALL", "NET_BIND_SERVICE", "SYS_ADMIN", " cap_sys_admin", "CHOWN"),
        *("RuntimeDefault", "Localhost", "Unconfined", "Default", "Unmasked"),
        *("container_t", "spc_t", "container_engine_t", "windows", "10.0.0.1"),
        *("runtime/default", "localhost/p", "docker/default", "unconfined"),
        *("net.ipv4.tcp_syncookies", "net.ipv4.tcp_rmem", "kernel.msgmax", 'a"b\\c', "a/b~c"),
    )

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def _chance(self, p: float) -> bool:
        return self._random.random() < p

    def _pick(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return copy.deepcopy(options[int(self._random.random() * len(options))])

    def _count(self, most: int) -> int:
        return int(self._random.random() * (most + 1))

    def _value(self) -> Any:
        return self._pick(self.VALUES)

    def _object(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Each field (a maker of a well-typed value) set half of the time, and then of
        another type one time in seven."""
        made: dict[str, Any] = {}
        for key, make in fields.items():
            if self._chance(0.5):
                made[key] = make() if self._chance(6 / 7) else self._value()
        return made

    def _list(self, make: Any, most: int) -> list[Any]:
        return [make() if self._chance(0.9) else self._value() for _ in range(self._count(most))]

    def _security_context(self, pod: bool) -> dict[str, Any]:
        def typed(*types: Any) -> Any:
            return lambda: self._object({"type": lambda: self._pick(types), "x": self._value})

        fields: dict[str, Any] = {
            "privileged": self._value,
            "allowPrivilegeEscalation": self._value,
            "runAsNonRoot": self._value,
            "runAsUser": self._value,
            "procMount": self._value,
            "capabilities": lambda: self._object(
                {
                    "add": lambda: self._list(self._value, 3),
                    "drop": lambda: self._list(lambda: self._pick(("ALL", "NET_RAW")), 2),
                }
            ),
            "seccompProfile": typed("RuntimeDefault", "Localhost", "Unconfined", None, 3),
            "appArmorProfile": typed("RuntimeDefault", "Localhost", "Unconfined", None),
            "seLinuxOptions": lambda: self._object(
                {
                    "type": lambda: self._pick(("container_t", "spc_t", "", None)),
                    "user": self._value,
                    "role": self._value,
                }
            ),
            "windowsOptions": lambda: self._object({"hostProcess": self._value}),
        }
        if pod:
            fields["sysctls"] = lambda: self._list(lambda: self._object({"name": self._value}), 3)
        return self._object(fields)

    def _handler(self) -> dict[str, Any]:
        return self._object(
            {
                "httpGet": lambda: self._object({"host": self._value}),
                "tcpSocket": lambda: self._object({"host": self._value}),
            }
        )

    def _container(self) -> dict[str, Any]:
        return self._object(
            {
                "name": lambda: self._pick(("app", "init", 'we"ird', "a/b", 5)),
                "securityContext": lambda: self._security_context(pod=False),
                "ports": lambda: self._list(lambda: self._object({"hostPort": self._value}), 2),
                "livenessProbe": self._handler,
                "startupProbe": self._handler,
                "lifecycle": lambda: self._object(
                    {"postStart": self._handler, "preStop": self._handler}
                ),
            }
        )

    def _volume(self) -> dict[str, Any]:
        volume: dict[str, Any] = {"name": self._pick(("v", 'q"', 3))}
        for _ in range(self._count(2)):
            source = self._pick(("configMap", "emptyDir", "hostPath", "nfs", "someNew", "name"))
            volume[source] = self._pick(({}, None, 1))
        return volume

    def pod(self) -> dict[str, Any]:
        spec = self._object(
            {
                "hostNetwork": self._value,
                "hostPID": self._value,
                "hostUsers": self._value,
                "os": lambda: self._object({"name": lambda: self._pick(("windows", "linux"))}),
                "securityContext": lambda: self._security_context(pod=True),
                "volumes": lambda: self._list(self._volume, 3),
                "initContainers": lambda: self._list(self._container, 2),
                "ephemeralContainers": lambda: self._list(self._container, 1),
            }
        )
        spec["containers"] = self._list(self._container, 2)
        annotations = {
            self._pick(
                (
                    "container.apparmor.security.beta.kubernetes.io/app",
                    "seccomp.security.alpha.kubernetes.io/pod",
                    "container.seccomp.security.alpha.kubernetes.io/app",
                    "other",
                )
            ): self._value()
            for _ in range(self._count(2))
        }
        return {"kind": "Pod", "metadata": {"annotations": annotations}, "spec": spec}


RANDOM_PODS = 1500


def random_cases() -> Iterator[Case]:
    pods = RandomPods(seed=1)
    for number in range(RANDOM_PODS):
        yield from _both_ways(f"random/{number}", pods.pod(), VERSIONS_MUTATION)


Outcome = Any
"""``[[check, level, message, pointer, container, fixable], ...]`` or ``{"error": ...}``."""

Runs = dict[str, list[tuple[str, Outcome]]]


def outcome(obj: Any, level: str, version: str) -> Outcome:
    try:
        if isinstance(obj, PodSpec):
            found = evaluate_pod(obj.spec, obj.metadata, level=level, version=version)
        else:
            found = evaluate(obj, level=level, version=version)
    except HardenerError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return [[v.check, v.level, v.message, v.pointer, v.container, v.fixable] for v in found]


def runs(obj: Any, versions: tuple[str, ...]) -> Runs:
    """Per level, ``(first version, outcome)`` for each run of versions with equal outcomes."""
    result: Runs = {}
    for level in LEVELS:
        spans: list[tuple[str, Outcome]] = []
        for version in versions:
            found = outcome(obj, level, version)
            if not spans or spans[-1][1] != found:
                spans.append((version, found))
        result[level] = spans
    return result


def digest(value: Any) -> str:
    """A short hash of a JSON value (48 bits: a collision would take millions of cases)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


GROUPS = {"corpus": corpus_cases, "mutation": mutation_cases, "random": random_cases}
"""The cases recorded as digests only, in the order their functions make them."""


def group_record(cases: Iterator[Case]) -> dict[str, Any]:
    """The digest of each case's runs, in order, and one of the keys (the cases made)."""
    keys: list[str] = []
    digests: list[str] = []
    for key, obj, versions in cases:
        keys.append(key)
        digests.append(digest(runs(obj, versions)))
    return {"keys": digest(keys), "digests": digests}


class Table:
    """Violations and outcomes stored once each, referred to by index (keeps the file small)."""

    def __init__(self) -> None:
        self.violations: list[list[Any]] = []
        self.outcomes: list[Any] = []
        self._violation_ids: dict[str, int] = {}
        self._outcome_ids: dict[str, int] = {}

    def _intern(self, value: Any, ids: dict[str, int], store: list[Any]) -> int:
        key = json.dumps(value)
        if key not in ids:
            ids[key] = len(store)
            store.append(value)
        return ids[key]

    def encode(self, found: Outcome) -> int:
        if isinstance(found, dict):
            return self._intern(found, self._outcome_ids, self.outcomes)
        ids = [self._intern(v, self._violation_ids, self.violations) for v in found]
        return self._intern(ids, self._outcome_ids, self.outcomes)


def decode(recording: dict[str, Any], stored: dict[str, list[list[Any]]]) -> Runs:
    """The runs of one fully recorded case."""
    result: Runs = {}
    for level, spans in stored.items():
        result[level] = []
        for version, outcome_id in spans:
            found = recording["outcomes"][outcome_id]
            if isinstance(found, list):
                found = [recording["violations"][i] for i in found]
            result[level].append((version, found))
    return result


def record() -> dict[str, Any]:
    """The fixtures in full (a change shows in the file's diff); the corpus documents, the
    mutations and the random pods, which are many more and larger, as digests."""
    table = Table()
    cases: dict[str, dict[str, list[list[Any]]]] = {}
    for key, obj, versions in fixture_cases():
        cases[key] = {
            level: [[version, table.encode(found)] for version, found in spans]
            for level, spans in runs(obj, versions).items()
        }
    return {
        "violations": table.violations,
        "outcomes": table.outcomes,
        "cases": cases,
        **{name: group_record(cases_of()) for name, cases_of in GROUPS.items()},
    }


def _lines(name: str, entries: list[str], opening: str, closing: str) -> str:
    body = ",\n".join(f"  {entry}" for entry in entries)
    return f' "{name}": {opening}\n{body}\n {closing}'


def _members(mapping: dict[str, Any]) -> list[str]:
    return [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in mapping.items()]


def main() -> None:
    if shared("fixtures/pss") is None or shared("corpus") is None:
        raise SystemExit(f"record with {SHARED.resolve()} present: it holds most of the cases")
    data = record()
    RECORDED.parent.mkdir(exist_ok=True)
    # One entry a line: a change of behaviour shows as a readable diff.
    parts = [
        _lines("violations", [json.dumps(v) for v in data["violations"]], "[", "]"),
        _lines("outcomes", [json.dumps(o) for o in data["outcomes"]], "[", "]"),
        _lines("cases", _members(data["cases"]), "{", "}"),
    ]
    for name in GROUPS:
        group = data[name]
        digests = _lines("digests", [json.dumps(d) for d in group["digests"]], "[", "]")
        parts.append(f' "{name}": {{"keys": {json.dumps(group["keys"])},\n{digests}}}')
    RECORDED.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")
    print(f"{RECORDED}: {len(data['cases'])} fixtures in full, then as digests:", end="")
    print(",".join(f" {len(data[name]['digests'])} {name}" for name in GROUPS))


if __name__ == "__main__":
    main()
