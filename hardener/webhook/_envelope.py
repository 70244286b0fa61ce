"""The AdmissionReview on the wire: its types, and its bytes in and out.

``decode_review`` turns a request body into a validated ``AdmissionRequest``, or raises
``BadReviewError``, which the server answers with HTTP 400: a malformed envelope (not JSON,
not an ``admission.k8s.io/v1`` AdmissionReview, a missing ``request`` or ``uid``) is the
caller's bug. Only the envelope is checked here; the object is the engine's business.
``encode_review`` renders the response. Nothing here knows about the engine or aiohttp.

JSON goes through orjson both ways: it parses a review in well under the time of the standard
``json`` module and renders the same compact JSON. Where the two would read a body differently,
hardener sides with the API server, the only legitimate sender:

- NaN, Infinity, numbers beyond the range of a double, invalid UTF-8, a byte order mark and
  ``\\u`` escapes of lone UTF-16 surrogates are not JSON: 400 (``json`` accepted most of them);
- integers beyond 64 bits are read as the nearest double, as the API server's own decoder
  reads a number that does not fit an int64 (it never sends one: Kubernetes integers are at
  most 64 bits);
- of duplicate keys the last one wins, as with ``json`` and Go's ``encoding/json``;
- nesting deeper than 1024 levels is refused (400).
"""

from __future__ import annotations

import gc
from typing import Any, Literal, NotRequired, TypedDict, cast

import orjson

from hardener.model import HardenerError, json_type, preview

__all__ = [
    "API_VERSION",
    "MAX_UID_CHARS",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "BadReviewError",
    "GroupVersionKind",
    "decode_review",
    "encode_review",
]

API_VERSION = "admission.k8s.io/v1"

MAX_UID_CHARS = 256
"""The longest ``request.uid`` accepted; the API server sends a UUID (36 characters)."""


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class AdmissionRequest(TypedDict):
    """The fields of ``AdmissionReview.request`` that hardener reads (the API server sends more)."""

    uid: str
    kind: GroupVersionKind
    operation: str
    subResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    object: NotRequired[Any]
    oldObject: NotRequired[Any]


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse


class BadReviewError(HardenerError):
    """A request body that is not a usable AdmissionReview; ``field`` says where (or ``""``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[BadReviewError], tuple[str, str]]:
        # Rebuilt from both fields: raised in the decoding worker (_outside), re-raised here.
        return BadReviewError, (self.field, self.message)


# -- decoding ---------------------------------------------------------------------------------


_NOT_NUMBERS = ("NaN", "-Infinity", "Infinity")


def _not_json(error: orjson.JSONDecodeError, body: bytes) -> BadReviewError:
    """The 400 for a body orjson cannot read, in words that say what is wrong with it."""
    reason = error.msg
    if reason.startswith("depth limit exceeded"):
        return BadReviewError(
            "", "the body is not usable JSON: it is nested too deeply (over 1024 levels)"
        )
    if reason.startswith("str is not valid UTF-8"):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return BadReviewError(
                "", f"the body is not valid JSON: not UTF-8 at byte {exc.start} ({exc.reason})"
            )
    text, at = error.doc, error.pos
    for name in _NOT_NUMBERS:
        # orjson stops at the N or I of these, or just after the sign.
        for start in (at, at - 1):
            if start >= 0 and text.startswith(name, start):
                where = f"line {error.lineno} column {error.colno - (at - start)}"
                return BadReviewError(
                    "", f"the body is not valid JSON: {name} is not valid JSON ({where})"
                )
    return BadReviewError(
        "", f"the body is not valid JSON: {reason}: line {error.lineno} column {error.colno}"
    )


GC_PAUSE_BYTES = 64 * 1024
"""Bodies at least this large are parsed with the garbage collector paused."""


def _loads(body: bytes) -> Any:
    """``orjson.loads``; for a large body, with the garbage collector paused meanwhile.

    Every list and object the parser makes counts towards the collector's next pass, and the
    passes that come due walk all of them again while the parse holds the GIL: 3 MiB of tiny
    arrays parsed in 60 ms paused and in 170 to 200 ms otherwise. What the parser makes holds
    no cycles, so there is nothing for those passes to find.
    """
    if len(body) < GC_PAUSE_BYTES or not gc.isenabled():
        return orjson.loads(body)
    gc.disable()
    try:
        return orjson.loads(body)
    finally:
        gc.enable()


def decode_review(body: bytes) -> AdmissionRequest:
    """Parse and validate an ``admission.k8s.io/v1`` AdmissionReview; return its request.

    Only the envelope is checked here (the fields every review carries); the object is checked
    by the engine when, and only when, hardener acts on it.
    """
    try:
        document = _loads(body)
    except orjson.JSONDecodeError as exc:
        raise _not_json(exc, body) from None
    if not isinstance(document, dict):
        raise BadReviewError(
            "", f"the body must be a JSON object (an AdmissionReview), not {json_type(document)}"
        )
    api_version = document.get("apiVersion")
    if api_version != API_VERSION:
        hint = " (set admissionReviewVersions: [v1] in the webhook configuration)"
        raise BadReviewError(
            "apiVersion",
            f"must be {API_VERSION!r}, got {preview(api_version)}"
            + (
                hint
                if isinstance(api_version, str) and api_version.startswith("admission.")
                else ""
            ),
        )
    if document.get("kind") != "AdmissionReview":
        raise BadReviewError(
            "kind", f"must be 'AdmissionReview', got {preview(document.get('kind'))}"
        )
    request = document.get("request")
    if request is None:
        raise BadReviewError("request", "is required: the AdmissionReview carries no request")
    if not isinstance(request, dict):
        raise BadReviewError("request", f"must be an object, not {json_type(request)}")
    uid = request.get("uid")
    if uid is None:
        raise BadReviewError("request.uid", "is required: the response must echo it")
    if not isinstance(uid, str) or not uid:
        raise BadReviewError("request.uid", f"must be a non-empty string, not {preview(uid)}")
    if len(uid) > MAX_UID_CHARS:
        # The answer must echo the uid: a long one would be echoed whole.
        raise BadReviewError(
            "request.uid",
            f"is {len(uid)} characters long, over {MAX_UID_CHARS} (the API server sends a UUID)",
        )
    gvk = request.get("kind")
    if not isinstance(gvk, dict):
        raise BadReviewError(
            "request.kind",
            "is required and must be an object like {group, version, kind}, not " + json_type(gvk),
        )
    for key in ("group", "version", "kind"):
        value = gvk.get(key, "")
        if not isinstance(value, str):
            raise BadReviewError(f"request.kind.{key}", f"must be a string, not {json_type(value)}")
    if not gvk.get("kind"):
        raise BadReviewError("request.kind.kind", "is required")
    operation = request.get("operation")
    if not isinstance(operation, str) or not operation:
        raise BadReviewError(
            "request.operation", f"is required and must be a string, not {json_type(operation)}"
        )
    for key in ("subResource", "name", "namespace"):
        value = request.get(key)
        if value is not None and not isinstance(value, str):
            raise BadReviewError(f"request.{key}", f"must be a string, not {json_type(value)}")
    return cast(AdmissionRequest, request)


# -- encoding ---------------------------------------------------------------------------------


def encode_review(response: AdmissionResponse) -> bytes:
    review_out: AdmissionReview = {
        "apiVersion": API_VERSION,
        "kind": "AdmissionReview",
        "response": response,
    }
    # Compact UTF-8, as json.dumps(separators=(",", ":"), ensure_ascii=False) writes it.
    return orjson.dumps(review_out)
