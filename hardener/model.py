"""The data that flows between hardener's layers.

Everything here is plain data: JSON values, RFC 6902 operations, and the frozen records the
engine hands to the webhook, the fixer and the reports. Of hardener, this module imports only
``records`` (how its records are pickled).

Exception hierarchy (every error hardener raises on purpose derives from ``HardenerError``;
the ones below ``model`` live in the module named beside them)::

    HardenerError
    ├── ConfigError              invalid config: names the file, the key and the allowed values
    ├── InvalidObjectError       a Kubernetes object whose fields have the wrong type or shape
    ├── PointerError             a JSON pointer that is malformed or does not resolve
    ├── CertsError               certs: a certificate that cannot be made or written
    │   └── CertFileExistsError  ... a file that exists, and --force was not given
    ├── SourceError              fixer.source: not well-formed YAML/JSON (line, column)
    ├── EditError                fixer.source: an edit that cannot be made safely
    ├── FastLoadError            fixer.fastload: the fast reader declines (the full parser runs)
    ├── FileReadError            fixer.files: a file that cannot be read as UTF-8 text
    ├── FileWriteError           fixer.files: the new text could not be put in place
    ├── BadReviewError           webhook: a malformed AdmissionReview (HTTP 400)
    ├── CertLoadError            webhook: serving certificate files that cannot be loaded
    ├── LookupFailed             images: one image lookup that failed (kept inside the
    │                            package; the faces get ImageFacts.unknown with its detail)
    ├── ClusterError             audit: no kubeconfig, an unreachable or refusing API server
    ├── RequestDenied            audit: one API request refused (401, 403, 404, 409)
    └── InstallError             audit: input install cannot use, or a refused change
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict

from mypy_extensions import mypyc_attr

from hardener.records import picklable

__all__ = [
    "Change",
    "ConfigError",
    "Decision",
    "Finding",
    "HardenerError",
    "InvalidObjectError",
    "JSONObject",
    "JSONValue",
    "Operation",
    "Plan",
    "PointerError",
    "json_type",
    "preview",
]

JSONValue = Any
"""Any value that JSON (and so a Kubernetes object) can hold."""

JSONObject = dict[str, Any]


class Operation(TypedDict):
    """One RFC 6902 operation. hardener only ever emits ``add`` and ``replace``."""

    op: Literal["add", "replace"]
    path: str
    value: JSONValue


@mypyc_attr(native_class=False)
class HardenerError(Exception):
    """Base of every error hardener raises on purpose.

    A plain Python class even where this module is compiled (see docs/build.md): errors
    elsewhere also derive from built-in ones (``CertFileExistsError`` from
    ``FileExistsError``), which a compiled class's own instance layout would not allow.
    """


class ConfigError(HardenerError):
    """A config file or config value that cannot be used, with the place and the fix."""


class InvalidObjectError(HardenerError):
    """A field of a Kubernetes object has the wrong type, so hardening it is not safe.

    ``pointer`` is the RFC 6901 pointer of the offending field within the object.
    """

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer
        self.message = message


class PointerError(HardenerError):
    """A JSON pointer that is malformed or does not resolve against a document."""


@dataclass(unsafe_hash=True)
class Change:
    """One value the engine decided to set.

    ``pointer`` is where the value goes (RFC 6901, escaped), ``before`` is what the original
    object held there (``None`` when absent), ``after`` the value set.
    """

    rule: str
    pointer: str
    message: str
    after: JSONValue
    before: JSONValue = None
    container: str | None = None


@dataclass(unsafe_hash=True)
class Finding:
    """Something still wrong that the engine did not (or must not) change.

    ``rule`` is the hardener rule that noticed it, ``check`` the Pod Security Standards check
    it concerns (``None`` if none), ``pointer`` the field or object it is about.
    ``fixable`` is true when hardener would fix it with the config's enforce option or a
    different profile, false when it needs a human.
    """

    rule: str
    message: str
    pointer: str
    check: str | None = None
    level: str | None = None
    container: str | None = None
    fixable: bool = False


@dataclass(unsafe_hash=True)
class Decision:
    """What a rule decided for one pod, by reason, when the decision is worth counting
    (the webhook's metrics, the audit's tallies): ``reason`` is a short code such as
    ``added`` or ``host-network``, ``message`` says it in words, ``pointer`` is the pod spec.
    """

    rule: str
    reason: str
    pointer: str
    message: str = ""


@dataclass(frozen=True)
class Plan:
    """What the engine decided for one object: the ops, why, and what it left alone."""

    ops: list[Operation] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    """Per pod, the decisions rules record by reason (``user-namespace`` does)."""
    hardened: JSONValue = field(default=None, repr=False, compare=False)
    """The object as the ops leave it (what ``jsonpatch.apply_patch`` would give), sharing
    every part they do not touch with the object: read-only. ``None`` when not known."""


def json_type(value: object) -> str:
    """How an error message names the JSON type of ``value``: "a string", "an array", ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return type(value).__name__


PREVIEW_CHARS: Final = 64
"""How much of a value an error message quotes (``preview``)."""


def preview(value: object, limit: int = PREVIEW_CHARS) -> str:
    """A short, flat rendering of ``value`` for an error message, never ``repr``.

    Error messages quote values that came from outside (a request, a file). ``repr`` of a
    value nested a thousand deep recurses past Python's limit, and a 3 MB string quoted whole
    makes a 3 MB message. So: a string is quoted and clipped to ``limit`` characters (control
    characters shown as escapes), a number, boolean or null is written as JSON writes it, and
    an array or object is named by its type and size, never walked.
    """
    if isinstance(value, str):
        clipped = value if len(value) <= limit else value[:limit] + "..."
        text = (
            clipped.encode("unicode_escape").decode("ascii")
            if not clipped.isprintable()
            else clipped
        )
        return '"' + text.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        text = str(value)
        return text if len(text) <= limit else text[:limit] + "..."
    if isinstance(value, list):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object of {len(value)} key{'' if len(value) == 1 else 's'}"
    return type(value).__name__


picklable(Change, Finding, Decision, Plan)
