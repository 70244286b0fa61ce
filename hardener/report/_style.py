"""The one palette and the one ``plural`` of the human-readable output of fix, check and
audit: terminal colours (ANSI SGR codes) and counted nouns."""

from __future__ import annotations

__all__ = ["BOLD", "CYAN", "GREEN", "MAGENTA", "RED", "RESET", "YELLOW", "paint", "plural"]

RED = "\x1b[31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
MAGENTA = "\x1b[35m"
CYAN = "\x1b[36m"
BOLD = "\x1b[1m"
RESET = "\x1b[0m"


def paint(color: bool, code: str, text: str) -> str:
    """``text`` in the colour ``code`` when ``color`` is on, else as it is."""
    return f"{code}{text}{RESET}" if color else text


def plural(count: int, word: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``; ``plural`` for the irregular ones (``2 policies``)."""
    return f"{count} {word if count == 1 else (plural or word + 's')}"
