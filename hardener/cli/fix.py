"""``hardener fix``: harden manifest files in place, changing only the lines a change needs.

Exit status, as black and ruff use it:

- 0: the run succeeded (files may have been rewritten, or a diff shown);
- 1: with ``--check``, at least one file would change;
- 2: a file could not be read, parsed or safely edited (every other file is still processed),
  or the command line or the config is invalid.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from hardener import __version__
from hardener.cli._common import (
    add_common_arguments,
    fail,
    load_run_config,
    look_up_images,
    read_stdin,
    run_paths,
)
from hardener.config import PROFILES
from hardener.fixer.files import STDIN, collect_paths, display_path, link_roots
from hardener.fixer.output import use_color
from hardener.fixer.run import FixOptions, fix_text, fix_worker
from hardener.model import ConfigError
from hardener.report import (
    error_line,
    fix_lines,
    fix_summary,
    render,
    unified_diff,
    user_namespaces_line,
)

__all__ = ["register", "run"]

STDIN_NAME = display_path(STDIN)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "fix",
        help="harden Kubernetes manifests in place, keeping comments and layout",
        description=(
            "Harden every pod in the given manifests with the same engine as the webhook. "
            "Files are rewritten in place, atomically, and only in the lines a change needs; a "
            "file that needs no change is never rewritten. Helm templates, Kustomize patches "
            "and non-Kubernetes YAML are skipped with the reason. Exit status: 0 success, 1 "
            "with --check when a file would change, 2 when a file could not be processed."
        ),
    )
    add_common_arguments(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any file would change (for CI and pre-commit)",
    )
    parser.add_argument(
        "--diff", action="store_true", help="print a unified diff instead of writing files"
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="hardening profile (default: the config's, or restricted)",
    )
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="edit the target of a symbolic link named on the command line, or met in a "
        "directory and leading outside it (by default such links are left out)",
    )
    parser.add_argument(
        "--emit-kustomize",
        metavar="DIR",
        help="write nothing into PATH; write the fixes into DIR as a Kustomize Component "
        "(one JSON6902 patch per object) for bases you do not own",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    prog = "hardener fix"
    try:
        config = load_run_config(args.config, args.profile)
    except ConfigError as exc:
        return fail(prog, str(exc))
    writes = not (args.check or args.diff)
    collected = collect_paths(
        args.paths,
        args.exclude,
        use_ignore_files=not args.no_ignore,
        follow_symlinks=args.follow_symlinks,
        remove_stale=writes and args.emit_kustomize is None,
    )
    paths, missing = collected.files, collected.missing
    if args.emit_kustomize is not None:
        from hardener.cli.kustomize import run_emit  # only this mode needs it

        return run_emit(args, config, paths, missing)
    if paths.count(STDIN) > 1:
        return fail(prog, "'-' (stdin) can be given only once")
    stdin_writes = STDIN in paths and not args.check and not args.diff
    if stdin_writes and args.format != "text":
        return fail(
            prog,
            f"with '-' the fixed text goes to stdout, which --format {args.format} needs too; "
            "add --check or --diff",
        )
    color = use_color(sys.stdout, args.color)
    options = FixOptions(
        config=config,
        write=writes,
        follow_symlinks=args.follow_symlinks,
        link_roots=link_roots(args.paths),
        # Only the machine formats carry what still violates the PSS level after the fix.
        evaluate=args.format != "text",
    )
    stdin = read_stdin() if STDIN in paths else None
    options, images = look_up_images(paths, stdin, options, offline=args.offline, jobs=args.jobs)
    on_stdin = functools.partial(fix_text, path=STDIN, options=options)
    results = run_paths(paths, missing, stdin, fix_worker(options), on_stdin, args.jobs)

    fixed_stdin: str | None = None
    if args.format == "text":
        for result in results:
            if result.path == STDIN_NAME and stdin_writes:
                # Like black: the (fixed or untouched) text always goes through.
                fixed_stdin = result.fixed if result.changed else result.original
            if result.error:
                print(error_line(result, use_color(sys.stderr, args.color)), file=sys.stderr)
                continue
            if result.path == STDIN_NAME and stdin_writes:
                continue
            if args.diff:
                if result.changed and result.original is not None and result.fixed is not None:
                    sys.stdout.write(
                        unified_diff(result.path, result.original, result.fixed, color=color)
                    )
            else:
                for line in fix_lines(result, check=args.check, color=color):
                    print(line)
        if fixed_stdin is not None:
            sys.stdout.write(fixed_stdin)
    else:
        sys.stdout.write(
            render(
                results,
                args.format,
                command="fix",
                version=__version__,
                diff=args.diff,
                level=config.level,
                after_fix=True,
                images=images,
            )
        )
    sys.stdout.flush()
    sys.stderr.write(fix_summary(results, check=args.check or args.diff, collected=collected))
    sys.stderr.write("".join(f"{line}\n" for line in images.lines()))
    sys.stderr.write(user_namespaces_line(config.user_namespaces, results))
    if any(r.error for r in results):
        return 2
    if args.check and any(r.changed for r in results):
        return 1
    return 0
