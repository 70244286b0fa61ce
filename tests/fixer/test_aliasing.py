"""A "billion laughs" document is refused with a clear error, fast, and never rewritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardener.cli import main

LAUGHS = """\
apiVersion: v1
kind: Pod
metadata:
  name: lol
---
apiVersion: v1
kind: Pod
metadata:
  name: laughs
  labels:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
spec:
  containers:
  - name: a
    image: x
"""


def test_excessive_aliasing_is_an_error_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS, encoding="utf-8")
    before = path.stat()
    assert main(["fix", str(path)]) == 2
    err = capsys.readouterr().err
    assert "laughs.yaml:6:1: error:" in err and "excessive aliasing" in err
    after = path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    # check reads values without expanding them, so it still gives its verdict.
    assert main(["check", str(path)]) == 1
