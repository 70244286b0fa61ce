"""``--format json``: ``hardener.results.to_json`` plus the command, a summary and the run's images.

The object is described by ``hardener/data/hardener-report.schema.json``; fields may be added in
later versions, never renamed or removed.
"""

from __future__ import annotations

import json
from typing import Any

from hardener.report._images import ImageReport
from hardener.report._summary import summarize
from hardener.results import FileResult, to_json

__all__ = ["render_json", "report_object"]


def report_object(
    files: list[FileResult], *, command: str, version: str, images: ImageReport | None = None
) -> dict[str, Any]:
    report = to_json(files, version)
    report["command"] = command
    report["summary"] = summarize(files).to_json()
    if images is not None:
        report["images"] = images.to_json()
    return report


def render_json(
    files: list[FileResult], *, command: str, version: str, images: ImageReport | None = None
) -> str:
    report = report_object(files, command=command, version=version, images=images)
    return json.dumps(report, indent=2) + "\n"
