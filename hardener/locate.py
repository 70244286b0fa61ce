"""Where the pod specs are: one function turns any Kubernetes object into its pod sites.

A *pod site* is one pod spec inside an object, with the JSON pointers of the spec, of the pod
metadata that goes with it, and of every container. Nothing downstream of this module knows
about kinds: rules and the engine only see pod sites.

It also owns the Kubernetes shapes every face derives from: ``KINDS`` names each built-in kind
that holds a pod spec, with its API group, version, resource and where its pod template lives,
and ``CONTAINER_FIELDS`` the container lists. The webhook's rules and kinds, the fixer's choice of
documents, the audit's listings and the webhook configuration all read them, so adding a kind
is one line here.

The shapes handled, by where the pod spec lives:

==========================================================  ===================================
kind                                                        pod spec
==========================================================  ===================================
Pod                                                         ``/spec``
PodTemplate                                                 ``/template/spec``
CronJob                                                     ``/spec/jobTemplate/spec/template/spec``
List (``items[*]``, any ``*List``)                          each item, recursively
anything else with ``spec.template.spec.containers``        ``/spec/template/spec``
(Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, Argo Rollout, Knative Service…)
==========================================================  ===================================

The fields that rules read are checked for their JSON type here, so a string where a pod spec
belongs becomes an ``InvalidObjectError`` that names the field, never a crash further in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, Literal

from hardener.model import InvalidObjectError, JSONObject, json_type
from hardener.pointer import join_path
from hardener.records import picklable

__all__ = [
    "APPARMOR_CONTAINER_ANNOTATION_PREFIX",
    "CONTAINER_FIELDS",
    "KINDS",
    "SECCOMP_CONTAINER_ANNOTATION_PREFIX",
    "SECCOMP_POD_ANNOTATION",
    "ContainerSite",
    "JsonPath",
    "PodSite",
    "WorkloadKind",
    "declares_windows",
    "image_references",
    "is_pod_spec",
    "kind_named",
    "pod_sites",
    "pod_spec_places",
]

JsonPath = tuple[str | int, ...]
"""Keys and indices from a document's root to a value (not a file path)."""
ContainerField = Literal["containers", "initContainers", "ephemeralContainers"]
CONTAINER_FIELDS: Final[tuple[ContainerField, ...]] = (
    "initContainers",
    "containers",
    "ephemeralContainers",
)

SECCOMP_POD_ANNOTATION: Final = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX: Final = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_CONTAINER_ANNOTATION_PREFIX: Final = "container.apparmor.security.beta.kubernetes.io/"
"""The legacy annotations that set a seccomp or AppArmor profile, followed by a container name
where they name one."""


def declares_windows(spec: Any) -> bool:
    """The pod spec says ``os.name: windows``, exactly as the API server's validation and Pod
    Security Admission read it (``hardener.kubelet.is_windows`` also reads the node selector,
    as the kubelet does)."""
    os_field = spec.get("os") if isinstance(spec, dict) else None
    return isinstance(os_field, dict) and os_field.get("name") == "windows"


@dataclass(frozen=True)
class WorkloadKind:
    """A built-in kind that holds a pod spec.

    ``template`` is where its pod template (``metadata`` and ``spec``) lives, ``()`` for a Pod,
    which is its own template. ``admitted``: the webhook hardens it on admission. ``owned``:
    usually created by a controller, whose own template is the place to harden. ``immutable``:
    its pod spec cannot be changed once created (re-create it instead of patching).
    """

    kind: str
    group: str  # "" for the core group
    version: str
    resource: str  # plural, as in RBAC and admission rules
    template: JsonPath
    admitted: bool = True
    owned: bool = False
    immutable: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_resource(self) -> str:
        """``deployments.apps``: the resource with its group, as RBAC errors name it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def kubectl_name(self) -> str:
        """``deployment.apps``: qualified, so a custom resource of the same kind never wins."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()


_TEMPLATE: Final[JsonPath] = ("spec", "template")

