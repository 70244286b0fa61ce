"""The audit (``AuditReport``) in the format a reader needs: ``text``, ``json``, ``markdown``,
``diff`` or ``html``.

``html`` is the page ``render_html`` makes of the audit's ``Posture`` (``posture_from_audit``):
namespaces are the groups, ``before`` and ``after`` the namespace policy's violations now and
after hardening, and the patch the workload's JSONPatch.

``diff`` is meant to be read, then run: for each workload that would change, either a
``kubectl patch --type json`` command whose operations are the engine's (pointers relative to
the object as the API server stores it, preceded by ``test`` operations on the names of the
containers they address, so a patch applied after the workload changed fails instead of landing
on the wrong container), or, for the kinds whose pod template cannot be changed in place (Pods,
Jobs), the hardened manifest for ``kubectl replace --force``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from collections.abc import Callable
from typing import Any

import yaml

from hardener.locate import KINDS, kind_named
from hardener.pointer import resolve
from hardener.pss import Violation
from hardener.report._audit_results import AuditReport, Policy, UserNamespaceAudit, WorkloadAudit
from hardener.report._html import render_html
from hardener.report._markdown import cell, code
from hardener.report._posture import ChangeLine, FindingLine, Posture, WorkloadPosture
from hardener.report._style import plural
from hardener.userns import KERNEL_IDMAP

__all__ = [
    "AUDIT_FORMATS",
    "kubectl_command",
    "posture_from_audit",
    "render_audit",
    "replace_manifest",
]

AUDIT_FORMATS: tuple[str, ...] = ("text", "json", "markdown", "diff", "html")

# A running Pod's spec, and a Job's pod template, are immutable: re-create instead of patching.
_RECREATE = frozenset(k.kind for k in KINDS if k.immutable)
_PATCH_NOTES = {
    "Deployment": " (a rollout replaces its pods)",
    "StatefulSet": " (a rollout replaces its pods)",
    "DaemonSet": " (a rollout replaces its pods)",
    "ReplicaSet": " (only pods created from now on are hardened)",
    "CronJob": " (from its next run)",
}
_CONTAINER = re.compile(r"^(.*?/(?:initContainers|containers|ephemeralContainers)/\d+)(?:/|$)")
_SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# Labels the Job controller puts on the pod template along with the selector it generates.
_JOB_GENERATED_LABELS = (
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "job-name",
    "batch.kubernetes.io/job-name",
)


def _now_and_after(workload: WorkloadAudit) -> tuple[str, str]:
    """The namespace policy's verdict now and after hardening: ``allowed`` or the count."""
    now = "allowed" if workload.allowed_before else plural(len(workload.before), "violation")
    after = "allowed" if workload.allowed_after else plural(len(workload.after), "violation")
    return now, after


def _verdict(workload: WorkloadAudit) -> str:
    policy = workload.policy
    if policy.level == "privileged":
        return "PSS privileged: nothing enforced"
    now, after = _now_and_after(workload)
    return f"PSS {policy.describe()}: now {now}, after hardening {after}"


def _policy_text(policy: Policy) -> str:
    if policy.source == "label":
        if policy.level == "privileged":
            return "enforces privileged (its label): nothing is checked"
        return f"enforces {policy.describe()} (its label)"
    if policy.source == "config":
        return f"no enforce label: checked against the configured level {policy.describe()}"
    return f"checked against the configured level {policy.describe()}"


def _extra_violations(workload: WorkloadAudit) -> list[Violation]:
    """Violations of the namespace policy after hardening that no finding already states (the
    findings follow the configured level, which may differ from the namespace's)."""
    stated = {(f.check, f.container, f.pointer) for f in workload.findings}
    return [v for v in workload.after if (v.check, v.container, v.pointer) not in stated]


