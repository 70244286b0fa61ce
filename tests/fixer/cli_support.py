"""What the tests of the stdin/stdout commands share: stdin for ``main``, and an executable
that runs this checkout's ``hardener`` for tools that exec a path (Helm, kpt, Kustomize)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def set_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def hardener_script(path: Path, *args: str) -> Path:
    """Write an executable at ``path`` that runs ``hardener ARGS... "$@"`` from this checkout."""
    fixed = "".join(f" {arg}" for arg in args)
    path.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={ROOT} exec {sys.executable} -c "
        f"'import sys; from hardener.cli import main; sys.exit(main())'{fixed} \"$@\"\n"
    )
    path.chmod(0o755)
    return path
