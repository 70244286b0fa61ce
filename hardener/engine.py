"""The engine: decides, for one object, the operations that harden every pod in it.

``plan(obj, config)`` locates the pod sites, applies the config (profile, enabled rules, enforce,
exemptions), honours the opt-out annotations, keeps Linux-only fields off Windows pods, narrows
the work to new ephemeral containers when asked, runs the rules in registry order and returns the
``Plan``: RFC 6902 operations built directly from the decided changes (never by diffing a copy),
the changes with their reasons, and the findings it could not fix.

Opt-out annotations, on the workload or on the pod template (the template wins)::

    hardener.dev/skip: "true"                    # leave the whole pod alone
    hardener.dev/skip-rules: "fs-group,run-as-non-root"
    skip.hardener.dev/<container>: "all"         # leave one container alone
    skip.hardener.dev/<container>: "read-only-root-filesystem"
    hardener.dev/writable-paths: "/var/cache/nginx,/run"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hardener.config import Config, default_config
from hardener.image_facts import ImageFacts
from hardener.kubelet import is_windows
from hardener.locate import ContainerSite, JsonPath, PodSite, pod_sites
from hardener.model import Change, Decision, Finding, Plan
from hardener.patch import PatchBuilder
from hardener.pointer import join
from hardener.pss import (
    V1_35_USER_NAMESPACES,
    Violation,
    evaluate_pod,
    parse_version,
)
from hardener.records import picklable
from hardener.rules import RULES_BY_ID, RuleContext
from hardener.switch import let_others_run
from hardener.userns import Support

__all__ = [
    "SKIP_ANNOTATION",
    "SKIP_CONTAINER_PREFIX",
    "SKIP_RULES_ANNOTATION",
    "Scope",
    "is_windows",
    "plan",
    "still_violated",
]

SKIP_ANNOTATION: Final = "hardener.dev/skip"
SKIP_RULES_ANNOTATION: Final = "hardener.dev/skip-rules"
SKIP_CONTAINER_PREFIX: Final = "skip.hardener.dev/"
_TRUE: Final = {"true", "yes", "1", "all", "on"}


@dataclass(frozen=True)
class Scope:
    """What an operation may change. ``ephemeral_containers`` set: only those ephemeral
    containers' own ``securityContext`` (the ``pods/ephemeralcontainers`` subresource)."""

    ephemeral_containers: frozenset[str] | None = None


@dataclass
class _OptOuts:
    skip_all: bool = False
    skip_rules: set[str] = field(default_factory=set)
    containers: dict[str, set[str] | None] = field(default_factory=dict)  # None: all rules


