"""Whatever a file holds, reading it fails as that file's error, never as a traceback.

A tag the constructors do not expect (``tty: !!bool maybe`` raised ``KeyError`` inside PyYAML)
escaped both readers, ended the run with exit 1 (which ``--check`` means as "would change")
and left the remaining files unprocessed.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardener.cli import main
from hardener.fixer.run import FixOptions, check_text, fix_text
from tests.fixer.pods import BARE_POD

POD = BARE_POD + "    tty: {value}\n"

KNOWN_TAGS = [
    f"!!{name}"
    for name in (
        "bool",
        "int",
        "float",
        "null",
        "str",
        "binary",
        "timestamp",
        "set",
        "omap",
        "pairs",
        "map",
        "seq",
        "merge",
        "value",
        "yaml",
        "python/name:os.system",
        "python/object:x",
    )
]


@pytest.mark.parametrize(
    "value",
    [
        "!!bool maybe",
        "!!int abc",
        "!!float x1",
        "!!merge x",
        "!!value x",
        "!!yaml x",
        "!!set x",
        "!!omap x",
    ],
)
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "round-trip"])
def test_a_value_its_tag_cannot_construct_is_an_error_at_its_place(
    value: str, fast_path: bool
) -> None:
    result = fix_text(POD.format(value=value), "pod.yaml", FixOptions(fast_path=fast_path))
    assert result.error is not None, result
    assert (result.error_line, result.error_column) == (9, 10)
    assert check_text(POD.format(value=value), "pod.yaml").error is not None


def test_the_other_files_are_still_processed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "a.yaml"
    bad.write_text(POD.format(value="!!bool maybe"))
    good = tmp_path / "b.yaml"
    good.write_text(POD.format(value="false"))
    assert main(["fix", "--check", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"{bad}:9:10: error:" in captured.err
    assert str(good) in captured.out  # its changes are listed
    assert main(["check", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


_scalars = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["maybe", "yes", "0x1g", "1e", ".inf", "~", "2020-13-45", "=", "<<", "***"]),
)
_tags = st.one_of(
    st.sampled_from(KNOWN_TAGS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz:/.-_!%0123456789", min_size=1, max_size=12).map(
        lambda t: "!" + t
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tag=_tags, scalar=_scalars, quoted=st.booleans(), fast_path=st.booleans())
def test_no_tag_and_scalar_makes_a_traceback(
    tag: str, scalar: str, quoted: bool, fast_path: bool
) -> None:
    value = f"{tag} {json.dumps(scalar) if quoted else scalar}"
    text = POD.format(value=value)
    result = fix_text(text, "pod.yaml", FixOptions(write=False, fast_path=fast_path))
    if result.error is not None:
        assert result.error_line is not None or "internal error" not in result.error
    check_text(text, "pod.yaml")


def test_an_unforeseen_failure_is_the_file_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from hardener.fixer import run

    def boom(value: object, *args: object, **kwargs: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(run, "plan", boom)
    result = fix_text(POD.format(value="true"), "pod.yaml")
    assert result.error is not None and "internal error" in result.error
    assert "KeyError" in result.error and result.fixed is None
    assert check_text(POD.format(value="true"), "pod.yaml").error is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tag=_tags, scalar=_scalars, quoted=st.booleans())
def test_the_cli_prints_no_traceback_for_any_tag_and_scalar(
    tag: str, scalar: str, quoted: bool
) -> None:
    value = f"{tag} {json.dumps(scalar) if quoted else scalar}"
    with tempfile.TemporaryDirectory() as directory:
        bad = Path(directory, "a.yaml")
        bad.write_text(POD.format(value=value), encoding="utf-8")
        good = Path(directory, "b.yaml")
        good.write_text(POD.format(value="false"), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["fix", "--check", directory])
        assert "Traceback" not in err.getvalue()
        assert f"{good}:" in out.getvalue()  # the other file is still processed
        # An error is file:line:col: message (the scalar may hold line breaks: any line); an
        # error without a place would be "file: error: ...".
        placed = re.search(rf"^{re.escape(str(bad))}:\d+:\d+: error: ", err.getvalue(), re.M)
        assert f"{bad}: error:" not in err.getvalue()
        assert status == (2 if placed else 1)


@pytest.mark.parametrize("before", ["", "é€"], ids=["ascii", "multibyte"])
def test_a_control_character_is_placed_at_its_line_and_column(before: str) -> None:
    text = POD.format(value=f"{before}\x1f")
    result = fix_text(text, "pod.yaml")
    assert result.error is not None and "U+001F" in result.error
    assert (result.error_line, result.error_column) == (9, 10 + len(before))
