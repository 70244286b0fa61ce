"""The two errors of the text-level fixer core.

``SourceError`` means the file cannot be read as Kubernetes reads it (invalid YAML, duplicate
keys, tabs in indentation...); ``EditError`` means an edit cannot be made surgically and safely,
so the file must be reported and left alone.
"""

from __future__ import annotations

from hardener.model import HardenerError

__all__ = ["EditError", "SourceError"]


class SourceError(HardenerError):
    """A manifest that cannot be parsed safely; ``str()`` is ``"line:column: message"``."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.line = line
        self.column = column
        self.message = message


class EditError(HardenerError):
    """Operations that cannot be applied to the text without risking the file's meaning."""
