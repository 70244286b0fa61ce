"""``hardener images inspect IMAGE...``: what hardener learns about images, and from where."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from hardener.cli._common import fail, load_run_config
from hardener.config import ImageSettings
from hardener.image_facts import ImageFacts, parse_image_user
from hardener.images import offline_reason, resolve_images_sync
from hardener.model import ConfigError
from hardener.report import facts_json

__all__ = ["register", "render_text", "to_json"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "images",
        help="look images up as hardening does",
        description="Image facts as hardening uses them (docs/images.md).",
    )
    commands = parser.add_subparsers(dest="images_command", metavar="COMMAND")
    commands.required = True
    inspect = commands.add_parser(
        "inspect",
        help="print each image's user, ids, volumes and writable paths, and their source",
        description="Print each image's user, ids, volumes and writable paths, and where they "
        "came from: registry, cache, table (the offline table) or unknown (with the reason).",
    )
    inspect.add_argument("images", nargs="+", metavar="IMAGE")
    inspect.add_argument("--config", metavar="FILE", help="hardener config file (YAML)")
    inspect.add_argument("--format", choices=("text", "json"), default="text")
    inspect.add_argument(
        "--offline", action="store_true", help="the cache and the offline table only"
    )
    inspect.add_argument("--platform", metavar="OS/ARCH", help="default: images.platform")
    inspect.add_argument("--cache-dir", metavar="DIR", help="default: images.cache-dir")
    inspect.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="per lookup; default images.timeout-seconds",
    )
    inspect.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> ImageSettings:
    settings = load_run_config(args.config).images
    changes: dict[str, Any] = {}
    if args.platform is not None:
        parts = args.platform.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise ConfigError(f"--platform {args.platform!r} is not OS/ARCH[/VARIANT]")
        changes["platform"] = args.platform
    if args.cache_dir is not None:
        changes["cache_dir"] = args.cache_dir
    if args.timeout is not None:
        if not 0 < args.timeout <= 60:
            raise ConfigError(f"--timeout {args.timeout:g} is not in (0, 60]")
        changes["timeout_seconds"] = args.timeout
    return dataclasses.replace(settings, **changes)


def _runs_as(facts: ImageFacts) -> str:
    if facts.user is None:
        return "unknown"
    user = parse_image_user(facts.user)
    if user.is_root:
        return "root"
    if user.uid is not None:
        return f"uid {user.uid}"
    if facts.uid is not None:
        return f"name {user.name!r} = uid {facts.uid}"
    return f"name {user.name!r} (uid not known)"


def to_json(results: dict[str, ImageFacts]) -> dict[str, Any]:
    return {
        "images": [
            {**facts_json(image, facts), "runs_as": _runs_as(facts)}
            for image, facts in results.items()
        ]
    }


def render_text(results: dict[str, ImageFacts]) -> str:
    lines: list[str] = []
    for image, facts in results.items():
        lines.append(image if image == facts.reference else f"{image}  ({facts.reference})")
        rows = [
            ("source", facts.source),
            ("user", "-" if facts.user is None else json.dumps(facts.user)),
            ("runs as", _runs_as(facts)),
            ("uid/gid", f"{_id(facts.uid)}/{_id(facts.gid)}"),
            ("volumes", ", ".join(facts.volumes) or "-"),
            ("writable", ", ".join(facts.writable_paths) or "-"),
            ("digest", facts.digest or "-"),
            ("detail", facts.detail or "-"),
        ]
        lines += [f"  {name + ':':9} {value}" for name, value in rows]
        lines.append("")
    return "\n".join(lines)


def _id(value: int | None) -> str:
    return "-" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    prog = "hardener images inspect"
    try:
        settings = _settings(args)
    except ConfigError as exc:
        return fail(prog, str(exc))
    started = time.monotonic()
    progress = sys.stderr.isatty()

    def on_done(done: int, total: int) -> None:
        # Only when lookups are slow enough to wonder about.
        if progress and time.monotonic() - started > 1.0:
            end = "\n" if done == total else ""
            print(f"\rlooking up images: {done}/{total}", end=end, file=sys.stderr, flush=True)

    offline = offline_reason(settings, args.offline) is not None  # --offline or the env var
    results = resolve_images_sync(args.images, settings, offline=offline, on_done=on_done)
    if args.format == "json":
        print(json.dumps(to_json(results), indent=2))
    else:
        print(render_text(results), end="")
    return 0
