"""The pure part of the webhook: a decoded AdmissionRequest in, the AdmissionResponse out.

Nothing here knows about aiohttp, sockets or metrics; the envelope's bytes are ``_envelope``'s.
``review`` decides the answer with the engine. Every well-formed review is *allowed*:
hardener mutates, it never refuses. Problems it cannot fix travel as ``warnings``. That
includes an object hardener cannot harden (a field of the wrong type, a pod spec without
``containers``, more containers or volumes than ``webhook.max-containers``/``max-volumes``):
it is admitted unchanged with a warning that says why (outcome ``not-hardened``), so that the
API server's own validation speaks to the user instead of an opaque "rejected our request"
for a 400.

``review`` is ``prepare_review`` (cheap: the envelope's target, the object's shape and its
size, decided before any work) followed by ``finish_review`` (the engine and the PSS
evaluator); the server runs the second on its event loop or in a worker thread depending on
the size the first found.

The patch is built from ``plan().ops``, never by diffing a hardened copy: the engine already
knows the operations, and diffing costs far more than the whole request.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from hardener.config import Config
from hardener.engine import Scope, plan, still_violated
from hardener.image_facts import ImageFacts
from hardener.locate import KINDS, PodSite, pod_sites
from hardener.model import (
    Change,
    Finding,
    InvalidObjectError,
    JSONObject,
    json_type,
    preview,
)
from hardener.pss import Violation
from hardener.rules.user_namespace import RULE as USER_NAMESPACE_RULE
from hardener.userns import Support
from hardener.webhook._envelope import (
    AdmissionRequest,
    AdmissionResponse,
    GroupVersionKind,
)

__all__ = [
    "MAX_WARNINGS_TOTAL_CHARS",
    "MAX_WARNING_CHARS",
    "OUTCOMES",
    "WORKLOAD_KINDS",
    "Outcome",
    "ReviewResult",
    "ReviewWork",
    "error_result",
    "finish_review",
    "not_hardened_result",
    "past_deadline_result",
    "prepare_review",
    "review",
]

# The API server keeps a warning to 256 characters and all of them to 4096; hardener keeps
# below both so that nothing it says is cut in the middle.
MAX_WARNING_CHARS = 256
MAX_WARNINGS_TOTAL_CHARS = 3072

Outcome = Literal["patched", "unchanged", "warned", "skipped", "not-hardened", "deadline", "error"]
OUTCOMES: tuple[Outcome, ...] = (
    "patched",
    "unchanged",
    "warned",
    "skipped",
    "not-hardened",
    "deadline",
    "error",
)
"""What happened to a well-formed review (the ``outcome`` label of the request metric):

``patched`` a patch was sent; ``unchanged`` a handled object needed nothing; ``warned`` warn
mode found something to change and only said so; ``skipped`` a kind, operation or subresource
hardener does not touch; ``not-hardened`` an object hardener cannot harden (the wrong shape,
or over the size limits), admitted unchanged with a warning that says why; ``deadline`` the
answer was not ready in time and the object was admitted unchanged; ``error`` an unexpected
failure, also admitted unchanged.
"""

WORKLOAD_KINDS: frozenset[tuple[str, str]] = frozenset(
    (k.group, k.kind) for k in KINDS if k.admitted and k.template
)
"""(API group, kind) of the controllers whose pod template is hardened on CREATE and UPDATE."""


@dataclass(frozen=True)
class ReviewResult:
    """The answer to one review, and what the server logs and counts about it."""

    response: AdmissionResponse
    outcome: Outcome
    kind: str = ""
    namespace: str | None = None
    name: str | None = None
    operation: str = ""
    subresource: str = ""
    rules: tuple[str, ...] = ()
    """Rules applied (``patched``) or that would apply (``warned``)."""
    ops: int = 0
    violations: tuple[str, ...] = field(default=())
    user_namespace: tuple[str, ...] = ()
    """The ``user-namespace`` rule's reason for each pod of the object (``REASONS``)."""


@dataclass(frozen=True)
class ReviewWork:
    """A review that hardener will act on, and how big the work is (``prepare_review``)."""

    request: AdmissionRequest
    obj: JSONObject
    """The object, with ``kind`` filled in from the request when it had none."""
    scope: Scope | None
    namespace: str | None
    containers: int
    """Containers of every kind in every pod spec of the object."""
    volumes: int
    """Volumes in every pod spec of the object."""
    sites: list[PodSite]
    """The object's pod sites, located once for the sizing, the image list, the rules and the
    PSS verdict."""


