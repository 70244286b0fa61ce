"""hardener's build backend: setuptools, plus mypyc when ``HARDENER_COMPILE=1`` asks for it.

``pyproject.toml`` names this module as the build backend (``backend-path = ["_build"]``).
Every hook is setuptools' own; the two that list build requirements add mypy (which ships
mypyc) only for a compiled build, so a plain ``pip install .`` needs neither mypy nor a C
compiler. ``setup.py`` reads ``COMPILED`` and ``compile_requested`` from here. black does the
same with a hatch build hook that is off unless an environment variable turns it on.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools.build_meta import *  # noqa: F403  (the PEP 517 hooks, re-exported)

ENVIRONMENT_VARIABLE = "HARDENER_COMPILE"

MYPYC_REQUIREMENTS = ["mypy>=2.4,<2.5", "types-PyYAML"]
"""What a compiled build needs beside setuptools: mypyc ships inside mypy (one minor series,
so that the compiled code does not change under a rebuild of the same source), and mypyc
type-checks what the compiled modules import as ``mypy --strict`` does, PyYAML's stubs
included (``config`` imports PyYAML)."""

COMPILED = [
    # Plain data and the JSON pointers every layer uses.
    "hardener/records.py",
    "hardener/switch.py",
    "hardener/model.py",
    "hardener/pointer.py",
    "hardener/image_facts.py",
    # Finding the pod sites, building the patch, the kubelet's and the user-namespace checks.
    "hardener/locate.py",
    "hardener/patch.py",
    "hardener/kubelet.py",
    "hardener/userns.py",
    # The Pod Security Standards evaluator.
    "hardener/pss/__init__.py",
    "hardener/pss/_capabilities.py",
    "hardener/pss/_evaluate.py",
    "hardener/pss/_registry.py",
    "hardener/pss/_version.py",
    "hardener/pss/_view.py",
    "hardener/pss/checks/__init__.py",
    "hardener/pss/checks/_common.py",
    "hardener/pss/checks/_register.py",
    "hardener/pss/checks/baseline.py",
    "hardener/pss/checks/restricted.py",
    # The rules and the engine that runs them.
    "hardener/rules/__init__.py",
    "hardener/rules/base.py",
    "hardener/rules/capabilities.py",
    "hardener/rules/drop_all_capabilities.py",
    "hardener/rules/fs_group.py",
    "hardener/rules/no_privilege_escalation.py",
    "hardener/rules/read_only_root_filesystem.py",
    "hardener/rules/run_as_non_root.py",
    "hardener/rules/run_as_user.py",
    "hardener/rules/seccomp_runtime_default.py",
    "hardener/rules/user_namespace.py",
    "hardener/engine.py",
]
"""The modules compiled, all that ``plan()`` runs per object. Left as Python, with the reason:

- ``hardener/__init__.py``: re-exports only; it also says which variant runs.
- ``hardener/config.py``: parsed once per process, not per object.
- ``hardener/webhook_config.py``, ``results.py``, ``certs.py``, ``nodewatch.py``: once per process
  or per request, not per pod; their time goes to the kubernetes client and cryptography.
- ``webhook``, ``fixer``, ``audit``, ``cli``, ``report``, ``images``: their time goes to
  aiohttp, ruamel.yaml, Jinja2, the network and the file system; their tests replace parts of
  them at run time, which compiled code would not see.
"""


def compile_requested() -> bool:
    """``HARDENER_COMPILE`` set to ``1`` (or ``true``, ``yes``, ``on``)."""
    return os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    # Not setuptools' hook: that one runs setup.py to collect ``setup_requires``, and setup.py
    # imports mypyc for a compiled build, before this answer could have installed it.
    # hardener has no ``setup_requires``; ``build-system.requires`` is installed either way.
    return list(MYPYC_REQUIREMENTS) if compile_requested() else []


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return get_requires_for_build_wheel(config_settings)
