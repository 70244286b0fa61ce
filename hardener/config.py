"""The config file: one YAML file, the same for the webhook and the fixer.

::

    profile: restricted          # restricted (default) | baseline
    mode: mutate                 # mutate | warn (the webhook only warns, never patches)
    level: restricted            # Pod Security Standards level reported as still violated
    version: latest              # PSS policy version: latest | v1.NN (or 1.NN)
    user-namespaces: auto        # auto | always | never: may pods get hostUsers: false
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
      max-containers: 250        # per object; more: admitted unchanged, with a warning
      max-volumes: 1000          # per object; more: admitted unchanged, with a warning
      max-values: 200000         # JSON values per object; more: the same
      max-bytes-in-flight: 4194304  # body bytes held at once; more: wait for room, else 429
    images:                      # image facts (docs/images.md); parsed by parse_image_settings
      lookup: true               # false: the offline table and the cache only
      platform: linux/amd64
      root: user-namespace       # user-namespace | keep | run-as-user
      unknown: keep              # keep | assume-nonroot
      timeout-seconds: 2.0       # per image lookup
      cache-dir: ~/.cache/hardener/images
      max-layer-bytes: 67108864  # layer bytes read per image to find /etc/passwd
      registries:
        docker.io: {mirror: "https://mirror.example:5000", insecure: false, ca-file: ca.pem}
      table:                     # extends or overrides the built-in offline table
        example.com/team/app: {user: "app", uid: 1000, gid: 1000, writable-paths: [/cache]}

Every error is a ``ConfigError`` that starts ``invalid config:`` and names the file, the key
and the allowed values.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import yaml

from hardener.image_facts import (
    ROOT_POLICIES,
    UNKNOWN_POLICIES,
    ImagePolicy,
    RootPolicy,
    UnknownPolicy,
)
from hardener.model import ConfigError
from hardener.pss import LEVELS, canonical_version
from hardener.rules import RULES, RULES_BY_ID, Rule
from hardener.userns import MODES as USER_NAMESPACE_MODES
from hardener.userns import Mode as UserNamespaceMode

__all__ = [
    "MODES",
    "PROFILES",
    "Config",
    "ImageSettings",
    "ImageTableEntry",
    "RegistrySettings",
    "RuleSettings",
    "WebhookSettings",
    "default_config",
    "load_config",
    "parse_config",
    "parse_image_settings",
]

PROFILES = ("restricted", "baseline")
MODES = ("mutate", "warn")
_TOP_KEYS = (
    "profile",
    "mode",
    "level",
    "version",
    "user-namespaces",
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
    # The engine's work grows with containers times volumes: both are bounded before it starts.
    max_containers: int = 250
    max_volumes: int = 1000
    # The rest of the work (the PSS evaluation above all) grows with the values in the object.
    max_values: int = 200_000
    # A body parsed into Python objects takes up to 35 times its bytes: the bodies held at once
    # (read, decoded or hardened, abandoned work past the deadline included) are bounded too.
    max_bytes_in_flight: int = 4 * 1024 * 1024


IMAGE_ROOT_CHOICES = ROOT_POLICIES
IMAGE_UNKNOWN_CHOICES = UNKNOWN_POLICIES


@dataclass(frozen=True)
class RegistrySettings:
    """How to reach one registry (``images.registries.<host>``), as containerd's hosts.toml:
    ``mirror`` replaces the scheme and host, the repository path stays."""

    mirror: str | None = None
    insecure: bool = False
    """Plain HTTP is allowed (to the mirror, or to the registry itself without one)."""
    ca_file: str | None = None


@dataclass(frozen=True)
class ImageTableEntry:
    """One entry of the offline table (``images.table.<image>``): what an image is known to
    run as and write, without looking it up."""

    user: str
    uid: int | None = None
    gid: int | None = None
    writable_paths: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    source: str = ""
    """Where the fact comes from (a Dockerfile, a doc), for messages."""


@dataclass(frozen=True)
class ImageSettings:
    """The ``images:`` block: how image facts are learned (docs/images.md)."""

    lookup: bool = True
    platform: str = "linux/amd64"
    root: RootPolicy = "user-namespace"
    unknown: UnknownPolicy = "keep"
    timeout_seconds: float = 2.0
    cache_dir: str = "~/.cache/hardener/images"
    max_layer_bytes: int = 64 * 1024 * 1024
    registries: Mapping[str, RegistrySettings] = field(default_factory=dict)
    table: Mapping[str, ImageTableEntry] = field(default_factory=dict)


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
    images: ImageSettings = field(default_factory=ImageSettings)
    user_namespaces: UserNamespaceMode = "auto"
    """``user-namespaces``: whether pods may get ``hostUsers: false``. ``auto`` asks the
    cluster (the webhook and ``audit``; off in ``fix`` and ``check``), ``always`` states that
    every node supports them, ``never`` turns the ``user-namespace`` rule off."""
    source: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The data the config was parsed from, to derive variants (``with_profile``)."""

    @property
    def image_policy(self) -> ImagePolicy:
        """``images.root`` and ``images.unknown``: what to do with images whose user does not
        let ``runAsNonRoot`` stand alone."""
        return ImagePolicy(root=self.images.root, unknown=self.images.unknown)

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
    try:
        version = canonical_version(data.get("version", "latest"))
    except ValueError as exc:
        raise _fail(source, "version", str(exc)) from None
    user_namespaces = _choice(data, "user-namespaces", USER_NAMESPACE_MODES, "auto", source)

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
    hook_keys = (
        "deadline-seconds",
        "max-body-bytes",
        "max-containers",
        "max-volumes",
        "max-values",
        "max-bytes-in-flight",
    )
    for key in hook:
        if key not in hook_keys:
            raise _fail(source, f"webhook.{key}", f"unknown key; allowed: {', '.join(hook_keys)}")
    deadline = hook.get("deadline-seconds", 3.0)
    if (
        isinstance(deadline, bool)
        or not isinstance(deadline, int | float)
        or not 0 < deadline <= 30
    ):
        raise _fail(
            source, "webhook.deadline-seconds", f"must be a number in (0, 30], not {deadline!r}"
        )
    limits = WebhookSettings()
    counts = {
        key: hook.get(key, default)
        for key, default in (
            ("max-body-bytes", limits.max_body_bytes),
            ("max-containers", limits.max_containers),
            ("max-volumes", limits.max_volumes),
            ("max-values", limits.max_values),
            ("max-bytes-in-flight", limits.max_bytes_in_flight),
        )
    }
    for key, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            raise _fail(source, f"webhook.{key}", f"must be a positive integer, not {count!r}")

    config = Config(
        profile=profile,
        mode=mode,
        level=level,
        version=version,
        rules=rules,
        exempt_namespaces=_strings(exempt.get("namespaces"), source, "exempt.namespaces"),
        exempt_names=_strings(exempt.get("names"), source, "exempt.names"),
        webhook=WebhookSettings(
            deadline_seconds=float(deadline),
            max_body_bytes=counts["max-body-bytes"],
            max_containers=counts["max-containers"],
            max_volumes=counts["max-volumes"],
            max_values=counts["max-values"],
            max_bytes_in_flight=counts["max-bytes-in-flight"],
        ),
        images=parse_image_settings(data.get("images"), source),
        user_namespaces=cast(UserNamespaceMode, user_namespaces),
        source=None if source.startswith("<") else source,
        raw=dict(data),
    )
    return config