def _rule_list(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def _opt_outs(site: PodSite, annotations: Mapping[str, str], findings: list[Finding]) -> _OptOuts:
    if (
        SKIP_ANNOTATION not in annotations
        and SKIP_RULES_ANNOTATION not in annotations
        and not any(key.startswith(SKIP_CONTAINER_PREFIX) for key in annotations)
    ):
        return _NO_OPT_OUTS  # the common case: nothing to read
    result = _OptOuts()
    result.skip_all = annotations.get(SKIP_ANNOTATION, "").strip().lower() in _TRUE

    def known(ids: set[str], key: str) -> set[str]:
        for rule_id in sorted(ids - RULES_BY_ID.keys()):
            findings.append(
                Finding(
                    rule="annotations",
                    message=f"annotation {key} names unknown rule {rule_id!r}; "
                    f"known rules: {', '.join(RULES_BY_ID)}",
                    pointer=join((*site.meta_path, "annotations", key)),
                )
            )
        return ids & RULES_BY_ID.keys()

    if SKIP_RULES_ANNOTATION in annotations:
        result.skip_rules = known(
            _rule_list(annotations[SKIP_RULES_ANNOTATION]), SKIP_RULES_ANNOTATION
        )
    for key, value in annotations.items():
        if key.startswith(SKIP_CONTAINER_PREFIX):
            name = key[len(SKIP_CONTAINER_PREFIX) :]
            ids = _rule_list(value)
            if {i.lower() for i in ids} & _TRUE:
                result.containers[name] = None
            else:
                result.containers[name] = known(ids, key)
    return result


def _skipped(opt_outs: _OptOuts, container: ContainerSite, rule_id: str) -> bool:
    if container.name not in opt_outs.containers:
        return False
    rules = opt_outs.containers[container.name]
    return rules is None or rule_id in rules


def _in_scope(container: ContainerSite, scope: Scope) -> bool:
    if scope.ephemeral_containers is None:
        return True
    return container.field == "ephemeralContainers" and container.name in scope.ephemeral_containers


def plan(
    obj: Any,
    config: Config | None = None,
    *,
    namespace: str | None = None,
    scope: Scope | None = None,
    evaluate: bool = True,
    images: Mapping[str, ImageFacts] | None = None,
    user_namespaces: Support | None = None,
    sites: Sequence[PodSite] | None = None,
) -> Plan:
    """Decide how to harden every pod in ``obj``.

    With ``evaluate`` (the default), the findings end with what still violates the config's
    Pod Security Standards level once the ops are applied (``rule="pss"``), read by the same
    evaluator as ``hardener check``, except where a rule already reported the same check for
    the same container. Raises ``InvalidObjectError`` when a field the rules read has the
    wrong type.

    ``images`` maps each container's ``image`` string, exactly as written, to the facts the
    caller learnt about it (``hardener.images``); the engine itself never looks anything up.
    An image it has no facts for is handled by ``config.image_policy.unknown``.

    ``user_namespaces`` is what the caller learnt of the cluster's support for user
    namespaces (the webhook's and the audit's node watch); it counts only under
    ``user-namespaces: auto``, and without it ``auto`` is off (``fix``, ``check``).

    ``sites`` are ``pod_sites(obj)`` when the caller located them already (the webhook sizes
    the work with them): the pod is located once per object.
    """
    config = config or _DEFAULT
    scope = scope or _ALL
    if sites is None:
        sites = pod_sites(obj)
    if not sites:
        return Plan(hardened=obj)
    builder = PatchBuilder(obj)
    changes: list[Change] = []
    findings: list[Finding] = []
    decisions: list[Decision] = []
    support = Support.for_mode(config.user_namespaces, user_namespaces)
    relaxed = _relaxes_user_namespaces(config.version)
    planned_ids = _planned_ids(config)
    pod_editable = scope.ephemeral_containers is None
    enabled = config.enabled_rules()
    facts: Mapping[str, ImageFacts] = images or {}
    run_as = config.rules["run-as-user"].options
    ids = (int(run_as["user"]), int(run_as["group"]))
    considered = False
    for site in sites:
        if config.is_exempt(site.namespace or namespace, site.name):
            continue
        considered = True
        annotations = site.annotations()
        opt_outs = _opt_outs(site, annotations, findings)
        if opt_outs.skip_all:
            continue
        windows = is_windows(site)
        ctx: RuleContext | None = None
        for rule, settings in enabled:
            if rule.id in opt_outs.skip_rules or (windows and rule.linux_only):
                continue
            if not pod_editable and not rule.ephemeral:
                continue
            if pod_editable and not opt_outs.containers:
                containers = site.containers  # the common case: every container
            else:
                containers = tuple(
                    c
                    for c in site.containers
                    if _in_scope(c, scope) and not _skipped(opt_outs, c, rule.id)
                )
            if not pod_editable and not containers:
                continue
            if ctx is None:
                ctx = RuleContext(
                    rule=rule,
                    site=site,
                    containers=containers,
                    options=settings.options,
                    enforce=settings.enforce,
                    profile=config.profile,
                    pod_editable=pod_editable,
                    builder=builder,
                    changes=changes,
                    findings=findings,
                    annotations=annotations,
                    images=facts,
                    image_policy=config.image_policy,
                    ids=ids,
                    windows=windows,
                    support=support,
                    user_namespace_policy=relaxed,
                    planned_ids=planned_ids,
                    decisions=decisions,
                )
            else:
                # One context per site: the next rule gets it with its own settings.
                ctx.rule = rule
                ctx.containers = containers
                ctx.options = settings.options
                ctx.enforce = settings.enforce
            let_others_run()
            rule.apply(ctx)
    ops = builder.ops()
    if evaluate and considered:
        after = still_violated(
            builder.result(), config, namespace=namespace, reported=findings, sites=sites
        )
        findings.extend(_as_findings(after))
    return Plan(
        ops=ops,
        changes=changes,
        findings=findings,
        decisions=decisions,
        hardened=builder.result(),
    )


def _planned_ids(config: Config) -> tuple[tuple[str, int], ...]:
    """The ids that enabled rules may set on a pod after ``user-namespace`` has decided."""
    planned: list[tuple[str, int]] = []
    fs_group = config.rules["fs-group"]
    if fs_group.enabled:
        planned.append(("fsGroup", int(fs_group.options["fs-group"])))
    if config.images.root == "run-as-user":
        run_as = config.rules["run-as-user"].options
        planned += [("runAsUser", int(run_as["user"])), ("runAsGroup", int(run_as["group"]))]
    return tuple(planned)


def _relaxes_user_namespaces(version: str) -> bool:
    """Whether Pod Security ``restricted`` at ``version`` lets a pod with ``hostUsers: false``
    run as root (v1.35 and later, ``latest``)."""
    parsed = parse_version(version)
    return parsed is None or parsed >= V1_35_USER_NAMESPACES


def still_violated(
    hardened: Any,
    config: Config,
    *,
    namespace: str | None = None,
    scope: Scope | None = None,
    reported: Sequence[Finding] = (),
    sites: Sequence[PodSite] | None = None,
) -> list[Violation]:
    """What the config's Pod Security Standards level and version still flag in ``hardened``,
    the object as the ops leave it (``Plan.hardened``): the one "after hardening" verdict of the
    webhook, ``fix`` and ``audit``.

    ``sites`` are the pod sites located in the object before hardening (``plan``'s): their
    pods are read at the same places in ``hardened``, not located again. Without them, the
    pods of ``hardened`` are located. Those the config exempts (by the object's namespace,
    else ``namespace``, or its name) are none of hardener's business.
    With ``scope`` (an ephemeral-container update) only the containers in scope are reported:
    nothing else may change. A (check, container) pair in ``reported`` (the rules' findings)
    is not reported twice.
    """
    located = pod_sites(hardened) if sites is None else sites
    if located and (config.exempt_namespaces or config.exempt_names):
        located = [
            site for site in located if not config.is_exempt(site.namespace or namespace, site.name)
        ]
    if sites is None:
        pods: list[tuple[PodSite, Any, Any]] = [(s, s.spec, s.metadata) for s in located]
    else:
        # A value the ops left absent (no pod metadata) is read as None, which the evaluator
        # takes as empty.
        pods = [
            (site, _at(hardened, site.spec_path), _at(hardened, site.meta_path)) for site in located
        ]
    violations: list[Violation] = []
    for site, spec, metadata in pods:
        violations += evaluate_pod(
            spec,
            metadata,
            level=config.level,
            version=config.version,
            spec_pointer=site.spec_pointer,
            meta_pointer=site.meta_pointer,
        )
    only = scope.ephemeral_containers if scope is not None else None
    if only is not None:
        violations = [v for v in violations if v.container in only]
    known = {(f.check, f.container) for f in reported if f.check} if reported else None
    if known:
        violations = [v for v in violations if (v.check, v.container) not in known]
    return violations


def _at(document: Any, path: JsonPath) -> Any:
    """What ``path`` holds in ``document`` (``None`` where nothing is)."""
    node = document
    for key in path:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
    return node


def _as_findings(violations: list[Violation]) -> list[Finding]:
    return [
        Finding(
            rule="pss",
            message=violation.message,
            pointer=violation.pointer,
            check=violation.check,
            level=violation.level,
            container=violation.container,
            # Still there after hardening: not something hardener fix sets (e.g.
            # runAsNonRoot left out for an image that runs as root).
            fixable=False,
        )
        for violation in violations
    ]


_DEFAULT: Final = default_config()
_NO_OPT_OUTS: Final = _OptOuts()  # read, never changed
_ALL: Final = Scope()

picklable(Scope)
