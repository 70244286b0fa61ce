"""Recorded results of ``hardener.pss.evaluate``: the exact violations (order, messages,
pointers, containers, fixable flags) or the exact error, for a large set of inputs.

The inputs (*cases*):

- every distinct Pod Security Admission fixture (``../shared/fixtures/pss`` when it exists,
  always the copy in ``tests/data/pss``), keyed by the hash of the file;
- every document of ``../shared/corpus`` (when it exists) that has a kind;
- mutations of the seed pods below: each value the checks can reach is deleted, or replaced
  by values of every JSON type, one at a time (bad input must keep its documented result).

Each case is evaluated at both levels and at the policy versions around every change of
behaviour. ``tests/pss/data/recorded.json`` holds what the evaluator returned when it was
recorded; ``test_recorded.py`` asserts that it still returns exactly that. Record again, only
on purpose (a deliberate change of a message, a new check), with::

    python -m tests.pss.recorded
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hardener.model import HardenerError
from hardener.pss import LEVELS, evaluate

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
FIXTURE_ROOTS = [root for root in (SHARED / "fixtures" / "pss", REPO / "tests" / "data" / "pss")]
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
        yield f"mutation/{seed_name}", seed, VERSIONS_MUTATION
        for path in _paths(seed):
            if not path or path[0] not in ("spec", "metadata"):
                continue
            where = "/".join(str(token) for token in path)
            yield (
                f"mutation/{seed_name}/{where} deleted",
                _mutated(seed, path, _DELETED),
                VERSIONS_MUTATION,
            )
            for value in _REPLACEMENTS:
                yield (
                    f"mutation/{seed_name}/{where}={json.dumps(value)}",
                    _mutated(seed, path, value),
                    VERSIONS_MUTATION,
                )


Outcome = Any
"""``[[check, level, message, pointer, container, fixable], ...]`` or ``{"error": ...}``."""

Runs = dict[str, list[tuple[str, Outcome]]]


def outcome(obj: Any, level: str, version: str) -> Outcome:
    try:
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


def digest(result: Runs) -> str:
    text = json.dumps(result, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    """The fixtures in full (a change shows in the file's diff); the corpus documents and the
    mutations, which are many more and larger, as a digest of their runs."""
    table = Table()
    cases: dict[str, dict[str, list[list[Any]]]] = {}
    for key, obj, versions in fixture_cases():
        cases[key] = {
            level: [[version, table.encode(found)] for version, found in spans]
            for level, spans in runs(obj, versions).items()
        }
    digests = {
        key: digest(runs(obj, versions))
        for cases_of in (corpus_cases, mutation_cases)
        for key, obj, versions in cases_of()
    }
    return {
        "violations": table.violations,
        "outcomes": table.outcomes,
        "cases": cases,
        "digests": digests,
    }


def _lines(name: str, entries: list[str], opening: str, closing: str) -> str:
    body = ",\n".join(f"  {entry}" for entry in entries)
    return f' "{name}": {opening}\n{body}\n {closing}'


def _members(mapping: dict[str, Any]) -> list[str]:
    return [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in mapping.items()]


def main() -> None:
    if not (SHARED / "fixtures" / "pss").is_dir() or not CORPUS.is_dir():
        raise SystemExit(f"record with {SHARED.resolve()} present: it holds most of the cases")
    data = record()
    RECORDED.parent.mkdir(exist_ok=True)
    # One entry a line: a change of behaviour shows as a readable diff.
    parts = [
        _lines("violations", [json.dumps(v) for v in data["violations"]], "[", "]"),
        _lines("outcomes", [json.dumps(o) for o in data["outcomes"]], "[", "]"),
        _lines("cases", _members(data["cases"]), "{", "}"),
        _lines("digests", _members(data["digests"]), "{", "}"),
    ]
    RECORDED.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")
    print(f"{RECORDED}: {len(data['cases'])} cases, {len(data['digests'])} digests")


if __name__ == "__main__":
    main()
