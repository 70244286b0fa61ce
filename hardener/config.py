"""The config file: one YAML file, the same for the webhook and the fixer.

::

    profile: restricted          # restricted (default) | baseline
    mode: mutate                 # mutate | warn (the webhook only warns, never patches)
    level: restricted            # Pod Security Standards level reported as still violated
    version: latest              # PSS policy version: latest | v1.NN
    ids:                         # defaults for the rules that set IDs
      user: 65532
      group: 65532
      fs-group: 65532
    writable-paths: [/tmp]       # emptyDir mounts that come with readOnlyRootFilesystem
    rules:                       # per rule: enabled, enforce, and the rule's options
      run-as-user: {enabled: true}
      fs-group: {only-with-volumes: true}
      no-privilege-escalation: {enforce: true}
    exempt:                      # globs; exempt objects are never changed
      namespaces: [kube-*]
      names: [debug-*]
    webhook:
      deadline-seconds: 3.0      # answer allowed-without-patch past this
      max-body-bytes: 3145728
    images:
      root: keep                 # keep | run-as-user: an image that runs as root
      unknown: keep              # keep | assume-nonroot: an image whose user is not known

Every error is a ``ConfigError`` that starts ``invalid config:`` and names the file, the key
and the allowed values.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from hardener.image_facts import ROOT_POLICIES, UNKNOWN_POLICIES, ImagePolicy
from hardener.model import ConfigError
from hardener.rules import RULES, RULES_BY_ID, Rule

__all__ = [
    "MODES",
    "PROFILES",
    "Config",
    "RuleSettings",
    "WebhookSettings",
    "default_config",
    "load_config",
    "parse_config",
]

PROFILES = ("restricted", "baseline")
MODES = ("mutate", "warn")
LEVELS = ("baseline", "restricted")
_TOP_KEYS = (
    "profile",
    "mode",
    "level",
    "version",
    "ids",
    "writable-paths",
    "rules",
    "exempt",
    "webhook",
    "images",
)
_ID_KEYS = {
    "user": ("run-as-user", "user"),
    "group": ("run-as-user", "group"),
    "fs-group": ("fs-group", "fs-group"),
}


@dataclass(frozen=True)
class RuleSettings:
    enabled: bool
    enforce: bool
    options: Mapping[str, Any]


@dataclass(frozen=True)
class WebhookSettings:
    deadline_seconds: float = 3.0
    max_body_bytes: int = 3 * 1024 * 1024


@dataclass(frozen=True)
class Config:
    profile: str = "restricted"
    mode: str = "mutate"
    level: str = "restricted"
    version: str = "latest"
    rules: Mapping[str, RuleSettings] = field(default_factory=dict)
    exempt_namespaces: tuple[str, ...] = ()
    exempt_names: tuple[str, ...] = ()
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    image_policy: ImagePolicy = field(default_factory=ImagePolicy)
    """``images.root`` and ``images.unknown``: what to do with images whose user does not let
    ``runAsNonRoot`` stand alone."""
    source: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The data the config was parsed from, to derive variants (``with_profile``)."""

    def rule(self, rule_id: str) -> RuleSettings:
        return self.rules[rule_id]

    def enabled_rules(self) -> tuple[tuple[Rule, RuleSettings], ...]:
        """The enabled rules in registry order, with their settings (worked out once)."""
        return self._enabled

    @cached_property
    def _enabled(self) -> tuple[tuple[Rule, RuleSettings], ...]:
        return tuple((rule, self.rules[rule.id]) for rule in RULES if self.rules[rule.id].enabled)

    def is_exempt(self, namespace: str | None, name: str | None) -> bool:
        if namespace is not None and any(
            fnmatch.fnmatchcase(namespace, glob) for glob in self.exempt_namespaces
        ):
            return True
        return name is not None and any(
            fnmatch.fnmatchcase(name, glob) for glob in self.exempt_names
        )

    def with_profile(self, profile: str) -> Config:
        """The same config under another profile (rules keep their explicit settings)."""
        return parse_config({**self.raw, "profile": profile}, self.source or "<config>")


def _default_rules(profile: str) -> dict[str, RuleSettings]:
    return {
        rule.id: RuleSettings(
            enabled=rule.enabled_by_default and profile in rule.profiles,
            enforce=False,
            options=dict(rule.options),
        )
        for rule in RULES
    }


def default_config(profile: str = "restricted") -> Config:
    if profile not in PROFILES:
        raise ConfigError(
            f"invalid config: profile: {profile!r} is not one of {', '.join(PROFILES)}"
        )
    return parse_config({"profile": profile}, "<default>")


