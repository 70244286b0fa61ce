"""The reports on what the real fixer produced: SARIF fixes reproduce `hardener fix`'s output
byte for byte, and every location points at the right line of the original file."""

from __future__ import annotations

import json

import pytest

from hardener import __version__
from hardener.fixer.run import fix_text
from hardener.report import render
from tests._shared import needs
from tests.report.factory import apply_by_lines, apply_by_offset, corpus_paths, replacements_for

POD = (
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: web\n"
    "spec:\n"
    "  containers:\n"
    "  - name: web\n"
    "    image: nginx\n"
    "    securityContext:\n"
    "      privileged: false\n"
)


def _variants() -> list[tuple[str, str]]:
    crlf = POD.replace("\n", "\r\n")
    multi = "# first\n---\n" + POD + "---\n# between\n" + POD.replace("web", "api")
    return [
        ("plain.yaml", POD),
        ("crlf.yaml", crlf),
        ("bom.yaml", "\ufeff" + POD),
        ("multi.yaml", multi),
        ("no-final-newline.yaml", POD.rstrip("\n")),
    ]


def _check_sarif(path: str, text: str) -> None:
    result = fix_text(text, path)
    if result.fixed is None:
        return
    log = json.loads(render([result], "sarif", command="fix", version=__version__))
    replacements = replacements_for(log, path)
    assert apply_by_offset(text, replacements) == result.fixed
    assert apply_by_lines(text, replacements) == result.fixed


@pytest.mark.parametrize(
    ("name", "text"),
    _variants(),
    ids=lambda v: v if isinstance(v, str) and v.endswith(".yaml") else "",
)
def test_sarif_fixes_reproduce_the_fixer(name: str, text: str) -> None:
    _check_sarif(name, text)


@needs("corpus")  # the small files above run without it
def test_sarif_fixes_reproduce_the_fixer_on_the_corpus() -> None:
    for path in corpus_paths():
        _check_sarif(path.name, path.read_bytes().decode("utf-8"))


@pytest.mark.parametrize(("name", "text"), _variants()[:3])
def test_locations_point_at_the_original_lines(name: str, text: str) -> None:
    result = fix_text(text, name)
    (document,) = result.documents
    lines = {(c.rule, c.pointer): (c.line, c.column) for c in document.changes}
    # Container-level changes sit on the `securityContext:` key they complete (line 9);
    # pod-level ones on the pod spec's `spec:` key (line 5), where the new block goes.
    assert lines[
        ("no-privilege-escalation", "/spec/containers/0/securityContext/allowPrivilegeEscalation")
    ] == (9, 5)
    assert lines[("fs-group", "/spec/securityContext/fsGroup")] == (5, 1)
    github = render([result], "github", command="fix", version=__version__)
    assert f"file={name},line=9,col=5" in github
