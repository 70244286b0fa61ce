"""A "billion laughs" document is refused with a clear error, fast, and never rewritten."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hardener.cli import main
from hardener.fixer.fastload import load_fast
from hardener.fixer.run import FixOptions, check_text, fix_text

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
    # check reads with the same budget.
    assert main(["check", str(path)]) == 2


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "round-trip"])
def test_both_readers_refuse_the_same_bomb_with_the_same_error(fast_path: bool) -> None:
    # The fast reader had no budget: the bomb was "unchanged" through it, and a document that
    # needs no change (here the second Pod is already hardened) took minutes in the engine.
    hardened = LAUGHS.replace(
        "spec:\n  containers:",
        "spec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n"
        "  containers:",
    )
    started = time.monotonic()
    result = fix_text(hardened, "laughs.yaml", FixOptions(write=False, fast_path=fast_path))
    assert time.monotonic() - started < 5
    assert result.error is not None and "excessive aliasing" in result.error
    assert (result.error_line, result.error_column) == (6, 1)
    slow = fix_text(hardened, "laughs.yaml", FixOptions(write=False, fast_path=False))
    assert result.error == slow.error
    checked = check_text(hardened, "laughs.yaml")
    assert checked.error == slow.error


def test_the_budget_counts_shared_values_once_per_use() -> None:
    # Within the budget, aliases are fine in both readers.
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"
    assert [d.value for d in load_fast(text)] == [{"a": [1, 2, 3], "b": [[1, 2, 3]] * 3}]
