"""The one way tests reach ``../shared``, the read-only folder beside the repository.

It holds the Pod Security Admission fixtures (``fixtures/pss``, every policy version), a corpus
of real-world manifests (``corpus``) and a kube-apiserver (``k8s``). A test asks for a folder
by its name under ``../shared``:

- :func:`shared_or_copy` gives the folder, or its copy in ``tests/data`` when ``../shared`` is
  not there (only ``fixtures/pss`` has one, its newest version), so the test still runs;
- :func:`shared` gives the folder or ``None``, for tests that add it to local samples;
- :func:`need` and :func:`needs` skip a test that cannot run without the folder, with the
  reason "needs ../shared/<folder> (not present)".

``HARDENER_TEST_SHARED`` names another folder to use instead (a path that does not exist shows
what the suite does without ``../shared``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARDENER_TEST_SHARED") or ROOT.parent / "shared")
DATA = ROOT / "tests" / "data"
# ../shared/<folder> -> its copy in tests/data. The corpus and the API server have none: the
# corpus tests add ../shared/corpus to samples of their own, and a binary is not copied.
COPIES = {"fixtures/pss": DATA / "pss"}


def missing(folder: str) -> str:
    """The reason a test skips without ``../shared/<folder>``."""
    return f"needs ../shared/{folder} (not present)"


def shared(folder: str) -> Path | None:
    """``../shared/<folder>`` when it is there."""
    path = SHARED / folder
    return path if path.is_dir() else None


def copy_of(folder: str) -> Path:
    """The copy of ``../shared/<folder>`` that ``tests/data`` keeps."""
    return COPIES[folder]


def shared_or_copy(folder: str) -> Path:
    """``../shared/<folder>``, else its copy in ``tests/data``; skips when there is neither."""
    found = shared(folder)
    if found is not None:
        return found
    copy = COPIES.get(folder)
    if copy is not None and copy.is_dir():
        return copy
    pytest.skip(missing(folder))


def need(folder: str) -> Path:
    """``../shared/<folder>``, or skip the running test saying which folder is missing."""
    found = shared(folder)
    if found is None:
        pytest.skip(missing(folder))
    return found


def needs(folder: str) -> pytest.MarkDecorator:
    """A mark that skips a test when ``../shared/<folder>`` is not there."""
    return pytest.mark.skipif(shared(folder) is None, reason=missing(folder))
