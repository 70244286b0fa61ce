"""``hardener fix``: harden manifest files in place, changing only the lines a change needs.

Exit status, as black and ruff use it:

- 0: the run succeeded (files may have been rewritten, or a diff shown);
- 1: with ``--check``, at least one file would change;
- 2: a file could not be read, parsed or safely edited (every other file is still processed),
  or the command line or the config is invalid.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, TypeVar

from hardener import __version__
from hardener.config import PROFILES, Config, default_config, load_config
from hardener.fixer.files import (
    STDIN,
    FileReadError,
    collect_paths,
    decode,
    display_path,
    link_roots,
)
from hardener.fixer.output import Progress, use_color
from hardener.fixer.run import (
    CheckOptions,
    FixOptions,
    fix_text,
    fix_worker,
    images_in_files,
    images_in_text,
    read_error_result,
    run_files,
)
from hardener.images import lookup_run
from hardener.model import ConfigError
from hardener.report import (
    FORMATS,
    ImageReport,
    error_line,
    fix_lines,
    fix_summary,
    render,
    unified_diff,
    user_namespaces_line,
)
from hardener.results import FileResult

__all__ = [
    "add_common_arguments",
    "load_run_config",
    "look_up_images",
    "read_stdin",
    "register",
    "run",
]

STDIN_NAME = display_path(STDIN)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``fix`` and ``check`` share."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="file or directory (walked for *.yaml, *.yml, *.json, leaving out tool folders "
        "such as .git and node_modules, and what .gitignore ignores), or - for stdin",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="output format (default: text); json is the documented machine contract",
    )
    parser.add_argument("--config", metavar="FILE", help="hardener config file (YAML)")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip paths matching this glob (a path, or any directory or file name in it); "
        "repeatable",
    )
    parser.add_argument(
        "--no-ignore",
        action="store_true",
        help="walk what .gitignore and .git/info/exclude ignore too (tool folders such as .git "
        "and node_modules stay out)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="process files in N worker processes (0: one per CPU; default: 1); output order "
        "is the same",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="look no image up: the image cache and the offline table only (also "
        "HARDENER_IMAGES_OFFLINE=1, or images.lookup: false in the config)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text output (default: auto, on a terminal unless NO_COLOR is set)",
    )


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (one per CPU) or more")
    return value or (os.cpu_count() or 1)


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


def load_run_config(path: str | None, profile: str | None = None) -> Config:
    config = load_config(path) if path else default_config()
    if profile is not None and profile != config.profile:
        config = config.with_profile(profile)
    return config


_Options = TypeVar("_Options", FixOptions, CheckOptions)


def read_stdin() -> str | FileReadError:
    """The text on stdin, or why it cannot be read."""
    try:
        return decode(sys.stdin.buffer.read())
    except FileReadError as exc:
        return exc


def look_up_images(
    paths: list[str],
    stdin: str | FileReadError | None,
    options: _Options,
    *,
    offline: bool,
    jobs: int,
) -> tuple[_Options, ImageReport]:
    """Look up every image the files (and stdin) name, at once, before any is planned; the
    options carry the facts to the engine."""
    images = images_in_files(paths, options, jobs=jobs)
    if isinstance(stdin, str):
        images += images_in_text(stdin, rendered=options.rendered)
    found = lookup_run(images, options.config.images, offline=offline)
    report = ImageReport(found.facts, found.offline, found.requests, found.seconds)
    return dataclasses.replace(options, images=found.facts), report


def run(args: argparse.Namespace) -> int:
    prog = "hardener fix"
    try:
        config = load_run_config(args.config, args.profile)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
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
        print(f"{prog}: error: '-' (stdin) can be given only once", file=sys.stderr)
        return 2
    stdin_writes = STDIN in paths and not args.check and not args.diff
    if stdin_writes and args.format != "text":
        print(
            f"{prog}: error: with '-' the fixed text goes to stdout, which --format "
            f"{args.format} needs too; add --check or --diff",
            file=sys.stderr,
        )
        return 2
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
    results = _missing_results(missing)
    results.extend(_run(paths, stdin, options, args.jobs))

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


def _missing_results(missing: list[tuple[str, str]]) -> list[FileResult]:
    return [FileResult(path=path, error=message) for path, message in missing]


def _run(
    paths: list[str], stdin: str | FileReadError | None, options: FixOptions, jobs: int
) -> list[FileResult]:
    files = [p for p in paths if p != STDIN]
    progress = Progress(sys.stderr, len(files))
    try:
        by_path = run_files(fix_worker(options), files, jobs=jobs, on_result=progress.advance)
    finally:
        progress.close()
    results: list[FileResult] = []
    pending = iter(by_path)
    for path in paths:
        results.append(_stdin(stdin, options) if path == STDIN else next(pending))
    return results


def _stdin(stdin: str | FileReadError | None, options: FixOptions) -> FileResult:
    if stdin is None:
        stdin = read_stdin()
    if isinstance(stdin, FileReadError):
        return read_error_result(STDIN, stdin)
    return fix_text(stdin, STDIN, options)
