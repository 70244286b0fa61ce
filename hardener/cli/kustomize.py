"""``hardener fix --emit-kustomize DIR``: write the fixes as a Kustomize Component.

Exit status as ``fix``: 0 success, 2 when a path is missing, a file cannot be read or
parsed, or DIR cannot be written; then nothing is written at all.
"""

from __future__ import annotations

import argparse
import sys

from hardener.cli._common import fail
from hardener.config import Config
from hardener.fixer.files import STDIN
from hardener.fixer.kustomize import build_component, write_component
from hardener.fixer.run import CheckOptions, images_in_files
from hardener.fixer.stream import StreamError
from hardener.images import lookup_run

__all__ = ["run_emit"]

PROG = "hardener fix --emit-kustomize"


def run_emit(
    args: argparse.Namespace, config: Config, paths: list[str], missing: list[tuple[str, str]]
) -> int:
    """Build the component from ``paths`` and write it into ``args.emit_kustomize``."""
    if args.check or args.diff or STDIN in paths or args.format != "text":
        return fail(
            PROG,
            "--emit-kustomize reads files and writes a component; it does not take --check, "
            "--diff, --format or '-' (stdin)",
        )
    for path, message in missing:
        print(f"{PROG}: error: {path}: {message}; nothing was written", file=sys.stderr)
    if missing:
        return 2
    try:
        found = lookup_run(
            images_in_files(paths, CheckOptions(config=config)),
            config.images,
            offline=args.offline,
        )
        emission = build_component(paths, config, found.facts)
        write_component(emission, args.emit_kustomize)
    except StreamError as exc:
        return fail(PROG, f"{exc}; nothing was written")
    for patch in emission.patches:
        print(
            f"{args.emit_kustomize}/patches/{patch.filename}: {patch.identity.label()} "
            f"({len(patch.ops)} operations) from {patch.source}"
        )
    for source, reason in emission.skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    print(
        f"{PROG}: {len(paths)} files read, {len(emission.patches)} patches written to "
        f"{args.emit_kustomize}; add it to an overlay's components",
        file=sys.stderr,
    )
    return 0
