"""What a Pod Security Standards check is, and the decorator that registers one.

A check is one function that reads a ``PodView`` and yields ``Problem`` records, registered
with its PSA id, level, first policy version (``since``), title, whether hardener's rules
fill in what it asks for (``fixable``), and the baseline checks it replaces at the
restricted level (``replaces``). Each level's module holds one ``CheckList``; the order of
the decorated functions in it is the order the checks run and report in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from hardener.pss._version import Version
from hardener.pss._view import PodView, Problem
from hardener.records import picklable

__all__ = ["Check", "CheckFunction", "CheckList"]

CheckFunction = Callable[[PodView], Iterator[Problem]]


@dataclass(frozen=True)
class Check:
    """One PSA check: ``since`` is the first policy version that runs it; ``fixable`` is true
    for the checks that hardener's rules satisfy by filling in an absent field; ``replaces``
    names the baseline checks that this restricted check replaces at the restricted level
    (it covers and tightens them)."""

    id: str
    level: str
    since: Version
    title: str
    run: CheckFunction = field(repr=False, compare=False)
    fixable: bool = False
    replaces: tuple[str, ...] = ()


class CheckList:
    """The checks of one level, in the order they are declared."""

    def __init__(self, level: str) -> None:
        self.level = level
        self.checks: list[Check] = []

    def __call__(
        self,
        id: str,
        *,
        since: Version,
        title: str,
        fixable: bool = False,
        replaces: tuple[str, ...] = (),
    ) -> Callable[[CheckFunction], CheckFunction]:
        """Register the decorated function as the check ``id``; the function is unchanged."""

        def register(run: CheckFunction) -> CheckFunction:
            if any(c.id == id for c in self.checks):
                raise ValueError(f"PSS check {id!r} is registered twice")
            self.checks.append(
                Check(
                    id=id,
                    level=self.level,
                    since=since,
                    title=title,
                    run=run,
                    fixable=fixable,
                    replaces=replaces,
                )
            )
            return run

        return register


picklable(Check)