def _user_namespace_lines(section: UserNamespaceAudit) -> list[str]:
    """The user-namespace section of the text report (its first line heads the others)."""
    state = "on" if section.support.default_on else "off"
    out = [
        f"user namespaces (user-namespaces: {section.mode}): {state}: "
        f"{section.support.for_pod(None).reason}"
    ]
    for handler, nodes in section.handlers().items():
        label = f'runtime handler "{handler}"' if handler else "default runtime handler"
        out.append(
            f"  {label}: {len(nodes['with'])} node(s) with support"
            + (f", without: {', '.join(nodes['without'])}" if nodes["without"] else "")
        )
    old = [n for n in section.nodes if n.linux and n.kernel_ok is False]
    if old:
        need = ".".join(map(str, KERNEL_IDMAP))
        out.append(
            f"  kernels older than Linux {need} (idmapped mounts of some volume types fail): "
            + ", ".join(f"{n.name} ({n.kernel})" for n in old)
        )
    s = section.summary()
    out.append(
        f"  workloads running as root: {s['root_workloads']}, maybe (image user not "
        f"known): {s['maybe_root_workloads']}; would move into a user namespace: "
        f"{s['would_move']}; could not: {s['could_not_move']}"
    )
    for w in section.blocked:
        out.append(f"    {w.kind} {w.namespace}/{w.name}: {w.reason}: {w.message}")
    return out


def _target(report: AuditReport, name: Callable[[str], str] = str) -> str:
    """What was audited: ``context C, server S, namespace N.``, each name as ``name`` shows it."""
    where = f"context {name(report.context)}, " if report.context else ""
    scope = f"namespace {name(report.scope)}" if report.scope else "all namespaces"
    return f"{where}server {name(report.server)}, {scope}."


def _sentence(report: AuditReport) -> str:
    s = report.summary()
    parts = [
        f"{plural(s['workloads'], 'workload')} in {plural(s['namespaces'], 'namespace')}",
        f"{s['would_change']} would change ({plural(s['changes'], 'change')})",
        plural(s["findings"], "finding")
        + (f" ({s['unfixable_findings']} need a manual fix)" if s["unfixable_findings"] else ""),
        f"PSS: {s['not_allowed_now']} not allowed now, {s['not_allowed_after_hardening']} "
        "after hardening",
    ]
    if s["exempt"]:
        parts.append(f"{s['exempt']} exempt")
    if s["errors"]:
        parts.append(plural(s["errors"], "error"))
    if s["skipped_owned"]:
        parts.append(f"{s['skipped_owned']} owned by a controller skipped")
    if report.denied:
        parts.append(f"{plural(len(report.denied), 'request')} refused")
    return "hardener audit: " + ", ".join(parts)


def _render_text(report: AuditReport) -> str:
    out: list[str] = []
    for namespace in report.namespaces:
        policy = namespace.policy
        head = f"namespace {namespace.name}: " + _policy_text(policy)
        out.append(head + (f"; {policy.note}" if policy.note else ""))
        for w in namespace.workloads:
            title = f"  {w.kind} {w.name}"
            if w.error:
                out.append(f"{title}: error: {w.error}")
                continue
            if w.exempt:
                out.append(f"{title}: {w.exempt}; {_verdict(w)}")
                continue
            counts = f"{plural(len(w.changes), 'change')}, {plural(len(w.findings), 'finding')}"
            out.append(f"{title}: {counts}; {_verdict(w)}")
            for change in w.changes:
                out.append(f"    [{change.rule}] {change.pointer}: {change.message}")
            for finding in w.findings:
                note = "" if finding.fixable else " (needs a manual fix)"
                out.append(f"    [{finding.check or finding.rule}] {finding.message}{note}")
            for violation in _extra_violations(w):
                out.append(
                    f"    [{violation.check}] {violation.message} (still violates {w.policy.level})"
                )
    if report.skipped_owned:
        owners = ", ".join(
            f"{kind} {count}" for kind, count in sorted(report.skipped_owned.items())
        )
        out.append(f"skipped, owned by a controller (audited through it): {owners}")
    for denied in report.denied:
        out.append(f"not audited: {denied.describe()}")
    if report.user_namespaces is not None:
        out.extend(_user_namespace_lines(report.user_namespaces))
    if report.images is not None:
        out.extend(line[2:] for line in report.images.lines())  # a section of its own
    out.append(_sentence(report))
    return "\n".join(out) + "\n"