KINDS: Final[tuple[WorkloadKind, ...]] = (
    WorkloadKind("Deployment", "apps", "v1", "deployments", _TEMPLATE),
    WorkloadKind("StatefulSet", "apps", "v1", "statefulsets", _TEMPLATE),
    WorkloadKind("DaemonSet", "apps", "v1", "daemonsets", _TEMPLATE),
    WorkloadKind("ReplicaSet", "apps", "v1", "replicasets", _TEMPLATE, owned=True),
    WorkloadKind("ReplicationController", "", "v1", "replicationcontrollers", _TEMPLATE),
    WorkloadKind("Job", "batch", "v1", "jobs", _TEMPLATE, owned=True, immutable=True),
    WorkloadKind("CronJob", "batch", "v1", "cronjobs", ("spec", "jobTemplate", *_TEMPLATE)),
    WorkloadKind("Pod", "", "v1", "pods", (), owned=True, immutable=True),
    WorkloadKind("PodTemplate", "", "v1", "podtemplates", ("template",), admitted=False),
)
"""Every built-in kind that holds a pod spec. Any other kind with
``spec.template.spec.containers`` (an Argo Rollout, a Knative Service) is handled too, by shape."""

_KINDS_BY_NAME: Final = {k.kind: k for k in KINDS}
# Kinds whose pod template sits at spec.template: a wrong type there is an error, not a
# sign that the object is something else.
_WORKLOAD_KINDS: Final = frozenset(k.kind for k in KINDS if k.template == _TEMPLATE)


def kind_named(kind: str) -> WorkloadKind | None:
    """The built-in kind of that name, or ``None`` (custom resources, kinds with no pod)."""
    return _KINDS_BY_NAME.get(kind)


@dataclass(eq=False)
class ContainerSite:
    """One container of a pod site (compared by identity: it stands for one place)."""

    field: ContainerField
    index: int
    path: JsonPath
    name: str
    container: JSONObject

    @property
    def pointer(self) -> str:
        return join_path(self.path)


@dataclass(eq=False)
class PodSite:
    """One pod spec inside an object.

    ``meta_path`` is the pod (template) metadata; ``owner_meta_path`` the metadata of the object
    that holds the template (equal to ``meta_path`` for a bare Pod). ``item_path`` is the
    object inside a List that carries this site (empty for a top-level object).
    """

    item_path: JsonPath
    kind: str
    name: str | None
    namespace: str | None
    spec_path: JsonPath
    meta_path: JsonPath
    owner_meta_path: JsonPath
    spec: JSONObject
    metadata: JSONObject
    owner_metadata: JSONObject
    containers: tuple[ContainerSite, ...]

    @property
    def spec_pointer(self) -> str:
        return join_path(self.spec_path)

    @property
    def meta_pointer(self) -> str:
        return join_path(self.meta_path)

    @cached_property
    def host_process(self) -> bool:
        """A Windows HostProcess pod (``windowsOptions.hostProcess`` on the pod or a
        container): it runs as a node account with the host's privileges by design."""
        holders: list[JSONObject] = [self.spec, *(c.container for c in self.containers)]
        for holder in holders:
            sc = holder.get("securityContext")
            options = sc.get("windowsOptions") if isinstance(sc, dict) else None
            if isinstance(options, dict) and options.get("hostProcess") is True:
                return True
        return False

    def annotations(self) -> dict[str, str]:
        """Annotations of the owner, overridden by those of the pod template.

        A value that is not text is read as YAML wrote it when it is a scalar (``true``,
        ``1``: what the user meant as text) and left out when it is an array or an object:
        the wrong type, which the API server rejects, and not something to stringify.
        """
        merged: dict[str, str] = {}
        for meta in (self.owner_metadata, self.metadata):
            notes = meta.get("annotations")
            if isinstance(notes, dict):
                merged.update(
                    {
                        k: v if isinstance(v, str) else str(v)
                        for k, v in notes.items()
                        if isinstance(v, str | bool | int | float)
                    }
                )
        return merged


_EMPTY: Final[JSONObject] = {}


def is_pod_spec(value: Any) -> bool:
    return isinstance(value, dict) and "containers" in value


def _object(
    parent: JSONObject, key: str, path: JsonPath, *, required: bool = False
) -> JSONObject | None:
    value = parent.get(key)
    if value is None:
        if required:
            raise InvalidObjectError(join_path((*path, key)), "is required and must be an object")
        return None
    if not isinstance(value, dict):
        raise InvalidObjectError(
            join_path((*path, key)), f"must be an object, not {json_type(value)}"
        )
    return value


