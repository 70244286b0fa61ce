"""Run the checks of a level and version over a pod spec, or over every pod site of an object."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from hardener.locate import pod_sites
from hardener.pointer import join, split
from hardener.pss._registry import active_checks, resolve_version
from hardener.pss._version import Version
from hardener.pss._view import JsonPath, PodView
from hardener.pss.checks import CheckFunction
from hardener.records import picklable
from hardener.switch import let_others_run

__all__ = ["Violation", "evaluate", "evaluate_pod"]


@dataclass(unsafe_hash=True)
class Violation:
    """One reason a pod does not meet a level.

    ``pointer`` is the RFC 6901 pointer of the offending field, or of the container (or pod
    spec) when the problem is a field that is absent. ``fixable`` is true only when the
    violation is an absent field that hardener fills in; an explicit bad value is never
    fixable.
    """

    check: str
    level: str
    message: str
    pointer: str
    container: str | None
    fixable: bool


Run = tuple[str, str, CheckFunction]
"""(check id, level, function) of one check to run."""


@functools.lru_cache(maxsize=256)
def _cached_check_runs(level: Any, version: Any) -> tuple[Version, tuple[Run, ...]]:
    return _check_runs_of(level, version)


def _check_runs_of(level: Any, version: Any) -> tuple[Version, tuple[Run, ...]]:
    checks = active_checks(level, version)
    return resolve_version(version), tuple((c.id, c.level, c.run) for c in checks)


def _check_runs(level: Any, version: Any) -> tuple[Version, tuple[Run, ...]]:
    """The resolved version and the checks to run: the same few for every pod, worked out once.

    Raises ``ValueError`` for an unknown level or a malformed version.
    """
    if not isinstance(version, str) and version is not None:
        # Checked before the cache, where (True, 25) would find the runs of (1, 25).
        resolve_version(version)
    try:
        return _cached_check_runs(level, version)
    except TypeError:
        # An unhashable level or version cannot be a cache key: it fails the way it always
        # did, from the registry.
        return _check_runs_of(level, version)


@functools.lru_cache(maxsize=1024)
def _cached_tokens(pointer: str) -> JsonPath:
    return tuple(split(pointer))


def _tokens(pointer: str) -> JsonPath:
    """The tokens of a pointer the caller passes (the same few each time), split once."""
    try:
        return _cached_tokens(pointer)
    except TypeError:
        return tuple(split(pointer))  # not a string: fails in split, as it always did


def _violations(runs: tuple[Run, ...], pod: PodView, into: list[Violation]) -> None:
    for check_id, check_level, run in runs:
        let_others_run()
        for message, path, container, fixable in run(pod):
            into.append(
                Violation(
                    check=check_id,
                    level=check_level,
                    message=message,
                    pointer=join(path),
                    container=container,
                    fixable=fixable,
                )
            )


def evaluate_pod(
    spec: Any,
    metadata: Any,
    *,
    level: Any = "restricted",
    version: Any = "latest",
    spec_pointer: str = "/spec",
    meta_pointer: str = "/metadata",
) -> list[Violation]:
    """The violations of one pod spec (with its pod metadata) against ``level`` at ``version``.

    Checks run in registry order; within a check, violations come in document order (pod
    first, then init, regular and ephemeral containers). Raises ``ValueError`` for an unknown
    level or a malformed version, never for the shape of the pod.

    ``spec`` (a dict), ``metadata`` (a dict), ``level`` and ``version`` (strings) are typed
    ``Any`` because they come from outside and are checked here, with the errors above:
    compiled code would otherwise refuse a value of the wrong type with a ``TypeError``.
    """
    resolved, runs = _check_runs(level, version)
    pod = PodView.build(spec, metadata, _tokens(spec_pointer), _tokens(meta_pointer), resolved)
    violations: list[Violation] = []
    _violations(runs, pod, violations)
    return violations


def evaluate(obj: Any, *, level: Any = "restricted", version: Any = "latest") -> list[Violation]:
    """The violations of every pod spec in a Kubernetes object (Pod, controller, List...).

    Pointers are relative to ``obj``. Raises ``hardener.model.InvalidObjectError`` (from
    ``pod_sites``) when a field on the way to a pod spec has the wrong type.
    """
    sites = pod_sites(obj)
    if not sites:
        return []  # nothing to check: the level and version are not even looked at
    resolved, runs = _check_runs(level, version)
    violations: list[Violation] = []
    for site in sites:
        _violations(runs, PodView.of_site(site, resolved), violations)
    return violations


picklable(Violation)
