"""The Pod Security Standards checks, one decorated function each: ``baseline.py`` and
``restricted.py``. ``CHECKS`` is the registry: baseline's checks, then restricted's, each in
the order they are declared, which is the order they run and report in."""

from __future__ import annotations

from typing import Final

from hardener.pss.checks import baseline, restricted
from hardener.pss.checks._register import Check, CheckFunction

__all__ = ["CHECKS", "Check", "CheckFunction"]

CHECKS: Final[tuple[Check, ...]] = (*baseline.check.checks, *restricted.check.checks)
