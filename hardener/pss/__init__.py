"""Pod Security Standards: the checks of the Pod Security Admission controller, as data and code.

``evaluate_pod`` (one pod spec) and ``evaluate`` (every pod site of an object) say why a pod
does not meet the ``baseline`` or ``restricted`` level at a policy version ``v1.0`` ...
``v1.35`` or ``latest``, with PSA's semantics:

- a check runs from the version in its ``since`` (``runAsUser`` from v1.23, the probe and
  lifecycle ``host`` check from v1.34, ...); versions newer than the newest change, and
  ``latest``, behave like the newest change (``LATEST``);
- ``restricted`` runs every baseline check too, except the ones a restricted check replaces
  (``OVERRIDES``: e.g. ``capabilities_restricted`` replaces ``capabilities_baseline``);
- from v1.25 the restricted checks ``allowPrivilegeEscalation``, ``seccompProfile_restricted``
  and ``capabilities_restricted`` do not apply to pods with ``spec.os.name: windows``;
- from v1.35 a pod with ``hostUsers: false`` is exempt from ``runAsNonRoot`` and
  ``runAsUser``, and baseline's ``procMount`` (``procMount_restricted`` still applies);
- ``runAsNonRoot`` and ``seccompProfile_restricted`` are met at pod level or per container;
  init and ephemeral containers are checked like the others;
- capability names are compared exactly, as PSA compares them: ``drop: [all]`` does not
  meet restricted (``_capabilities``, which hardener's rules read too).

Each check is one decorated function in ``checks/baseline.py`` or ``checks/restricted.py``;
``CHECKS`` is their registry. ``_version`` owns the one grammar of a policy version.
"""

from hardener.pss._capabilities import (
    ALL,
    NET_BIND_SERVICE,
    drops_all,
    loose_all,
    restricted_may_add,
    runtime_name,
)
from hardener.pss._evaluate import Violation, evaluate, evaluate_pod
from hardener.pss._registry import (
    CHECKS,
    LATEST,
    LEVELS,
    OVERRIDES,
    Check,
    active_checks,
    resolve_version,
)
from hardener.pss._version import Version, canonical_version, format_version, parse_version
from hardener.pss.checks._common import V1_35_USER_NAMESPACES

__all__ = [
    "ALL",
    "CHECKS",
    "LATEST",
    "LEVELS",
    "NET_BIND_SERVICE",
    "OVERRIDES",
    "V1_35_USER_NAMESPACES",
    "Check",
    "Version",
    "Violation",
    "active_checks",
    "canonical_version",
    "drops_all",
    "evaluate",
    "evaluate_pod",
    "format_version",
    "loose_all",
    "parse_version",
    "resolve_version",
    "restricted_may_add",
    "runtime_name",
]
