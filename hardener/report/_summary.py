"""Counts over a run, and the one sentence that states them; every format closes with it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hardener.report._style import plural
from hardener.results import FileResult

__all__ = ["Summary", "summarize"]


@dataclass(frozen=True)
class Summary:
    files: int
    changed_files: int
    changes: int
    findings: int
    unfixable: int
    errors: int
    skipped: int
    rules: Counter[str]
    checks: Counter[str]

    def sentence(self, command: str) -> str:
        parts = [
            f"{plural(self.changes, 'change')} in {self.changed_files} of "
            f"{plural(self.files, 'file')}",
            plural(self.findings, "finding")
            + (f" ({self.unfixable} need a manual fix)" if self.unfixable else ""),
        ]
        if self.errors:
            parts.append(plural(self.errors, "error"))
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        return f"hardener {command}: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "changed_files": self.changed_files,
            "changes": self.changes,
            "findings": self.findings,
            "unfixable_findings": self.unfixable,
            "errors": self.errors,
            "skipped": self.skipped,
            "rules": dict(sorted(self.rules.items())),
            "checks": dict(sorted(self.checks.items())),
        }


def summarize(files: list[FileResult]) -> Summary:
    rules: Counter[str] = Counter()
    checks: Counter[str] = Counter()
    changes = findings = unfixable = 0
    for file in files:
        for document in file.documents:
            changes += len(document.changes)
            findings += len(document.findings)
            rules.update(change.rule for change in document.changes)
            checks.update(finding.check_or_rule for finding in document.findings)
            unfixable += sum(1 for finding in document.findings if not finding.fixable)
    return Summary(
        files=len(files),
        changed_files=sum(1 for f in files if f.changed or any(d.changes for d in f.documents)),
        changes=changes,
        findings=findings,
        unfixable=unfixable,
        errors=sum(1 for f in files if f.error),
        skipped=sum(1 for f in files if f.skipped),
        rules=rules,
        checks=checks,
    )
