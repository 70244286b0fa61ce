"""The ordered registry of hardener's rules.

The order is the order in which rules run on a pod site, and so the order of their operations:
later rules see what earlier ones decided (``run-as-non-root`` sees the pod's ``runAsUser``
that ``run-as-user`` set, which makes ``runAsNonRoot`` safe whatever the image, and the
``hostUsers: false`` that ``user-namespace`` set, which lets a root image keep its user;
``user-namespace`` sees the ids that ``run-as-user`` set; ``fs-group``
sees the volumes that ``read-only-root-filesystem`` added, and the group that ``run-as-user``
set;
``no-privilege-escalation`` sees the capabilities that an enforced ``drop-all-capabilities``
removed, so it never sets ``allowPrivilegeEscalation: false`` next to ``SYS_ADMIN``).
"""

from __future__ import annotations

from typing import Final

from hardener.rules import (
    drop_all_capabilities,
    fs_group,
    no_privilege_escalation,
    read_only_root_filesystem,
    run_as_non_root,
    run_as_user,
    seccomp_runtime_default,
    user_namespace,
)
from hardener.rules.base import Rule, RuleContext

__all__ = ["RULES", "RULES_BY_ID", "Rule", "RuleContext"]

RULES: Final[tuple[Rule, ...]] = (
    run_as_user.RULE,
    user_namespace.RULE,
    run_as_non_root.RULE,
    seccomp_runtime_default.RULE,
    drop_all_capabilities.RULE,
    no_privilege_escalation.RULE,
    read_only_root_filesystem.RULE,
    fs_group.RULE,
)

RULES_BY_ID: Final[dict[str, Rule]] = {rule.id: rule for rule in RULES}