def load_config(path: str | Path) -> Config:
    """Read and validate a config file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"invalid config: {source}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"invalid config: {source}: not UTF-8 text ({exc.reason})") from exc
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid config: {where}: {problem}") from exc
    return parse_config({} if data is None else data, source)


def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"invalid config: {source}: {key}: {message}")


def _choice(
    data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, source: str
) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise _fail(source, key, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
    return str(value)


def _strings(value: Any, source: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, key, "must be a list of strings")
    return tuple(value)


def _check_option(source: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _fail(source, key, f"must be true or false, not {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, key, f"must be an integer, not {value!r}")
        if value < 0 or value > 2**31 - 1:
            raise _fail(source, key, f"must be between 0 and 2147483647, not {value}")
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(source, key, "must be a list of strings")
        if any(not v.startswith("/") for v in value):
            raise _fail(source, key, "paths must be absolute (start with '/')")
    return value


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate a config given as data (what the YAML file holds)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"invalid config: {source}: the top level must be a mapping")
    for key in data:
        if key not in _TOP_KEYS:
            raise _fail(source, str(key), f"unknown key; allowed: {', '.join(_TOP_KEYS)}")
    profile = _choice(data, "profile", PROFILES, "restricted", source)
    mode = _choice(data, "mode", MODES, "mutate", source)
    level = _choice(data, "level", LEVELS, "restricted", source)
    version = data.get("version", "latest")
    if not isinstance(version, str) or not (version == "latest" or _is_version(version)):
        raise _fail(
            source, "version", f"{version!r} is not allowed; allowed: latest, v1.0 ... v1.NN"
        )

    rules = _default_rules(profile)
    ids = data.get("ids") or {}
    if not isinstance(ids, Mapping):
        raise _fail(source, "ids", "must be a mapping of user, group, fs-group")
    for key, value in ids.items():
        if key not in _ID_KEYS:
            raise _fail(source, f"ids.{key}", f"unknown key; allowed: {', '.join(_ID_KEYS)}")
        rule_id, option = _ID_KEYS[key]
        _check_option(source, f"ids.{key}", value, 0)
        if value == 0:
            raise _fail(source, f"ids.{key}", "must not be 0 (root)")
        settings = rules[rule_id]
        rules[rule_id] = replace(settings, options={**settings.options, option: value})
    if "writable-paths" in data:
        paths = _check_option(source, "writable-paths", data["writable-paths"], [])
        settings = rules["read-only-root-filesystem"]
        rules["read-only-root-filesystem"] = replace(
            settings, options={**settings.options, "writable-paths": list(paths)}
        )

    rule_data = data.get("rules") or {}
    if not isinstance(rule_data, Mapping):
        raise _fail(source, "rules", "must be a mapping of rule id to settings")
    for rule_id, settings_data in rule_data.items():
        if rule_id not in RULES_BY_ID:
            raise _fail(
                source, f"rules.{rule_id}", f"unknown rule; allowed: {', '.join(RULES_BY_ID)}"
            )
        rule = RULES_BY_ID[rule_id]
        if isinstance(settings_data, bool):
            settings_data = {"enabled": settings_data}
        if settings_data is None:
            settings_data = {}
        if not isinstance(settings_data, Mapping):
            raise _fail(source, f"rules.{rule_id}", "must be a mapping (enabled, enforce, options)")
        current = rules[rule_id]
        enabled, enforce, options = current.enabled, current.enforce, dict(current.options)
        for key, value in settings_data.items():
            where = f"rules.{rule_id}.{key}"
            if key == "enabled":
                enabled = _check_option(source, where, value, True)
            elif key == "enforce":
                enforce = _check_option(source, where, value, True)
            elif key in rule.options:
                options[key] = _check_option(source, where, value, rule.options[key])
                if (
                    isinstance(rule.options[key], int)
                    and not isinstance(rule.options[key], bool)
                    and value == 0
                ):
                    raise _fail(source, where, "must not be 0 (root)")
            else:
                allowed = ["enabled", "enforce", *rule.options]
                raise _fail(source, where, f"unknown option; allowed: {', '.join(allowed)}")
        rules[rule_id] = RuleSettings(enabled=enabled, enforce=enforce, options=options)

    exempt = data.get("exempt") or {}
    if not isinstance(exempt, Mapping):
        raise _fail(source, "exempt", "must be a mapping with namespaces and names")
    for key in exempt:
        if key not in ("namespaces", "names"):
            raise _fail(source, f"exempt.{key}", "unknown key; allowed: namespaces, names")

    hook = data.get("webhook") or {}
    if not isinstance(hook, Mapping):
        raise _fail(source, "webhook", "must be a mapping")
    for key in hook:
        if key not in ("deadline-seconds", "max-body-bytes"):
            raise _fail(
                source, f"webhook.{key}", "unknown key; allowed: deadline-seconds, max-body-bytes"
            )
    deadline = hook.get("deadline-seconds", 3.0)
    if (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not 0 < deadline <= 30
    ):
        raise _fail(
            source, "webhook.deadline-seconds", f"must be a number in (0, 30], not {deadline!r}"
        )
    max_body = hook.get("max-body-bytes", 3 * 1024 * 1024)
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body <= 0:
        raise _fail(
            source, "webhook.max-body-bytes", f"must be a positive integer, not {max_body!r}"
        )

    config = Config(
        image_policy=_image_policy(data.get("images"), source),
        profile=profile,
        mode=mode,
        level=level,
        version=version,
        rules=rules,
        exempt_namespaces=_strings(exempt.get("namespaces"), source, "exempt.namespaces"),
        exempt_names=_strings(exempt.get("names"), source, "exempt.names"),
        webhook=WebhookSettings(deadline_seconds=float(deadline), max_body_bytes=max_body),
        source=None if source.startswith("<") else source,
        raw=dict(data),
    )
    return config


def _image_policy(block: Any, source: str) -> ImagePolicy:
    """``images.root`` and ``images.unknown``; the rest of the ``images`` block (lookups,
    registries, the table) is read where the lookups are made."""
    if block is None:
        return ImagePolicy()
    if not isinstance(block, Mapping):
        raise _fail(source, "images", "must be a mapping")
    root = block.get("root", "keep")
    unknown = block.get("unknown", "keep")
    for key, value, allowed in (
        ("root", root, ROOT_POLICIES),
        ("unknown", unknown, UNKNOWN_POLICIES),
    ):
        if value not in allowed:
            raise _fail(
                source, f"images.{key}", f"{value!r} is not allowed; allowed: {', '.join(allowed)}"
            )
    return ImagePolicy(root=root, unknown=unknown)


def _is_version(text: str) -> bool:
    if not text.startswith("v1."):
        return False
    minor = text[3:]
    return minor.isdigit() and int(minor) <= 99