def _check_security_context(holder: JSONObject, path: JsonPath) -> None:
    sc = _object(holder, "securityContext", path)
    if sc is None:
        return
    sc_path = (*path, "securityContext")
    caps = _object(sc, "capabilities", sc_path)
    if caps is not None:
        for key in ("add", "drop"):
            items = caps.get(key)
            if items is not None and not isinstance(items, list):
                raise InvalidObjectError(
                    join_path((*sc_path, "capabilities", key)),
                    f"must be an array, not {json_type(items)}",
                )
    _object(sc, "seccompProfile", sc_path)
    _object(sc, "windowsOptions", sc_path)


def _containers(spec: JSONObject, spec_path: JsonPath) -> tuple[ContainerSite, ...]:
    sites: list[ContainerSite] = []
    for field in CONTAINER_FIELDS:
        items = spec.get(field)
        if items is None:
            continue
        if not isinstance(items, list):
            raise InvalidObjectError(
                join_path((*spec_path, field)), f"must be an array, not {json_type(items)}"
            )
        for index, container in enumerate(items):
            path = (*spec_path, field, index)
            if not isinstance(container, dict):
                raise InvalidObjectError(
                    join_path(path), f"a container must be an object, not {json_type(container)}"
                )
            name = container.get("name")
            for key in ("volumeMounts",):
                value = container.get(key)
                if value is not None and not isinstance(value, list):
                    raise InvalidObjectError(
                        join_path((*path, key)), f"must be an array, not {json_type(value)}"
                    )
            _check_security_context(container, path)
            sites.append(
                ContainerSite(
                    field=field,
                    index=index,
                    path=path,
                    name=name if isinstance(name, str) else f"{field}[{index}]",
                    container=container,
                )
            )
    return tuple(sites)


def _site(
    obj: JSONObject,
    item_path: JsonPath,
    template_path: tuple[str, ...],
    kind: str,
) -> PodSite:
    """Build the site whose pod template (``metadata`` + ``spec``) sits at ``template_path``."""
    holder: JSONObject = obj
    walked: JsonPath = item_path
    for key in template_path:
        child = _object(holder, key, walked, required=True)
        assert child is not None
        holder = child
        walked = (*walked, key)
    spec_path = (*walked, "spec")
    spec = _object(holder, "spec", walked, required=True)
    assert spec is not None
    containers = spec.get("containers")
    if not isinstance(containers, list):
        raise InvalidObjectError(
            join_path((*spec_path, "containers")),
            "must be an array of containers, not " + json_type(containers),
        )
    for key in ("volumes",):
        value = spec.get(key)
        if value is not None and not isinstance(value, list):
            raise InvalidObjectError(
                join_path((*spec_path, key)), f"must be an array, not {json_type(value)}"
            )
    for key in ("nodeSelector", "os"):
        _object(spec, key, spec_path)
    _check_security_context(spec, spec_path)
    metadata = _object(holder, "metadata", walked) or _EMPTY
    owner_metadata = _object(obj, "metadata", item_path) or _EMPTY
    name = owner_metadata.get("name")
    namespace = owner_metadata.get("namespace")
    return PodSite(
        item_path=item_path,
        kind=kind,
        name=name if isinstance(name, str) else None,
        namespace=namespace if isinstance(namespace, str) else None,
        spec_path=spec_path,
        meta_path=(*walked, "metadata"),
        owner_meta_path=(*item_path, "metadata"),
        spec=spec,
        metadata=metadata,
        owner_metadata=owner_metadata,
        containers=_containers(spec, spec_path),
    )


