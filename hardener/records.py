"""Frozen records that cross a process boundary: the one way they are pickled.

``hardener fix -j`` sends the config (its rules, image policy, ...) to worker processes and
gets plans back. Pickle rebuilds an object by setting its attributes one by one, which a
frozen dataclass refuses once compiled (docs/build.md): its fields are set by ``__init__``
only. ``picklable`` registers, for each class, a reduction that calls the constructor with
the fields instead, the same in both builds.
"""

from __future__ import annotations

import copyreg
import dataclasses
from typing import Any

__all__ = ["picklable"]


def picklable(*classes: type) -> None:
    """Pickle instances of these dataclasses through their constructor."""
    for cls in classes:
        copyreg.pickle(cls, _reduce)


def _reduce(record: Any) -> tuple[Any, tuple[type, dict[str, Any]]]:
    values = {item.name: getattr(record, item.name) for item in dataclasses.fields(record)}
    return _rebuild, (type(record), values)


def _rebuild(cls: type, values: dict[str, Any]) -> Any:
    return cls(**values)
