"""hardener: harden Kubernetes pods automatically.

The engine is a small public API for programs that embed it::

    import hardener

    config = hardener.load_config("hardener.yaml")     # or hardener.default_config()
    result = hardener.plan(deployment, config)          # a Plan
    result.ops        # RFC 6902 operations (apply with jsonpatch)
    result.changes    # what was set, by which rule, and why
    result.findings   # what is still wrong and was left alone

Everything not listed in ``__all__`` is private and may change without notice.
"""

from hardener.config import Config, default_config, load_config, parse_config
from hardener.engine import Scope, plan
from hardener.locate import ContainerSite, PodSite, pod_sites
from hardener.model import (
    Change,
    ConfigError,
    Finding,
    HardenerError,
    InvalidObjectError,
    Operation,
    Plan,
    PointerError,
)
from hardener.rules import RULES, Rule

__version__ = "0.1.0.dev0"

__all__ = [
    "RULES",
    "Change",
    "Config",
    "ConfigError",
    "ContainerSite",
    "Finding",
    "HardenerError",
    "InvalidObjectError",
    "Operation",
    "Plan",
    "PodSite",
    "PointerError",
    "Rule",
    "Scope",
    "__version__",
    "default_config",
    "load_config",
    "parse_config",
    "plan",
    "pod_sites",
]