# -- deciding ---------------------------------------------------------------------------------

_Target = Literal["pod", "ephemeral", "workload"]


def _target(gvk: GroupVersionKind, operation: str, subresource: str) -> _Target | None:
    group, kind = gvk.get("group", ""), gvk["kind"]
    if group == "" and kind == "Pod":
        if subresource == "" and operation == "CREATE":
            return "pod"
        if subresource == "ephemeralcontainers" and operation in ("UPDATE", "CREATE"):
            return "ephemeral"
        return None
    if subresource == "" and operation in ("CREATE", "UPDATE") and (group, kind) in WORKLOAD_KINDS:
        return "workload"
    return None


def _ephemeral_names(pod: Any) -> set[str]:
    spec = pod.get("spec") if isinstance(pod, dict) else None
    items = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
    if not isinstance(items, list):
        return set()
    return {c["name"] for c in items if isinstance(c, dict) and isinstance(c.get("name"), str)}


def _object_name(request: AdmissionRequest, obj: JSONObject) -> str | None:
    if request.get("name"):
        return request.get("name")
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        for key in ("name", "generateName"):
            value = metadata.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _by_rule(changes: Sequence[Change]) -> dict[str, list[str]]:
    """The messages of the changes by rule; rules in the order they first come."""
    by_rule: dict[str, list[str]] = {}
    for change in changes:
        by_rule.setdefault(change.rule, []).append(change.message)
    return by_rule


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _printable(text: str) -> bool:
    """``text.isprintable()``, in a fraction of its time for ASCII text (nearly every warning):
    deleting the printable characters leaves nothing."""
    if text.isascii():
        return not text.encode("ascii").translate(None, _PRINTABLE_ASCII)
    return text.isprintable()


def _clip(text: str, limit: int = MAX_WARNING_CHARS) -> str:
    # Warnings travel in HTTP headers: one printable line each.
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _in_scope(container: str | None, scope: Scope | None) -> bool:
    only = scope.ephemeral_containers if scope is not None else None
    return only is None or container in only


def _warnings(
    by_rule: dict[str, list[str]],
    violations: Sequence[Violation],
    notes: Sequence[Finding],
    *,
    applied: bool,
    level: str,
    lookups: Sequence[str] = (),
) -> list[str]:
    # The image lookups that fell back come first: they explain the decisions that follow.
    lines = list(lookups)
    if applied:
        lines += [f"hardener applied {rule}: {'; '.join(said)}" for rule, said in by_rule.items()]
    else:
        lines += [
            f"hardener would apply {rule} (warn mode): {'; '.join(said)}"
            for rule, said in by_rule.items()
        ]
    for violation in violations:
        lines.append(f"PSS {level} violation ({violation.check}): {violation.message}")
    for note in notes:
        lines.append(f"hardener: {note.message}")
    if not _printable("".join(lines)):
        lines = [_clip(line) for line in lines]
    elif max(map(len, lines), default=0) > MAX_WARNING_CHARS:
        cut = MAX_WARNING_CHARS - 3
        lines = [line if len(line) <= MAX_WARNING_CHARS else line[:cut] + "..." for line in lines]
    if sum(map(len, lines)) <= MAX_WARNINGS_TOTAL_CHARS:
        return lines
    kept: list[str] = []
    total = 0
    for index, line in enumerate(lines):
        if total + len(line) > MAX_WARNINGS_TOTAL_CHARS:
            kept.append(f"hardener: {len(lines) - index} more warnings left out")
            break
        kept.append(line)
        total += len(line)
    return kept


def _allowed(uid: str) -> AdmissionResponse:
    return {"uid": uid, "allowed": True}


def past_deadline_result(request: AdmissionRequest, deadline_seconds: float) -> ReviewResult:
    """Admit unchanged, and say why, when the answer was not ready within the deadline."""
    response = _allowed(request["uid"])
    response["warnings"] = [
        f"hardener: no changes made: hardening took longer than the {deadline_seconds:g}s "
        "deadline; the object was admitted unchanged"
    ]
    response["auditAnnotations"] = {"outcome": "deadline"}
    return _result(request, response, "deadline")


def not_hardened_result(request: AdmissionRequest, field: str, reason: str) -> ReviewResult:
    """Admit unchanged an object hardener cannot harden, and say what was left alone and why.

    ``field`` is where the trouble is (``request.object/spec/containers``), ``reason`` what
    it is; both may hold parts of the object, so the warning is clipped like every other.
    """
    response = _allowed(request["uid"])
    kind = request["kind"]["kind"]
    where = f"{field}: " if field else ""
    response["warnings"] = [
        _clip(f"hardener: {kind} not hardened, admitted unchanged: {where}{reason}")
    ]
    response["auditAnnotations"] = {"outcome": "not-hardened"}
    return _result(request, response, "not-hardened")


