"""``tests/bench/RESULTS.md``: each benchmark owns one section between its own markers and
rewrites only that one."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(start: str, end: str, section: str) -> None:
    """Put ``section`` in place of the part of RESULTS.md from ``start`` to ``end``, or append
    it when the markers are not there yet. ``section`` is wrapped in the markers unless it
    already begins with ``start``."""
    section = section.strip("\n")
    if not section.startswith(start):
        section = f"{start}\n{section}\n{end}"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text, encoding="utf-8")
