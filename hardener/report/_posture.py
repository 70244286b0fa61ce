"""The posture of a set of workloads: what a page report shows, whichever command produced it.

``fix`` and ``check`` give ``FileResult`` records and ``audit`` an ``AuditReport``; both are
turned into one ``Posture`` (``posture_from_files`` here, ``posture_from_audit`` in ``_audit``),
and a page renderer takes only a ``Posture``. Per workload it holds the changes, the findings,
the Pod Security Standards checks it violates now and after hardening (one entry per
violation), and the diff or JSONPatch that hardens it. A workload is an object that holds a pod
spec: a Service or a ConfigMap in the same files is not one.

For file runs, "now" and "after" come from what the run computed:

- ``check``: every finding violates now; the ones hardener cannot fix still violate after.
- ``fix`` and ``check --after-fix``: the findings naming a PSS check violate after hardening;
  now adds, per container, the check each change's rule answers (a rule only changes a field
  whose absence or value violates that check at the restricted level).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hardener.pss import CHECKS
from hardener.report._diff import unified_diff
from hardener.results import FileResult
from hardener.rules import RULES

__all__ = [
    "KUBELET_PREFIX",
    "ChangeLine",
    "FindingLine",
    "Posture",
    "WorkloadPosture",
    "posture_from_files",
]

KUBELET_PREFIX = "kubelet-"
"""Findings whose check or rule starts with this are what the kubelet would refuse at start."""

_PSS_ORDER = {check.id: index for index, check in enumerate(CHECKS)}
_RULE_CHECK = {rule.id: rule.check for rule in RULES if rule.check}


@dataclass(frozen=True)
class ChangeLine:
    rule: str
    pointer: str
    message: str
    where: str = ""


@dataclass(frozen=True)
class FindingLine:
    check_or_rule: str
    """The Pod Security Standards check id, or the rule id for a rule's own finding."""
    message: str
    fixable: bool
    container: str | None = None
    level: str | None = None
    where: str = ""

    @property
    def kubelet(self) -> bool:
        return self.check_or_rule.startswith(KUBELET_PREFIX)


@dataclass
class WorkloadPosture:
    """One workload. ``before`` is ``None`` when the run could not know it; ``patch`` is the
    diff (``patch_format`` ``diff``) or the RFC 6902 operations (``jsonpatch``), or a note."""

    group: str
    kind: str
    name: str
    where: str
    changes: list[ChangeLine] = field(default_factory=list)
    findings: list[FindingLine] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    patch: str = ""
    patch_format: str = "diff"
    error: str | None = None
    exempt: str | None = None

    @property
    def passes_now(self) -> bool:
        return not self.error and not self.before

    @property
    def passes_after(self) -> bool:
        return not self.error and not self.after

    @property
    def needs_person(self) -> bool:
        return bool(self.error or self.after or any(not f.fixable for f in self.findings))


@dataclass
class Posture:
    """What one run saw. ``group_label`` names the grouping (``Namespace`` or ``Folder``)."""

    command: str
    level: str
    group_label: str
    context: list[str] = field(default_factory=list)
    workloads: list[WorkloadPosture] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[str]:
        """The PSS checks violated anywhere, now or after, in registry order."""
        seen = {c for w in self.workloads for c in (*w.before, *w.after)}
        return sorted(seen, key=lambda c: (_PSS_ORDER.get(c, len(_PSS_ORDER)), c))

    @property
    def groups(self) -> list[str]:
        return sorted({w.group for w in self.workloads})

    def cell(self, group: str, check: str) -> tuple[int, int]:
        """Violations of ``check`` in ``group``: now, after hardening."""
        now = after = 0
        for w in self.workloads:
            if w.group == group:
                now += w.before.count(check)
                after += w.after.count(check)
        return now, after

    @property
    def kubelet_findings(self) -> list[tuple[WorkloadPosture, FindingLine]]:
        return [(w, f) for w in self.workloads for f in w.findings if f.kubelet]


def _folder(path: str) -> str:
    folder = os.path.dirname(path)
    return folder or "."


def posture_from_files(
    files: list[FileResult], *, command: str, level: str = "restricted", after_fix: bool = False
) -> Posture:
    """The posture of a ``fix`` or ``check`` run. ``after_fix`` is true when the findings are
    what remains after hardening (``fix``, ``check --after-fix``)."""
    posture = Posture(command=command, level=level, group_label="Folder")
    remaining = after_fix or command == "fix"
    for file in files:
        if file.error:
            where = file.path if file.error_line is None else f"{file.path}:{file.error_line}"
            posture.errors.append(f"{where}: {file.error}")
            continue
        if file.skipped:
            posture.skipped.append(f"{file.path}: {file.skipped}")
        diff = ""
        if file.changed and file.original is not None and file.fixed is not None:
            diff = unified_diff(file.path, file.original, file.fixed)
        diff_shown = False
        for document in file.documents:
            if document.skipped or not document.kind or document.holds_pods is False:
                continue
            name = document.name or "(unnamed)"
            if document.namespace:
                name = f"{document.namespace}/{name}"
            workload = WorkloadPosture(
                group=_folder(file.path),
                kind=document.kind,
                name=name,
                where=f"{file.path}:{document.line}",
                changes=[
                    ChangeLine(c.rule, c.pointer, c.message, f"{file.path}:{c.line}:{c.column}")
                    for c in document.changes
                ],
                findings=[
                    FindingLine(
                        f.check_or_rule,
                        f.message,
                        f.fixable,
                        f.container,
                        f.level,
                        f"{file.path}:{f.line}:{f.column}",
                    )
                    for f in document.findings
                ],
            )
            pss = [f for f in document.findings if f.check_or_rule in _PSS_ORDER]
            if remaining:
                workload.after = [f.check_or_rule for f in pss]
                stated = {(f.check_or_rule, f.container) for f in pss}
                for change in document.changes:
                    check = _RULE_CHECK.get(change.rule)
                    if check and (check, change.container) not in stated:
                        stated.add((check, change.container))
                        workload.before.append(check)
                workload.before.extend(workload.after)
            else:
                workload.before = [f.check_or_rule for f in pss]
                workload.after = [f.check_or_rule for f in pss if not f.fixable]
            if document.changes and diff and not diff_shown:
                workload.patch, diff_shown = diff, True
            elif document.changes and diff:
                workload.patch = f"The diff of {file.path} is shown with its first workload."
                workload.patch_format = "note"
            posture.workloads.append(workload)
    return posture