def error_result(request: AdmissionRequest) -> ReviewResult:
    """Admit unchanged after an unexpected failure: hardener must never block the cluster."""
    response = _allowed(request["uid"])
    response["warnings"] = [
        "hardener: no changes made: internal error while hardening (see the webhook's log); "
        "the object was admitted unchanged"
    ]
    response["auditAnnotations"] = {"outcome": "error"}
    return _result(request, response, "error")


def _result(
    request: AdmissionRequest,
    response: AdmissionResponse,
    outcome: Outcome,
    obj: Any = None,
    **extra: Any,
) -> ReviewResult:
    obj = obj if isinstance(obj, dict) else request.get("object")
    return ReviewResult(
        response=response,
        outcome=outcome,
        kind=request["kind"]["kind"],
        namespace=request.get("namespace") or None,
        name=_object_name(request, obj) if isinstance(obj, dict) else request.get("name"),
        operation=request["operation"],
        subresource=request.get("subResource") or "",
        **extra,
    )


def review(
    request: AdmissionRequest,
    config: Config,
    *,
    deadline: float | None = None,
    images: Mapping[str, ImageFacts] | None = None,
    user_namespaces: Support | None = None,
    lookup_warnings: Sequence[str] = (),
) -> ReviewResult:
    """Decide the AdmissionResponse for a validated request: ``prepare_review``, then
    ``finish_review`` when there is work to do.

    ``deadline`` is a ``time.monotonic()`` instant: past it, between the engine's steps, the
    answer becomes allowed-without-patch plus a warning. ``images`` are the facts of the
    images the object names (by ``image`` string as written), learnt before this pure call;
    without them the config's ``images.unknown`` policy decides. The engine's explanations of
    its image decisions travel as warnings. ``user_namespaces`` is the cluster's support as
    the node watch last saw it (``user-namespaces: auto``; without it, ``auto`` is off).
    ``lookup_warnings`` say which image lookups fell back and why (the server's lookups);
    they lead the warnings of a hardened object.
    """
    prepared = prepare_review(request, config)
    if isinstance(prepared, ReviewResult):
        return prepared
    return finish_review(
        prepared,
        config,
        deadline=deadline,
        images=images,
        user_namespaces=user_namespaces,
        lookup_warnings=lookup_warnings,
    )


def _size(sites: list[PodSite]) -> tuple[int, int]:
    """Containers and volumes in every pod spec of ``sites``."""
    containers = volumes = 0
    for site in sites:
        containers += len(site.containers)
        listed = site.spec.get("volumes")
        volumes += len(listed) if isinstance(listed, list) else 0
    return containers, volumes


def _more_values_than(value: Any, limit: int) -> bool:
    """Whether ``value`` holds more than ``limit`` JSON values (itself included).

    A walk with a stack of its own (no recursion, whatever the depth) that stops as soon as
    the count passes ``limit``, so it costs at most ``limit`` steps.
    """
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        if count > limit:
            return True
    return False


