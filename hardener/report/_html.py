"""``--format html``: one self-contained page of a ``Posture`` (``fix``, ``check``, ``audit``).

The page carries its CSS and SVG inline, fetches nothing (its Content-Security-Policy forbids
every fetch and script) and opens from disk. Every value from a manifest or a cluster reaches
the page through Jinja2 with autoescaping on: a label such as ``</script><img onerror=...>``
is shown as text. Colours always come with a text label, for readers who cannot tell them apart.
The template is ``hardener/data/report.html.j2``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import jinja2

from hardener.report._posture import Posture, WorkloadPosture

__all__ = ["render_html"]

_STATE_LABELS = {
    "clean": "none",
    "fixed": "fixed",
    "partly": "fewer",
    "left": "still violated",
}


@dataclass(frozen=True)
class _Cell:
    check: str
    now: int
    after: int

    @property
    def state(self) -> str:
        if self.after:
            return "partly" if self.after < self.now else "left"
        return "fixed" if self.now else "clean"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self.state]


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("hardener", "data"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return environment.get_template("report.html.j2")


def _verdict(workload: WorkloadPosture, violations: list[str]) -> str:
    if workload.error:
        return "error"
    if workload.exempt:
        return "exempt"
    if not violations:
        return "passes"
    count = len(violations)
    return f"{count} violation" + ("" if count == 1 else "s")


def _patch_lines(workload: WorkloadPosture) -> list[tuple[str, str]]:
    lines = workload.patch.rstrip("\n").split("\n")
    if workload.patch_format != "diff":
        return [("", line) for line in lines]
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            out.append(("", line))
        elif line.startswith("+"):
            out.append(("add", line))
        elif line.startswith("-"):
            out.append(("del", line))
        elif line.startswith("@@"):
            out.append(("hunk", line))
        else:
            out.append(("", line))
    return out


def _common_folder(folders: list[str]) -> str:
    """The folder all ``folders`` share, with its trailing slash (rows show the rest)."""
    if len(folders) < 2:
        return ""
    try:
        common = os.path.commonpath(folders)
    except ValueError:  # absolute and relative paths together share nothing
        return ""
    return common.rstrip("/") + "/" if common and common != "." else ""


def render_html(posture: Posture, *, version: str) -> str:
    """The page of ``posture``, ending with a newline."""
    workloads = posture.workloads
    figures = {
        "workloads": len(workloads),
        "pass_now": sum(1 for w in workloads if w.passes_now),
        "pass_after": sum(1 for w in workloads if w.passes_after),
        "need_person": sum(1 for w in workloads if w.needs_person),
        "changes": sum(len(w.changes) for w in workloads),
    }
    checks = posture.checks
    groups = posture.groups
    prefix = _common_folder(groups) if posture.group_label == "Folder" else ""

    def short(group: str) -> str:
        return group[len(prefix) :] or "."

    heat = [
        {
            "label": short(group),
            "cells": [_Cell(c, *posture.cell(group, c)) for c in checks],
        }
        for group in groups
    ]
    bars = [
        ("As they are", figures["pass_now"], 16),
        ("After hardening", figures["pass_after"], 56),
    ]
    return _template().render(
        p=posture,
        version=version,
        figures=figures,
        checks=checks,
        heat=heat,
        prefix=prefix,
        short=short,
        bars=bars,
        kubelet=posture.kubelet_findings,
        verdict=_verdict,
        patch_lines=_patch_lines,
    )