def _render_markdown(report: AuditReport) -> str:
    out = [
        "## hardener audit\n\n",
        f"{_target(report, code)}\n\n{cell(_sentence(report))}\n\n",
    ]
    if report.workloads:
        out.append(
            "| Namespace | Workload | Changes | Findings | Policy | Now | After hardening |\n"
            "| --- | --- | ---: | ---: | --- | --- | --- |\n"
        )
        for w in report.workloads:
            now, after = _now_and_after(w)
            if w.error:
                now = after = "error"
            elif w.exempt:
                after = "exempt"
            out.append(
                f"| {code(w.namespace)} | {code(f'{w.kind}/{w.name}')} | {len(w.changes)} | "
                f"{len(w.findings)} | {cell(w.policy.describe())} | {now} | {after} |\n"
            )
        out.append("\n")
    manual = [(w, f) for w in report.workloads for f in w.findings if not f.fixable]
    if manual:
        out.append("### Needs a manual fix\n\n")
        for w, finding in manual:
            out.append(
                f"- {code(f'{w.namespace}/{w.kind}/{w.name}')} "
                f"{code(finding.check or finding.rule)}: {cell(finding.message)}\n"
            )
        out.append("\n")
    errors = [w for w in report.workloads if w.error]
    if errors:
        out.append("### Could not be audited\n\n")
        out.extend(f"- {cell(w.error or '')}\n" for w in errors)
        out.append("\n")
    if report.user_namespaces is not None:
        out.append("### User namespaces\n\n")
        lines = _user_namespace_lines(report.user_namespaces)
        out.extend(f"- {cell(line.strip())}\n" for line in lines)
        out.append("\n")
    if report.denied:
        out.append("### Not audited: requests the server refused\n\n")
        out.extend(f"- {cell(d.describe())}\n" for d in report.denied)
        out.append("\n")
    changed = [w for w in report.workloads if w.changes]
    if changed:
        out.append("### Changes\n\n")
        for w in changed:
            out.append(
                f"<details>\n<summary>{code(f'{w.namespace}/{w.kind}/{w.name}')}: "
                f"{plural(len(w.changes), 'change')}</summary>\n\n"
            )
            out.extend(
                f"- {code(change.rule)} {code(change.pointer)}: {cell(change.message)}\n"
                for change in w.changes
            )
            out.append("\n</details>\n\n")
    return "".join(out)


def _guards(workload: WorkloadAudit) -> list[dict[str, Any]]:
    """``test`` operations on the name of every container the ops address by index."""
    guards: list[dict[str, Any]] = []
    seen: set[str] = set()
    for op in workload.ops:
        match = _CONTAINER.match(op["path"])
        if match is None or match.group(1) in seen:
            continue
        seen.add(match.group(1))
        container = resolve(workload.obj, match.group(1))
        if isinstance(container, dict) and isinstance(container.get("name"), str):
            guards.append(
                {"op": "test", "path": match.group(1) + "/name", "value": container["name"]}
            )
    return guards


def kubectl_command(workload: WorkloadAudit) -> str:
    """A ready-to-run ``kubectl patch --type json`` for one workload, shell-quoted."""
    ops = [*_guards(workload), *(dict(op) for op in workload.ops)]
    patch = json.dumps(ops, separators=(",", ":"), ensure_ascii=False)
    known = kind_named(workload.kind)
    kind = known.kubectl_name if known is not None else workload.kind.lower()
    namespace = workload.namespace
    return shlex.join(
        ["kubectl", "patch", kind, workload.name, "-n", namespace, "--type", "json", "-p", patch]
    )


