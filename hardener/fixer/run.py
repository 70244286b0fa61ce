"""Running ``fix`` and ``check`` over files: read, decide, edit, verify, write, report.

For each file::

    read (UTF-8) ─> Helm template? skip ─> fast read (libyaml) ─> plan every document
        │                                     │ no operations anywhere: done, file untouched
        │                                     └ operations, or the fast reader declined:
        └──────────────────────────────────────> SourceFile.parse ─> plan ─> apply ─> verify
                                                                                   └─> write

The fast read (``fastload``) decides the common case, a file that needs no change, at
libyaml's speed; only files that change pay for the round-trip parse. Whatever the fast reader
refuses (duplicate keys, odd tags, invalid YAML) goes to ``SourceFile.parse``, whose error is
the one reported.

Nothing is written unless the edited text, parsed again, equals for every document the
engine's hardened object (``Plan.hardened``): the object the webhook's patch would produce.
Writes are atomic (``files.write_atomic``). ``run_files`` spreads files over worker
processes and still returns results in input order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hardener.config import Config, default_config
from hardener.engine import plan
from hardener.fixer._load import same_json
from hardener.fixer.documents import describe, holds_pods, object_label, object_skip_reason
from hardener.fixer.fastload import FastDocument, FastLoadError, load_fast
from hardener.fixer.files import (
    STDIN,
    FileReadError,
    FileWriteError,
    Snapshot,
    display_path,
    read_text,
    within,
    write_atomic,
)
from hardener.fixer.source import EditError, SourceError, SourceFile, file_skip_reason
from hardener.image_facts import ImageFacts
from hardener.kubelet import refusals
from hardener.locate import image_references, pod_sites
from hardener.model import Finding, InvalidObjectError, Operation, Plan
from hardener.pointer import join, join_path, split
from hardener.pss import evaluate
from hardener.results import DocumentResult, FileResult, LocatedChange, LocatedFinding
from hardener.rules.user_namespace import INVALID_CHECK, invalid_message
from hardener.userns import conflicts

__all__ = [
    "INVALID_CHECK",
    "KUBELET_CHECK",
    "CheckOptions",
    "FixOptions",
    "check_file",
    "check_text",
    "check_worker",
    "fix_file",
    "fix_text",
    "fix_worker",
    "images_in_files",
    "images_in_text",
    "read_error_result",
    "run_files",
    "same_json",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class FixOptions:
    """How ``fix`` treats a file. ``write=False`` for ``--check`` and ``--diff``.

    ``fast_path=False`` sends every file through the round-trip parser (for measurements and
    tests; the result is the same). ``evaluate=False`` leaves out the engine's findings about
    what still violates the PSS level after the fix (text output does not show them, and they
    cost a PSS evaluation per object). ``images`` holds the facts of the images the files
    name, by ``image`` string as written (the engine decides ``runAsNonRoot`` from them).

    A symbolic link is read and written through only with ``follow_symlinks``, or when its
    target lies inside one of ``link_roots`` (the real paths of the directories walked): a
    repository must not lead ``fix`` to rewrite a file outside it.

    ``rendered=True`` says the text is already rendered (a Helm post-renderer's input), so
    ``{{ }}`` in a value is data, not a template. ``leave_alone`` gives a further reason to
    leave a document untouched (a Helm hook, a CRD), or ``None``; it must be a module-level
    function so that the options stay picklable.
    """

    config: Config = field(default_factory=default_config)
    write: bool = True
    fast_path: bool = True
    evaluate: bool = True
    follow_symlinks: bool = False
    link_roots: tuple[str, ...] = ()
    images: Mapping[str, ImageFacts] | None = None
    rendered: bool = False
    leave_alone: Callable[[Any], str | None] | None = None

    def follows(self, path: str) -> bool:
        """Whether a link at ``path`` is read (and its target written)."""
        return self.follow_symlinks or (os.path.islink(path) and within(path, self.link_roots))


@dataclass(frozen=True)
class CheckOptions:
    """How ``check`` evaluates a file: the PSS level and version, and whether to evaluate the
    objects as ``fix`` would leave them (``after_fix``, planned with ``config``).

    Besides the PSS verdict, ``check`` replays the kubelet's ``runAsNonRoot`` verification
    (finding ``kubelet-run-as-non-root``): without ``images`` it reports only what the
    manifest alone proves (``runAsUser: 0`` with ``runAsNonRoot: true``); with the facts of
    the images, also the containers whose image user the kubelet refuses. A pod that sets
    ``hostUsers: false`` next to what the API server rejects with it (a host namespace,
    ``volumeDevices``, Windows) is finding ``user-namespace-invalid``.

    ``rendered`` as in ``FixOptions``: ``{{ }}`` is data in rendered output.
    """

    level: str = "restricted"
    version: str = "latest"
    after_fix: bool = False
    config: Config = field(default_factory=default_config)
    images: Mapping[str, ImageFacts] | None = None
    rendered: bool = False


class _Document(Protocol):
    """What both readers give for a document: the value and where its parts are."""

    @property
    def index(self) -> int: ...

    @property
    def value(self) -> Any: ...

    def position(self, pointer: str) -> tuple[int, int]: ...


class _Failure(Exception):
    """A file that cannot be processed; carries the message and the place in the file."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _position(document: _Document, pointer: str) -> tuple[int, int]:
    """Where ``pointer`` is, or where the deepest part of it that exists is.

    A change that creates ``securityContext`` in a container is placed on the container's
    ``- name:`` line; one that completes an existing ``securityContext`` on that key.
    """
    tokens = [t for t in split(pointer) if t != "-"]
    while True:
        try:
            return document.position(join(tokens))
        except Exception:  # a pointer a reader cannot place must not lose the report
            if not tokens:
                return 1, 1
            tokens.pop()


def _located_changes(document: _Document, planned: Plan) -> list[LocatedChange]:
    located = []
    for change in planned.changes:
        line, column = _position(document, change.pointer)
        located.append(
            LocatedChange(
                rule=change.rule,
                pointer=change.pointer,
                line=line,
                column=column,
                message=change.message,
                before=change.before,
                after=change.after,
                container=change.container,
            )
        )
    return located


def _located_findings(document: _Document, findings: Sequence[Finding]) -> list[LocatedFinding]:
    located = []
    for finding in findings:
        line, column = _position(document, finding.pointer)
        located.append(
            LocatedFinding(
                check_or_rule=finding.check or finding.rule,
                level=finding.level,
                container=finding.container,
                line=line,
                column=column,
                message=finding.message,
                fixable=finding.fixable,
                pointer=finding.pointer,
                rule=finding.rule,
            )
        )
    return located


def _document_result(document: _Document, skipped: str | None = None) -> DocumentResult:
    kind, namespace, name = describe(document.value)
    line, _ = _position(document, "")
    return DocumentResult(
        index=document.index,
        kind=kind,
        namespace=namespace,
        name=name,
        line=line,
        skipped=skipped,
        holds_pods=holds_pods(document.value),
    )


def _invalid(document: _Document, exc: InvalidObjectError) -> _Failure:
    line, column = _position(document, exc.pointer)
    return _Failure(
        f"document {document.index + 1} ({object_label(document.value)}): "
        f"{exc.pointer or '/'}: {exc.message}; the file was left unchanged",
        line,
        column,
    )


def _read_documents(text: str, fast: bool) -> list[_Document]:
    """The documents of ``text``: from libyaml when it accepts the text, else from the
    round-trip parser (whose ``SourceError`` becomes the reported failure)."""
    if fast:
        try:
            return list(load_fast(text))
        except FastLoadError as exc:
            if exc.final:
                raise _Failure(exc.message, exc.line, exc.column) from exc
    try:
        return list(SourceFile.parse(text).documents)
    except SourceError as exc:
        raise _Failure(exc.message, exc.line, exc.column) from exc


def _file_skip(documents: Sequence[DocumentResult]) -> str | None:
    """A file where no document is worked on, but some were skipped, is skipped as a whole."""
    reasons = [d.skipped for d in documents if d.skipped]
    if reasons and len(reasons) == len(documents):
        return reasons[0]
    return None


def _fail(result: FileResult, failure: _Failure) -> FileResult:
    result.error = failure.message
    result.error_line = failure.line
    result.error_column = failure.column
    result.fixed = None
    return result


# ---------------------------------------------------------------------------------------------
# fix


def _plan_documents(
    documents: Sequence[_Document], options: FixOptions
) -> tuple[list[DocumentResult], dict[int, Plan]]:
    """The result record and, for each document hardener works on, its plan."""
    results: list[DocumentResult] = []
    plans: dict[int, Plan] = {}
    for document in documents:
        if document.value is None:
            continue
        reason = object_skip_reason(document.value)
        if reason is None and options.leave_alone is not None:
            reason = options.leave_alone(document.value)
        record = _document_result(document, reason)
        results.append(record)
        if reason is not None:
            continue
        try:
            planned = plan(
                document.value, options.config, evaluate=options.evaluate, images=options.images
            )
        except InvalidObjectError as exc:
            raise _invalid(document, exc) from exc
        plans[document.index] = planned
        record.changes = _located_changes(document, planned)
        record.findings = _located_findings(document, planned.findings)
    return results, plans


def _verify(text: str, expected: dict[int, Any]) -> None:
    """Raise ``_Failure`` unless ``text`` reads back as the expected objects.

    ``SourceFile.apply`` checks its own output with its own reader; this check reads it with
    libyaml's composer and this package's constructor, so a fault in one reader cannot hide
    itself. Text the fast reader declines is read with ``SourceFile.parse`` instead.
    """
    want = {i: v for i, v in expected.items() if v is not None}
    try:
        got = {d.index: d.value for d in load_fast(text) if d.value is not None}
        reader = "libyaml"
    except FastLoadError:
        try:
            got = {
                d.index: d.value for d in SourceFile.parse(text).documents if d.value is not None
            }
        except SourceError as exc:
            raise _Failure(
                f"internal error: the edited text does not parse ({exc}); the file was left "
                "unchanged, please report this"
            ) from exc
        reader = "the round-trip parser"
    if got.keys() != want.keys():
        raise _Failure(
            f"internal error: the edited text has documents {sorted(got)} where "
            f"{sorted(want)} were expected ({reader}); the file was left unchanged, please "
            "report this"
        )
    for index in sorted(want):
        if not same_json(got[index], want[index]):
            raise _Failure(
                f"internal error: document {index + 1} of the edited text does not read back "
                f"({reader}) as the hardened object; the file was left unchanged, please "
                "report this"
            )


def _guarded(
    text: str, path: str, rendered: bool, work: Callable[[str, FileResult], None]
) -> FileResult:
    """The result of ``work`` on ``text`` (a file to skip is skipped first). A ``_Failure`` is
    the result's placed error, and a failure nobody foresaw is still this file's error: the
    run goes on with the others. Nothing is raised."""
    result = FileResult(path=display_path(path), original=text)
    try:
        reason = None if rendered else file_skip_reason(text)
        if reason is not None:
            result.skipped = reason
        else:
            work(text, result)
    except _Failure as failure:
        return _fail(result, failure)
    except Exception as exc:  # the readers' own errors are placed; this is the last guard
        detail = str(exc)[:200]
        return _fail(
            result,
            _Failure(
                f"internal error while reading the file ({type(exc).__name__}: {detail}); the "
                "file was left unchanged, please report this"
            ),
        )
    return result


def fix_text(text: str, path: str, options: FixOptions | None = None) -> FileResult:
    """Harden the manifests in ``text`` (no file is touched). ``result.fixed`` holds the new
    text when something changes, ``None`` otherwise. Whatever goes wrong is the result's
    error; nothing is raised."""
    options = options or FixOptions()
    return _guarded(text, path, options.rendered, functools.partial(_fix_text, options=options))


def _fix_text(text: str, result: FileResult, options: FixOptions) -> None:
    fast: list[FastDocument] | None = None
    if options.fast_path:
        try:
            fast = load_fast(text)
        except FastLoadError as exc:
            if exc.final:
                raise _Failure(exc.message, exc.line, exc.column) from exc
    planned: tuple[list[DocumentResult], dict[int, Plan]] | None = None
    if fast is not None:
        planned = _plan_documents(fast, options)
        if not any(p.ops for p in planned[1].values()):
            result.documents = planned[0]
            result.skipped = _file_skip(result.documents)
            return
    _edit(text, result, options, fast, planned)


def _edit(
    text: str,
    result: FileResult,
    options: FixOptions,
    fast: list[FastDocument] | None,
    planned: tuple[list[DocumentResult], dict[int, Plan]] | None,
) -> None:
    try:
        source = SourceFile.parse(text)
    except SourceError as exc:
        raise _Failure(exc.message, exc.line, exc.column) from exc
    if planned is None or fast is None or not _same_documents(fast, source.documents):
        # The plans must be made on the values the editor works on.
        planned = _plan_documents(source.documents, options)
    result.documents, plans = planned
    result.skipped = _file_skip(result.documents)
    ops: dict[int, list[Operation]] = {i: p.ops for i, p in plans.items() if p.ops}
    if not ops:
        return
    expected: dict[int, Any] = {
        document.index: plans[document.index].hardened if document.index in ops else document.value
        for document in source.documents
    }
    try:
        fixed = source.apply(ops)
    except EditError as exc:
        raise _Failure(f"cannot edit the file safely: {exc}; the file was left unchanged") from exc
    _verify(fixed, expected)
    result.fixed = fixed if fixed != text else None


def _same_documents(fast: Sequence[_Document], slow: Sequence[_Document]) -> bool:
    return len(fast) == len(slow) and all(
        a.index == b.index and same_json(a.value, b.value) for a, b in zip(fast, slow, strict=True)
    )


def fix_file(path: str, options: FixOptions | None = None) -> FileResult:
    """Read, harden and (with ``options.write``) atomically rewrite one file."""
    options = options or FixOptions()
    # A link is read (and its target written) only when allowed; a link put in place of the
    # file after this look makes the read fail (O_NOFOLLOW).
    try:
        text, snapshot = read_text(path, follow_symlinks=options.follows(path))
    except FileReadError as exc:
        return read_error_result(path, exc)
    result = fix_text(text, path, options)
    if options.write and result.changed and result.fixed is not None:
        _write(path, result, snapshot)
    return result


def _write(path: str, result: FileResult, snapshot: Snapshot) -> None:
    assert result.fixed is not None
    try:
        write_atomic(path, result.fixed, snapshot)
    except FileWriteError as exc:
        _fail(result, _Failure(str(exc)))


def read_error_result(path: str, exc: FileReadError) -> FileResult:
    """The result for a file that could not be read (placed when the error has a place)."""
    return _fail(FileResult(path=display_path(path)), _Failure(exc.message, exc.line, exc.column))


# ---------------------------------------------------------------------------------------------
# check


def check_text(text: str, path: str, options: CheckOptions | None = None) -> FileResult:
    """Evaluate every pod in ``text`` against the options' PSS level and version.

    With ``after_fix``, each object is first hardened the way ``fix`` would (the planned
    changes are listed too); findings are placed at the nearest line of the original text.
    """
    options = options or CheckOptions()
    return _guarded(text, path, options.rendered, functools.partial(_check_text, options=options))


def _check_text(text: str, result: FileResult, options: CheckOptions) -> None:
    documents = _read_documents(text, fast=True)
    for document in documents:
        if document.value is None:
            continue
        skipped = object_skip_reason(document.value)
        record = _document_result(document, skipped)
        result.documents.append(record)
        if skipped is not None:
            continue
        value = document.value
        try:
            # What fix would produce decides what "fixable" means: a violation is fixable
            # when the configured fix makes it go away (not merely when a field is absent:
            # a disabled rule, an opt-out or a privileged container keep it).
            planned = plan(value, options.config, evaluate=False, images=options.images)
            after = evaluate(planned.hardened, level=options.level, version=options.version)
            if options.after_fix:
                record.changes = _located_changes(document, planned)
                violations, remaining = after, None
            else:
                violations = evaluate(value, level=options.level, version=options.version)
                remaining = {(v.check, v.container) for v in after}
            checked = planned.hardened if options.after_fix else value
            refused = _kubelet_findings(checked, options.images)
            refused += _user_namespace_findings(checked)
        except InvalidObjectError as exc:
            raise _invalid(document, exc) from exc
        for violation in violations:
            line, column = _position(document, violation.pointer)
            fixable = violation.fixable and (
                remaining is not None and (violation.check, violation.container) not in remaining
            )
            record.findings.append(
                LocatedFinding(
                    check_or_rule=violation.check,
                    level=violation.level,
                    container=violation.container,
                    line=line,
                    column=column,
                    message=violation.message,
                    fixable=fixable,
                    pointer=violation.pointer,
                )
            )
        record.findings.extend(_located_findings(document, refused))
    result.skipped = _file_skip(result.documents)


KUBELET_CHECK = "kubelet-run-as-non-root"


def _kubelet_findings(obj: Any, images: Mapping[str, ImageFacts] | None) -> list[Finding]:
    """The containers the kubelet would refuse to start, in the kubelet's words."""
    return [
        Finding(
            rule=KUBELET_CHECK,
            message=f'container "{refused.container}" would not start: {refused.reason}',
            pointer=refused.pointer,
            check=KUBELET_CHECK,
            container=refused.container,
        )
        for site in pod_sites(obj)
        for refused in refusals(site, images)
    ]


def _user_namespace_findings(obj: Any) -> list[Finding]:
    """Pods with ``hostUsers: false`` next to a field the API server rejects with it, at that
    field."""
    return [
        Finding(
            rule=INVALID_CHECK,
            message=invalid_message(conflict),
            pointer=join_path(conflict.path),
            check=INVALID_CHECK,
        )
        for site in pod_sites(obj)
        if site.spec.get("hostUsers") is False
        for conflict in conflicts(site)
    ]


def check_file(path: str, options: CheckOptions | None = None) -> FileResult:
    try:
        text, _ = read_text(path)
    except FileReadError as exc:
        return read_error_result(path, exc)
    return check_text(text, path, options)


# ---------------------------------------------------------------------------------------------
# The images a run must look up first


def images_in_text(text: str, *, rendered: bool = False) -> list[str]:
    """The image strings the documents of ``text`` name, each once, in order: what a run looks
    up before it plans. Text that ``fix`` or ``check`` would skip or fail on names none (its
    error is reported when the file is processed)."""
    if not rendered and file_skip_reason(text) is not None:
        return []
    if "image" not in text:  # no container names an image without the key
        return []
    try:
        documents = _read_documents(text, fast=True)
    except _Failure:
        return []
    seen: dict[str, None] = {}
    for document in documents:
        if document.value is None or object_skip_reason(document.value) is not None:
            continue
        try:
            found = image_references(document.value)
        except Exception:  # a malformed object: planning it reports the error with its place
            continue
        seen.update(dict.fromkeys(found))
    return list(seen)


def _file_images(path: str, options: FixOptions | CheckOptions) -> list[str]:
    follow = options.follows(path) if isinstance(options, FixOptions) else True
    try:
        text, _ = read_text(path, follow_symlinks=follow)
    except FileReadError:
        return []
    try:
        return images_in_text(text, rendered=options.rendered)
    except Exception:  # the file's own processing reports what went wrong
        return []


def images_in_files(
    paths: Sequence[str], options: FixOptions | CheckOptions, *, jobs: int = 1
) -> list[str]:
    """The image strings the files name, each once, in order (``-`` is the caller's)."""
    files = [p for p in paths if p != STDIN]
    seen: dict[str, None] = {}
    for found in _in_order(functools.partial(_file_images, options=options), files, jobs):
        seen.update(dict.fromkeys(found))
    return list(seen)


# ---------------------------------------------------------------------------------------------
# Many files


def run_files(
    worker: Callable[[str], FileResult],
    paths: Sequence[str],
    *,
    jobs: int = 1,
    on_result: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """``worker`` over every path, in input order whatever ``jobs`` is.

    ``worker`` must be picklable (a module-level function or a ``functools.partial`` of one)
    when ``jobs > 1``. Paths equal to ``-`` are not handled here (stdin belongs to the caller).
    ``on_result`` is called in the parent process for each result, in order (for progress).
    """
    if STDIN in paths:
        raise ValueError("stdin ('-') is read by the caller, not by run_files")
    results: list[FileResult] = []
    for result in _in_order(worker, paths, jobs):
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _in_order(work: Callable[[str], _T], paths: Sequence[str], jobs: int) -> Iterator[_T]:
    """``work`` over every path, in up to ``jobs`` worker processes, in input order."""
    if jobs <= 1 or len(paths) <= 1:
        yield from map(work, paths)
        return
    workers = min(jobs, len(paths))
    # Small chunks keep the workers busy to the end; results still come back in order.
    chunksize = max(1, min(32, len(paths) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(work, paths, chunksize=chunksize)


def fix_worker(options: FixOptions) -> Callable[[str], FileResult]:
    """A picklable ``fix_file`` bound to ``options``, for ``run_files``."""
    return functools.partial(fix_file, options=options)


def check_worker(options: CheckOptions) -> Callable[[str], FileResult]:
    """A picklable ``check_file`` bound to ``options``, for ``run_files``."""
    return functools.partial(check_file, options=options)
