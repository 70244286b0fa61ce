"""The terminal around the output of ``fix`` and ``check``: whether to colour it, and the
progress bar on stderr. The lines and summaries themselves come from ``hardener.report``."""

from __future__ import annotations

import os
import time
from typing import TextIO

from hardener.results import FileResult

__all__ = ["PROGRESS_MIN_FILES", "Progress", "use_color"]

PROGRESS_MIN_FILES = 25
"""Fewer files than this finish too fast for a progress bar to help."""


def use_color(stream: TextIO, choice: str = "auto") -> bool:
    """``always``/``never``, or (``auto``) colour on a terminal unless ``NO_COLOR`` is set."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    return bool(_isatty(stream)) and not os.environ.get("NO_COLOR")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A one-line progress bar on a terminal stream; silent anywhere else or for few files."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int, *, label: str = "files") -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.done = 0
        self.enabled = total >= PROGRESS_MIN_FILES and _isatty(stream)
        self._last = 0.0

    def advance(self, _result: FileResult | None = None) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if self.done < self.total and now - self._last < 0.1:
            return
        self._last = now
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {self.label}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (self.WIDTH + 2 * len(str(self.total)) + 20) + "\r")
            self.stream.flush()