def prepare_review(
    request: AdmissionRequest, config: Config, *, body_bytes: int | None = None
) -> ReviewResult | ReviewWork:
    """The answer when it needs no engine (a kind hardener does not touch, an object it
    cannot harden), else the work to do. Cheap: no rule runs here, so the limits on
    containers, volumes and values are decided before the work starts.

    ``body_bytes`` is the size of the body the request came in: a body of ``n`` bytes holds
    at most ``n // 2 + 1`` JSON values, so a small one is not counted.
    """
    target = _target(request["kind"], request["operation"], request.get("subResource") or "")
    if target is None:
        return _result(request, _allowed(request["uid"]), "skipped")
    obj = request.get("object")
    kind = request["kind"]["kind"]
    if not isinstance(obj, dict):
        return not_hardened_result(
            request, "request.object", f"must be the {kind} object, not {json_type(obj)}"
        )
    obj_kind = obj.get("kind")
    if obj_kind is None:
        # locate() finds the pod spec by kind; the request says what the object is.
        obj = {**obj, "kind": kind}
    elif obj_kind != kind:
        return not_hardened_result(
            request,
            "request.object.kind",
            f"is {preview(obj_kind)} but request.kind.kind is {preview(kind)}",
        )
    scope: Scope | None = None
    if target == "ephemeral":
        # Only the containers this update adds may change: the API server rejects any other
        # edit of a running pod, and the old ephemeral containers are running already.
        new = frozenset(_ephemeral_names(obj) - _ephemeral_names(request.get("oldObject")))
        if not new:
            return _result(request, _allowed(request["uid"]), "skipped", obj)
        scope = Scope(ephemeral_containers=new)
    try:
        sites = pod_sites(obj)
    except InvalidObjectError as exc:
        return not_hardened_result(request, f"request.object{exc.pointer}", exc.message)
    containers, volumes = _size(sites)
    limits = config.webhook
    countable = body_bytes is None or body_bytes // 2 + 1 > limits.max_values
    if countable and _more_values_than(obj, limits.max_values):
        return not_hardened_result(
            request,
            "",
            f"it holds over {limits.max_values} JSON values (webhook.max-values in the "
            "config); hardening it would hold the webhook too long",
        )
    for count, limit, what, key in (
        (containers, limits.max_containers, "containers", "max-containers"),
        (volumes, limits.max_volumes, "volumes", "max-volumes"),
    ):
        if count > limit:
            return not_hardened_result(
                request,
                "",
                f"it has {count} {what}, over the limit of {limit} (webhook.{key} in the "
                "config); hardening it would hold the webhook too long",
            )
    return ReviewWork(
        request, obj, scope, request.get("namespace") or None, containers, volumes, sites
    )


def finish_review(
    work: ReviewWork,
    config: Config,
    *,
    deadline: float | None = None,
    images: Mapping[str, ImageFacts] | None = None,
    user_namespaces: Support | None = None,
    lookup_warnings: Sequence[str] = (),
) -> ReviewResult:
    """Harden ``work.obj`` with the engine and answer (see ``review``)."""
    request, obj, scope, namespace = work.request, work.obj, work.scope, work.namespace
    kind = request["kind"]["kind"]
    if deadline is not None and time.monotonic() > deadline:
        return past_deadline_result(request, config.webhook.deadline_seconds)
    try:
        # The PSS verdict below is the evaluator's own, on the patched object.
        decided = plan(
            obj,
            config,
            namespace=namespace,
            scope=scope,
            evaluate=False,
            images=images,
            user_namespaces=user_namespaces,
            sites=work.sites,
        )
    except InvalidObjectError as exc:
        return not_hardened_result(request, f"request.object{exc.pointer}", exc.message)
    if deadline is not None and time.monotonic() > deadline:
        return past_deadline_result(request, config.webhook.deadline_seconds)

    mutate = config.mode != "warn"
    ops = decided.ops
    by_rule = _by_rule(decided.changes)
    rules = tuple(by_rule)
    response: AdmissionResponse = {"uid": request["uid"], "allowed": True}
    audit: dict[str, str] = {}
    if ops and mutate:
        response["patchType"] = "JSONPatch"
        response["patch"] = binascii.b2a_base64(orjson.dumps(ops), newline=False).decode("ascii")
        outcome: Outcome = "patched"
        audit["rules"] = ",".join(rules)
    elif ops:
        outcome = "warned"
        audit["would-apply"] = ",".join(rules)
    else:
        outcome = "unchanged"

    try:
        violations = still_violated(
            decided.hardened, config, namespace=namespace, scope=scope, sites=work.sites
        )
    except InvalidObjectError as exc:
        return not_hardened_result(request, f"request.object{exc.pointer}", exc.message)
    findings = decided.findings
    notes = (
        [f for f in findings if f.check is None and _in_scope(f.container, scope)]
        if findings
        else []
    )
    checks = tuple(dict.fromkeys([v.check for v in violations])) if violations else ()
    if checks:
        audit["pss-violations"] = ",".join(checks)
    warnings = _warnings(
        by_rule, violations, notes, applied=mutate, level=config.level, lookups=lookup_warnings
    )
    if warnings:
        response["warnings"] = warnings
    if audit:
        audit["outcome"] = outcome
        response["auditAnnotations"] = audit
    # Positional: the fields in their declared order (a keyword call costs more per field).
    return ReviewResult(
        response,
        outcome,
        kind,
        namespace,
        _object_name(request, obj),
        request["operation"],
        request.get("subResource") or "",
        rules,
        len(ops) if mutate else 0,
        checks,
        tuple(d.reason for d in decided.decisions if d.rule == USER_NAMESPACE_RULE.id)
        if decided.decisions
        else (),
    )
