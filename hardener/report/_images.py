"""What a run learnt about its images, for the reports: counts by source, the unknown ones
with their reason, and each image's facts (the ``images`` object of the JSON reports).

The facts arrive as plain data (``{image string: ImageFacts}``); this module never looks
anything up.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hardener.image_facts import ImageFacts
from hardener.report._style import plural

__all__ = ["SOURCES", "ImageReport", "brief_reason", "facts_json"]

SOURCES = ("registry", "cache", "table", "unknown")
_SHOWN_UNKNOWN = 3
_REASON_LENGTH = 100


# A registry host found down is said once per host; the lookups after the first say "failed
# moments ago (why)" and are the same reason.
_REMEMBERED = re.compile(r"^registry (\S+) failed moments ago \((.*)\)$")
_SILENT = re.compile(r"^registry (\S+) did not answer within .*$")
_PARENTHESES = re.compile(r" \([^()]*\)")


def brief_reason(facts: ImageFacts) -> str:
    """The first clause of an unknown image's detail without its parentheses, one reason
    per unreachable registry host, cut to a line's share."""
    reason = (facts.detail or "no facts").split("; ")[0]
    remembered = _REMEMBERED.match(reason)
    if remembered is not None:
        host, why = remembered.groups()
        verb = "did not answer" if why == "timed out" else "cannot be reached"
        reason = f"registry {host} {verb}"
    reason = _SILENT.sub(r"registry \1 did not answer", reason)
    reason = _PARENTHESES.sub("", reason)
    if len(reason) > _REASON_LENGTH:
        reason = reason[: _REASON_LENGTH - 3].rstrip() + "..."
    return reason


def facts_json(image: str, facts: ImageFacts) -> dict[str, Any]:
    """One image's facts as the JSON reports and ``images inspect --format json`` give them."""
    return {
        "image": image,
        "reference": facts.reference,
        "source": facts.source,
        "user": facts.user,
        "uid": facts.uid,
        "gid": facts.gid,
        "volumes": list(facts.volumes),
        "writable_paths": list(facts.writable_paths),
        "digest": facts.digest,
        "detail": facts.detail,
    }


@dataclass(frozen=True)
class ImageReport:
    """The images of one run: their facts, whether lookups were off (and why), and how many
    requests reached a registry."""

    facts: Mapping[str, ImageFacts] = field(default_factory=dict)
    offline: str | None = None
    requests: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        found: Counter[str] = Counter(f.source for f in self.facts.values())
        return {source: found[source] for source in SOURCES}

    def to_json(self) -> dict[str, Any]:
        return {
            "lookup": "off" if self.offline else "on",
            "offline_reason": self.offline,
            "total": len(self.facts),
            "by_source": self.counts(),
            "requests": self.requests,
            "images": [facts_json(image, facts) for image, facts in self.facts.items()],
        }

    def lines(self) -> list[str]:
        """The summary lines (indented, for the end of a text report); none without images."""
        if not self.facts:
            return []
        counts = self.counts()
        parts = ", ".join(f"{n} {source}" for source, n in counts.items() if n)
        how = f"lookups off ({self.offline})" if self.offline else "looked up"
        lines = [f"  images: {plural(len(self.facts), 'image')}, {how}: {parts}"]
        unknown = [(image, f) for image, f in self.facts.items() if f.source == "unknown"]
        by_reason: dict[str, list[str]] = {}
        for image, facts in unknown:
            by_reason.setdefault(brief_reason(facts), []).append(image)
        for reason, images in list(by_reason.items())[:_SHOWN_UNKNOWN]:
            names = ", ".join(images[:2]) + (
                f" and {len(images) - 2} more" if len(images) > 2 else ""
            )
            lines.append(f"    unknown: {names}: {reason}")
        if len(by_reason) > _SHOWN_UNKNOWN:
            rest = sum(len(v) for v in list(by_reason.values())[_SHOWN_UNKNOWN:])
            lines.append(f"    unknown: {plural(rest, 'more image')} for other reasons")
        return lines
