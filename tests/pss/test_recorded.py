"""The evaluator returns exactly what was recorded in ``tests/pss/data/recorded.json``: the same
violations in the same order, with the same messages, pointers, containers and fixable flags,
or the same error, for every fixture, corpus document, mutated and random pod (see
``recorded.py``).
"""

from __future__ import annotations

import json
from typing import Any

from tests._shared import needs

from . import recorded

RECORDING: dict[str, Any] = json.loads(recorded.RECORDED.read_text(encoding="utf-8"))
_SHOWN = 5


def _shown(key: str, got: recorded.Runs, want: recorded.Runs | None) -> str:
    lines = [f"{key}:"]
    for level, spans in got.items():
        if want is not None and want.get(level) == spans:
            continue
        lines.append(f"  {level} now: {json.dumps(spans)}")
        if want is not None:
            lines.append(f"  {level} was: {json.dumps(want.get(level))}")
    return "\n".join(lines)


def _normalised(result: recorded.Runs) -> recorded.Runs:
    # Recorded runs went through JSON: tuples became lists.
    loaded: recorded.Runs = json.loads(json.dumps(result))
    return loaded


def test_fixtures_give_the_recorded_violations() -> None:
    stored = RECORDING["cases"]
    seen: set[str] = set()
    wrong: list[str] = []
    for key, obj, versions in recorded.fixture_cases():
        seen.add(key)
        assert key in stored, f"{key}: a fixture that was not recorded"
        got = _normalised(recorded.runs(obj, versions))
        want = recorded.decode(RECORDING, stored[key])
        if got != _normalised(want):
            wrong.append(_shown(key, got, _normalised(want)))
    assert len(seen) >= 100, "the fixtures are missing"
    if recorded.FIXTURE_ROOTS[0].is_dir():
        assert seen == set(stored), "every recorded fixture is evaluated again"
    assert not wrong, f"{len(wrong)} fixtures differ:\n" + "\n".join(wrong[:_SHOWN])


def _check_group(name: str) -> int:
    stored = RECORDING[name]
    keys: list[str] = []
    wrong: list[str] = []
    for index, (key, obj, versions) in enumerate(recorded.GROUPS[name]()):
        keys.append(key)
        got = recorded.runs(obj, versions)
        if index >= len(stored["digests"]) or stored["digests"][index] != recorded.digest(got):
            wrong.append(_shown(key, _normalised(got), None))
    assert recorded.digest(keys) == stored["keys"], f"the {name} cases are not the recorded ones"
    assert not wrong, f"{len(wrong)} {name} cases differ:\n" + "\n".join(wrong[:_SHOWN])
    return len(keys)


@needs("corpus")
def test_corpus_gives_the_recorded_violations() -> None:
    assert _check_group("corpus") > 1000


def test_mutated_pods_give_the_recorded_violations_or_errors() -> None:
    assert _check_group("mutation") > 1000


def test_random_pods_give_the_recorded_violations_or_errors() -> None:
    assert _check_group("random") == 2 * recorded.RANDOM_PODS


def test_a_change_is_caught() -> None:
    """The comparison is not vacuous: the first recorded mutation is recomputed to the same
    digest, and one changed character in one message changes a digest."""
    key, obj, versions = next(recorded.mutation_cases())
    assert key == "mutation/good"
    assert recorded.group_record(iter([(key, obj, versions)]))["digests"] == [
        RECORDING["mutation"]["digests"][0]
    ]
    result = recorded.runs(recorded.seed_pods()["bad"], versions)
    before = recorded.digest(result)
    first = result["restricted"][0][1]
    assert isinstance(first, list) and len(first) > 10
    first[0][2] += "!"
    assert recorded.digest(result) != before
