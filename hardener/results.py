"""What a run over files produced: per file, per document, the changes and the findings.

These records are the one shape that ``check``, ``fix`` and the reports share; the JSON output
(``--format json``) is ``to_json`` of a list of ``FileResult``. The minimal shape is a contract
that tools parse: fields may be added, never renamed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DocumentResult",
    "FileResult",
    "LocatedChange",
    "LocatedFinding",
    "to_json",
]


@dataclass(frozen=True)
class LocatedChange:
    """A change, placed in the original file (1-based line and column)."""

    rule: str
    pointer: str
    line: int
    column: int
    message: str
    before: Any = None
    after: Any = None
    container: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LocatedFinding:
    """Something still wrong, placed in the original file (1-based line and column)."""

    check_or_rule: str
    """The Pod Security Standards check id, or the rule id for a rule's own finding (the JSON
    report's ``check`` key)."""
    level: str | None
    container: str | None
    line: int
    column: int
    message: str
    fixable: bool
    pointer: str = ""
    rule: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self, dict_factory=_finding_keys)


def _finding_keys(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """A finding's fields under their JSON keys: ``check_or_rule`` is ``check``."""
    return {("check" if key == "check_or_rule" else key): value for key, value in items}


@dataclass
class DocumentResult:
    """One document of a file. ``holds_pods`` says whether it has a pod spec (a workload), or
    ``None`` when the producer did not say; it is not part of the JSON output."""

    index: int
    kind: str
    namespace: str | None
    name: str | None
    line: int = 1
    changes: list[LocatedChange] = field(default_factory=list)
    findings: list[LocatedFinding] = field(default_factory=list)
    skipped: str | None = None
    holds_pods: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "line": self.line,
            "skipped": self.skipped,
            "changes": [c.to_json() for c in self.changes],
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass
class FileResult:
    """One input file. ``original`` and ``fixed`` are the texts (``fixed`` is ``None`` when the
    file needs no change or could not be processed); ``error`` says why a file was not processed,
    ``skipped`` why it was deliberately left alone (a Helm template, not Kubernetes YAML, ...).
    ``error_line`` and ``error_column`` (1-based) place the error in the file when it has a
    place (invalid YAML, a field of the wrong type), else they are ``None``."""

    path: str
    error: str | None = None
    skipped: str | None = None
    documents: list[DocumentResult] = field(default_factory=list)
    original: str | None = None
    fixed: str | None = None
    error_line: int | None = None
    error_column: int | None = None

    @property
    def changed(self) -> bool:
        return self.fixed is not None and self.fixed != self.original

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "error": self.error,
            "error_line": self.error_line,
            "error_column": self.error_column,
            "skipped": self.skipped,
            "changed": self.changed,
            "documents": [d.to_json() for d in self.documents],
        }


def to_json(files: list[FileResult], version: str) -> dict[str, Any]:
    return {"version": version, "files": [f.to_json() for f in files]}