def replace_manifest(workload: WorkloadAudit) -> dict[str, Any]:
    """The hardened object without the fields the server sets, ready to be created again."""
    manifest = json.loads(json.dumps(workload.hardened))
    manifest.pop("status", None)
    metadata = manifest.get("metadata")
    if isinstance(metadata, dict):
        for key in _SERVER_FIELDS:
            metadata.pop(key, None)
    spec = manifest.get("spec")
    if workload.kind == "Job" and isinstance(spec, dict) and spec.get("manualSelector") is not True:
        # The Job controller generates the selector and its labels; a new Job gets new ones.
        spec.pop("selector", None)
        template = spec.get("template")
        template_meta = template.get("metadata") if isinstance(template, dict) else None
        for meta in (metadata, template_meta):
            labels = meta.get("labels") if isinstance(meta, dict) else None
            if isinstance(meta, dict) and isinstance(labels, dict):
                for key in _JOB_GENERATED_LABELS:
                    labels.pop(key, None)
                if not labels:
                    del meta["labels"]
    result: dict[str, Any] = manifest
    return result


def _render_diff(report: AuditReport) -> str:
    out: list[str] = []
    counts: Counter[str] = Counter()
    for w in report.workloads:
        if not w.ops or w.error or w.exempt:
            continue
        what = f"{w.kind} {w.namespace}/{w.name}: {plural(len(w.changes), 'change')}"
        if w.kind in _RECREATE:
            counts["re-create"] += 1
            reason = (
                "a Pod's security settings cannot be changed while it runs"
                if w.kind == "Pod"
                else "a Job's pod template cannot be changed; re-creating it runs it again"
            )
            body = yaml.safe_dump(replace_manifest(w), sort_keys=False, allow_unicode=True)
            out.append(
                f"# {what}; {reason}. This deletes it and creates it hardened:\n"
                f"kubectl replace --force -f - <<'HARDENER_EOF'\n{body}HARDENER_EOF\n"
            )
        else:
            counts["patch"] += 1
            note = _PATCH_NOTES.get(w.kind, "")
            out.append(f"# {what}{note}\n{kubectl_command(w)}\n")
    out.append(
        f"# hardener audit: {plural(counts['patch'], 'workload')} to patch, "
        f"{counts['re-create']} to re-create\n"
    )
    return "\n".join(out)


def posture_from_audit(report: AuditReport) -> Posture:
    """The audit as the page report's data: one workload per audited object."""
    userns = report.user_namespaces
    result = Posture(
        command="audit",
        level=f"{report.level} ({report.version})",
        group_label="Namespace",
        context=[
            _target(report),
            _sentence(report),
            *(_user_namespace_lines(userns)[:1] if userns is not None else []),
        ],
    )
    for w in report.workloads:
        result.workloads.append(
            WorkloadPosture(
                group=w.namespace,
                kind=w.kind,
                name=w.name,
                where=f"{w.namespace}, enforces {w.policy.describe()} ({w.policy.source})",
                changes=[ChangeLine(c.rule, c.pointer, c.message) for c in w.changes],
                findings=[
                    FindingLine(f.check or f.rule, f.message, f.fixable, f.container, f.level)
                    for f in w.findings
                ],
                before=[] if w.allowed_before else [v.check for v in w.before],
                after=[] if w.allowed_after else [v.check for v in w.after],
                patch=json.dumps([dict(op) for op in w.ops], indent=2) if w.ops else "",
                patch_format="jsonpatch",
                error=w.error,
                exempt=w.exempt,
            )
        )
    result.errors.extend(f"not audited: {d.describe()}" for d in report.denied)
    return result


def render_audit(report: AuditReport, fmt: str, *, version: str) -> str:
    """The audit in ``fmt`` (one of ``AUDIT_FORMATS``), ending with a newline."""
    if fmt == "text":
        return _render_text(report)
    if fmt == "json":
        return json.dumps(report.to_json(version), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _render_markdown(report)
    if fmt == "diff":
        return _render_diff(report)
    if fmt == "html":
        return render_html(posture_from_audit(report), version=version)
    raise ValueError(f"unknown audit format {fmt!r}: choose one of {', '.join(AUDIT_FORMATS)}")