def _mapping(value: Any, source: str, key: str, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _fail(source, key, f"must be a mapping of {what}")
    return value


def _known_keys(data: Mapping[str, Any], allowed: tuple[str, ...], source: str, key: str) -> None:
    for name in data:
        if name not in allowed:
            raise _fail(source, f"{key}.{name}", f"unknown key; allowed: {', '.join(allowed)}")


def _paths(value: Any, source: str, key: str) -> tuple[str, ...]:
    return tuple(_check_option(source, key, [] if value is None else value, []))


def _image_id(value: Any, source: str, key: str) -> int | None:
    return None if value is None else int(_check_option(source, key, value, 0))


_IMAGE_KEYS = (
    "lookup",
    "platform",
    "root",
    "unknown",
    "timeout-seconds",
    "cache-dir",
    "max-layer-bytes",
    "registries",
    "table",
)
_TABLE_KEYS = ("user", "uid", "gid", "writable-paths", "volumes", "source")


def parse_image_settings(data: Any, source: str = "<config>") -> ImageSettings:
    """Validate the ``images:`` block (``None`` when the file has none)."""
    block = _mapping(data, source, "images", ", ".join(_IMAGE_KEYS))
    _known_keys(block, _IMAGE_KEYS, source, "images")
    defaults = ImageSettings()
    lookup = _check_option(source, "images.lookup", block.get("lookup", True), True)
    platform = block.get("platform", defaults.platform)
    parts = platform.split("/") if isinstance(platform, str) else []
    if not 2 <= len(parts) <= 3 or not all(p and p == p.strip() for p in parts):
        raise _fail(
            source, "images.platform", f"{platform!r} is not OS/ARCH[/VARIANT], e.g. linux/amd64"
        )
    root = _choice(
        {"images.root": block.get("root", defaults.root)},
        "images.root",
        IMAGE_ROOT_CHOICES,
        defaults.root,
        source,
    )
    unknown = _choice(
        {"images.unknown": block.get("unknown", "keep")},
        "images.unknown",
        IMAGE_UNKNOWN_CHOICES,
        "keep",
        source,
    )
    timeout = block.get("timeout-seconds", defaults.timeout_seconds)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise _fail(
            source, "images.timeout-seconds", f"must be a number in (0, 60], not {timeout!r}"
        )
    cache_dir = block.get("cache-dir", defaults.cache_dir)
    if not isinstance(cache_dir, str) or not cache_dir:
        raise _fail(source, "images.cache-dir", f"must be a directory path, not {cache_dir!r}")
    budget = block.get("max-layer-bytes", defaults.max_layer_bytes)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise _fail(
            source, "images.max-layer-bytes", f"must be a non-negative integer, not {budget!r}"
        )

    registries: dict[str, RegistrySettings] = {}
    for host, entry_data in _mapping(
        block.get("registries"), source, "images.registries", "registry host to settings"
    ).items():
        where = f"images.registries.{host}"
        entry = _mapping(entry_data, source, where, "mirror, insecure, ca-file")
        _known_keys(entry, ("mirror", "insecure", "ca-file"), source, where)
        insecure = _check_option(source, f"{where}.insecure", entry.get("insecure", False), True)
        mirror = entry.get("mirror")
        if mirror is not None:
            if not isinstance(mirror, str) or not mirror.startswith(("https://", "http://")):
                raise _fail(source, f"{where}.mirror", f"must be an http(s) URL, not {mirror!r}")
            if mirror.startswith("http://") and not insecure:
                raise _fail(
                    source, f"{where}.mirror", "plain http:// needs `insecure: true` beside it"
                )
        ca_file = entry.get("ca-file")
        if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
            raise _fail(source, f"{where}.ca-file", f"must be a file path, not {ca_file!r}")
        registries[host] = RegistrySettings(
            mirror=None if mirror is None else mirror.rstrip("/"),
            insecure=insecure,
            ca_file=ca_file,
        )

    table: dict[str, ImageTableEntry] = {}
    for image, entry_data in _mapping(
        block.get("table"), source, "images.table", "image name to facts"
    ).items():
        where = f"images.table.{image}"
        entry = _mapping(entry_data, source, where, ", ".join(_TABLE_KEYS))
        _known_keys(entry, _TABLE_KEYS, source, where)
        user = entry.get("user")
        if not isinstance(user, str):
            raise _fail(
                source, f"{where}.user", 'is required: the image\'s config.User ("" for root)'
            )
        note = entry.get("source", "")
        if not isinstance(note, str):
            raise _fail(source, f"{where}.source", "must be a string")
        table[image] = ImageTableEntry(
            user=user,
            uid=_image_id(entry.get("uid"), source, f"{where}.uid"),
            gid=_image_id(entry.get("gid"), source, f"{where}.gid"),
            writable_paths=_paths(entry.get("writable-paths"), source, f"{where}.writable-paths"),
            volumes=_paths(entry.get("volumes"), source, f"{where}.volumes"),
            source=note or f"{source}: {where}",
        )
    return ImageSettings(
        lookup=lookup,
        platform=platform,
        root=cast(RootPolicy, root),
        unknown=cast(UnknownPolicy, unknown),
        timeout_seconds=float(timeout),
        cache_dir=cache_dir,
        max_layer_bytes=budget,
        registries=registries,
        table=table,
    )
