"""The check registry, version parsing and which checks a level runs at a version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hardener.pss
from hardener.pss import (
    CHECKS,
    LATEST,
    LEVELS,
    OVERRIDES,
    Check,
    active_checks,
    parse_version,
    resolve_version,
)
from hardener.pss._view import PodView, Problem
from hardener.pss.checks import baseline, restricted
from hardener.pss.checks._register import CheckList

PSA_CHECK_IDS = {
    "hostNamespaces",
    "privileged",
    "capabilities_baseline",
    "hostPathVolumes",
    "hostPorts",
    "appArmorProfile",
    "seLinuxOptions",
    "procMount",
    "seccompProfile_baseline",
    "sysctls",
    "windowsHostProcess",
    "hostProbesAndHostLifecycle",
    "restrictedVolumes",
    "allowPrivilegeEscalation",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile_restricted",
    "capabilities_restricted",
    "procMount_restricted",
}


def _ids(level: str, version: str) -> set[str]:
    return {c.id for c in active_checks(level, version)}


def test_public_surface() -> None:
    assert set(hardener.pss.__all__) == {
        "ALL",
        "V1_35_USER_NAMESPACES",
        "NET_BIND_SERVICE",
        "drops_all",
        "loose_all",
        "restricted_may_add",
        "runtime_name",
        "CHECKS",
        "LATEST",
        "LEVELS",
        "OVERRIDES",
        "Check",
        "Version",
        "Violation",
        "active_checks",
        "canonical_version",
        "format_version",
        "evaluate",
        "evaluate_pod",
        "parse_version",
        "resolve_version",
    }
    assert LEVELS == ("baseline", "restricted")


def test_registry_is_the_psa_check_set() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids))
    assert set(ids) == PSA_CHECK_IDS
    assert all(c.level in LEVELS and c.title for c in CHECKS)
    assert all(isinstance(c, Check) for c in CHECKS)


def test_each_check_is_one_decorated_function_in_the_module_of_its_level() -> None:
    modules = {"baseline": baseline, "restricted": restricted}
    for c in CHECKS:
        module = modules[c.level]
        assert c.run.__module__ == module.__name__, c.id
        assert getattr(module, c.run.__name__) is c.run, c.id
    # The registry order is PSA's: baseline's checks, then restricted's, as declared.
    assert [c.id for c in CHECKS][:3] == ["hostNamespaces", "privileged", "capabilities_baseline"]
    assert [c.id for c in CHECKS][-2:] == ["capabilities_restricted", "procMount_restricted"]
    assert not hasattr(CHECKS[0], "until")


def test_overrides_come_from_the_checks_that_replace() -> None:
    assert dict(OVERRIDES) == {
        "restrictedVolumes": ("hostPathVolumes",),
        "seccompProfile_restricted": ("seccompProfile_baseline",),
        "capabilities_restricted": ("capabilities_baseline",),
        "procMount_restricted": ("procMount",),
    }


def test_a_check_registered_twice_is_an_error() -> None:
    checks = CheckList("baseline")

    @checks("x", since=(1, 0), title="X")
    def first(pod: PodView) -> Iterator[Problem]:
        return iter(())

    assert [c.run for c in checks.checks] == [first]
    with pytest.raises(ValueError, match="'x' is registered twice"):
        checks("x", since=(1, 0), title="X")(first)


def test_fixable_checks_are_the_ones_hardener_fills_in() -> None:
    assert {c.id for c in CHECKS if c.fixable} == {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    }


def test_overrides_replace_baseline_checks_with_restricted_ones() -> None:
    by_id = {c.id: c for c in CHECKS}
    for new, old in OVERRIDES.items():
        assert by_id[new].level == "restricted"
        assert all(by_id[o].level == "baseline" for o in old)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v1.25", (1, 25)), ("v1.0", (1, 0)), ("1.3", (1, 3)), (" v1.35 ", (1, 35)), ("latest", None)],
)
def test_parse_version(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "v2.0", "v1", "v1.x", "newest", "v1.2.3", "1.25-rc"])
def test_parse_version_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="policy version"):
        parse_version(text)


def test_latest_is_the_newest_change_and_newer_versions_clamp() -> None:
    assert LATEST == (1, 35)
    assert resolve_version("latest") == LATEST
    assert resolve_version("v1.99") == LATEST
    assert resolve_version("v1.12") == (1, 12)
    assert (
        _ids("restricted", "v1.99") == _ids("restricted", "latest") == _ids("restricted", "v1.35")
    )


def test_unknown_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="invalid level 'strict'"):
        active_checks("strict", "latest")


@pytest.mark.parametrize(
    ("check", "first"),
    [
        ("allowPrivilegeEscalation", "v1.8"),
        ("seccompProfile_restricted", "v1.19"),
        ("capabilities_restricted", "v1.22"),
        ("runAsUser", "v1.23"),
        ("hostProbesAndHostLifecycle", "v1.34"),
        ("procMount_restricted", "v1.35"),
    ],
)
def test_check_starts_at_its_version(check: str, first: str) -> None:
    minor = int(first.split(".")[1])
    assert check not in _ids("restricted", f"v1.{minor - 1}")
    assert check in _ids("restricted", first)
    assert check in _ids("restricted", "latest")


def test_baseline_runs_only_baseline_checks() -> None:
    assert _ids("baseline", "v1.0") == {c.id for c in CHECKS if c.level == "baseline"} - {
        "hostProbesAndHostLifecycle"
    }
    assert _ids("baseline", "latest") == {c.id for c in CHECKS if c.level == "baseline"}


@pytest.mark.parametrize(
    ("version", "replaced", "kept"),
    [
        ("v1.0", {"hostPathVolumes"}, {"seccompProfile_baseline", "capabilities_baseline"}),
        ("v1.18", {"hostPathVolumes"}, {"seccompProfile_baseline", "capabilities_baseline"}),
        ("v1.19", {"hostPathVolumes", "seccompProfile_baseline"}, {"capabilities_baseline"}),
        ("v1.22", {"seccompProfile_baseline", "capabilities_baseline"}, {"procMount"}),
        ("v1.35", {"capabilities_baseline", "procMount"}, {"sysctls", "privileged"}),
    ],
)
def test_restricted_replaces_overridden_baseline_checks(
    version: str, replaced: set[str], kept: set[str]
) -> None:
    running = _ids("restricted", version)
    assert not replaced & running
    assert kept <= running
