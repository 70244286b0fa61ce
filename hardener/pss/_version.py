"""The one grammar of a Pod Security Standards policy version, for the config, ``check
--version``, the audit's namespace labels and the evaluator.

Pod Security Admission accepts exactly ``latest`` or ``v1.<minor>`` with no leading zero
(``v1.0``, ``v1.25``; not ``v1.07``, ``1.25``, ``V1.25`` nor ``v2.0``) in the
``pod-security.kubernetes.io/enforce-version`` label: a kube-apiserver refuses a namespace
labelled otherwise (``k8s.io/pod-security-admission/api`` ``ParseVersion``). Where a person
types a version (the config file, ``--version``), two conveniences are allowed on top,
because each still names exactly one PSA version: the ``v`` may be left out (``1.25``) and
blanks around are ignored. Everything else that PSA refuses is refused here too, and a
version is always shown in PSA's form (``canonical_version``). A label read from a cluster
is parsed with ``strict=True``: PSA's grammar and nothing more.
"""

from __future__ import annotations

import re
from typing import Any, Final

from hardener.model import json_type

__all__ = ["Version", "canonical_version", "format_version", "parse_version"]

Version = tuple[int, int]

_TYPED: Final = re.compile(r"(v?)1\.(0|[1-9][0-9]*)")
_HINT: Final = "use 'latest' or 'v1.<minor>' with no leading zero, e.g. 'v1.25'"


def parse_version(text: Any, *, strict: bool = False) -> Version | None:
    """``"v1.25"`` -> ``(1, 25)``; ``"latest"`` -> ``None`` (the newest policy).

    ``strict``: PSA's label grammar only (no ``1.25``, no blanks). Raises ``ValueError`` for
    anything else, a value that is not a string included.
    """
    if not isinstance(text, str):
        hint = ""
        if isinstance(text, int | float) and not isinstance(text, bool):
            # YAML reads ``version: 1.30`` as the number 1.3.
            hint = " (quote it in YAML: an unquoted 1.30 is read as the number 1.3)"
        raise ValueError(
            f"invalid policy version: a string such as 'v1.25' or 'latest' is needed, not "
            f"{json_type(text)}{hint}"
        )
    stripped = text if strict else text.strip()
    if stripped == "latest":
        return None
    match = _TYPED.fullmatch(stripped)
    if match is None or (strict and not match.group(1)):
        raise ValueError(f"invalid policy version {_preview(text)}: {_HINT}")
    return (1, int(match.group(2)))


def format_version(version: Version | None) -> str:
    """PSA's form of a parsed version: ``v1.25``, or ``latest`` for ``None``."""
    return "latest" if version is None else f"v{version[0]}.{version[1]}"


def canonical_version(text: Any) -> str:
    """A typed version in PSA's form (``" 1.25"`` -> ``"v1.25"``); ``ValueError`` as
    ``parse_version``."""
    return format_version(parse_version(text))


def _preview(text: str) -> str:
    # The value may come from a cluster or a file: quote a bounded piece of it.
    return repr(text if len(text) <= 40 else text[:40] + "...")