def _walk(obj: Any, item_path: JsonPath) -> Iterator[PodSite]:
    if not isinstance(obj, dict):
        if item_path:
            raise InvalidObjectError(
                join_path(item_path), f"a list item must be an object, not {json_type(obj)}"
            )
        raise InvalidObjectError("", f"a Kubernetes object must be a mapping, not {json_type(obj)}")
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) else ""
    items = obj.get("items")
    if kind == "List" or (kind.endswith("List") and isinstance(items, list)):
        if items is None:
            return
        if not isinstance(items, list):
            raise InvalidObjectError(
                join_path((*item_path, "items")), f"must be an array, not {json_type(items)}"
            )
        for index, item in enumerate(items):
            yield from _walk(item, (*item_path, "items", index))
        return
    spec = obj.get("spec")
    if kind == "Pod":
        if spec is None:
            return
        # A bare Pod: the object is its own template.
        yield _site(obj, item_path, (), kind)
        return
    if kind == "PodTemplate":
        template = obj.get("template")
        if isinstance(template, dict) and template.get("spec") is not None:
            yield _site(obj, item_path, ("template",), kind)
        elif template is not None and not isinstance(template, dict):
            raise InvalidObjectError(
                join_path((*item_path, "template")), f"must be an object, not {json_type(template)}"
            )
        return
    if not isinstance(spec, dict):
        if spec is not None and kind in _WORKLOAD_KINDS:
            raise InvalidObjectError(
                join_path((*item_path, "spec")), f"must be an object, not {json_type(spec)}"
            )
        return
    if kind == "CronJob":
        job_template = spec.get("jobTemplate")
        if job_template is None:
            return
        yield _site(obj, item_path, ("spec", "jobTemplate", "spec", "template"), kind)
        return
    template = spec.get("template")
    if template is None:
        return
    if not isinstance(template, dict):
        if kind in _WORKLOAD_KINDS:
            raise InvalidObjectError(
                join_path((*item_path, "spec", "template")),
                f"must be an object, not {json_type(template)}",
            )
        return
    template_spec = template.get("spec")
    if kind in _WORKLOAD_KINDS or (
        isinstance(template_spec, dict) and "containers" in template_spec
    ):
        if template_spec is None:
            return
        yield _site(obj, item_path, ("spec", "template"), kind)


def pod_sites(obj: Any) -> list[PodSite]:
    """Every pod spec in ``obj``, in document order. Objects with no pod spec give ``[]``.

    Raises ``InvalidObjectError`` when a field on the way to, or inside, a pod spec has the
    wrong JSON type.
    """
    return list(_walk(obj, ()))


def image_references(obj: Any, sites: Sequence[PodSite] | None = None) -> list[str]:
    """The image references the containers of ``obj`` name, as written, each once, in document
    order: the keys of the image facts that ``plan(..., images=...)`` takes. A container whose
    ``image`` is missing or not a string names none. Raises like ``pod_sites``; ``sites`` are
    ``pod_sites(obj)`` when the caller has them already."""
    seen: dict[str, None] = {}
    for site in pod_sites(obj) if sites is None else sites:
        for container in site.containers:
            image = container.container.get("image")
            if isinstance(image, str) and image:
                seen.setdefault(image, None)
    return list(seen)


def pod_spec_places(obj: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """Where ``pod_sites`` looks for pod specs, with what stands there, without judging its
    shape (a value of the wrong type is yielded as it is). A CronJob whose job template has no
    pod spec yields ``{}`` for it, so that a caller can tell a partial object."""
    if not isinstance(obj, dict):
        return
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) else ""
    items = obj.get("items")
    if kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            yield from pod_spec_places(item, (*path, "items", index))
        return
    spec = obj.get("spec")
    if kind == "Pod":
        if spec is not None:
            yield (*path, "spec"), spec
        return
    if kind == "PodTemplate":
        template = obj.get("template")
        if isinstance(template, dict) and template.get("spec") is not None:
            yield (*path, "template", "spec"), template["spec"]
        return
    if not isinstance(spec, dict):
        return
    if kind == "CronJob":
        job = spec.get("jobTemplate")
        job_spec = job.get("spec") if isinstance(job, dict) else None
        template = job_spec.get("template") if isinstance(job_spec, dict) else None
        where: JsonPath = (*path, "spec", "jobTemplate", "spec", "template", "spec")
        if isinstance(template, dict) and template.get("spec") is not None:
            yield where, template["spec"]
        elif (
            isinstance(job, dict)
            and (job_spec is None or isinstance(job_spec, dict))
            and (template is None or isinstance(template, dict))
        ):
            yield where, {}
        return
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    template_spec = template.get("spec")
    if template_spec is None:
        return
    if kind in _WORKLOAD_KINDS or (
        isinstance(template_spec, dict) and "containers" in template_spec
    ):
        yield (*path, "spec", "template", "spec"), template_spec


picklable(ContainerSite, PodSite)
