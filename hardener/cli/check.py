"""``hardener check``: the Pod Security Standards verdict for every pod in the given manifests.

Exit status: 0 when every pod meets the level, 1 when any violation is found, 2 when a file
could not be read or parsed (every other file is still checked) or the command line or the
config is invalid.
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
from hardener.fixer.files import STDIN, collect_paths
from hardener.fixer.output import use_color
from hardener.fixer.run import CheckOptions, check_text, check_worker
from hardener.model import ConfigError
from hardener.pss import LEVELS, canonical_version
from hardener.report import check_lines, check_summary, error_line, render, user_namespaces_line

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="report what every pod violates of the Pod Security Standards",
        description=(
            "Evaluate every pod in the given manifests against a Pod Security Standards level "
            "and policy version, as the cluster's Pod Security Admission would. Each violation "
            "names the file and line, the object, the container and the PSA check. Exit "
            "status: 0 clean, 1 violations, 2 unreadable or unparsable input."
        ),
    )
    add_common_arguments(parser)
    parser.add_argument(
        "--level",
        choices=LEVELS,
        help="Pod Security Standards level (default: the config's level, or restricted)",
    )
    parser.add_argument(
        "--version",
        dest="policy_version",
        metavar="vX.Y|latest",
        help=(
            "policy version: latest or v1.<minor>, e.g. v1.25 (default: the config's version, "
            "or latest)"
        ),
    )
    parser.add_argument(
        "--after-fix",
        action="store_true",
        help="evaluate the objects as 'hardener fix' would leave them (nothing is written)",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="hardening profile for --after-fix (default: the config's, or restricted)",
    )
    parser.add_argument(
        "--rendered",
        action="store_true",
        help="the input is rendered output (helm template, kustomize build): '{{ }}' in a "
        "value is data, not a template, so the file is checked rather than skipped",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    prog = "hardener check"
    try:
        config = load_run_config(args.config, args.profile)
    except ConfigError as exc:
        return fail(prog, str(exc))
    level = args.level or config.level
    try:
        version = canonical_version(
            config.version if args.policy_version is None else args.policy_version
        )
    except ValueError as exc:
        return fail(prog, f"--version: {exc}")
    options = CheckOptions(
        level=level,
        version=version,
        after_fix=args.after_fix,
        config=config,
        rendered=args.rendered,
    )
    collected = collect_paths(
        args.paths, args.exclude, use_ignore_files=not args.no_ignore, follow_symlinks=True
    )
    paths, missing = collected.files, collected.missing
    if paths.count(STDIN) > 1:
        return fail(prog, "'-' (stdin) can be given only once")
    stdin = read_stdin() if STDIN in paths else None
    options, images = look_up_images(paths, stdin, options, offline=args.offline, jobs=args.jobs)
    on_stdin = functools.partial(check_text, path=STDIN, options=options)
    results = run_paths(paths, missing, stdin, check_worker(options), on_stdin, args.jobs)

    color = use_color(sys.stdout, args.color)
    if args.format == "text":
        err_color = use_color(sys.stderr, args.color)
        for result in results:
            if result.error:
                print(error_line(result, err_color), file=sys.stderr)
            for line in check_lines(result, color):
                print(line)
    else:
        sys.stdout.write(
            render(
                results,
                args.format,
                command="check",
                version=__version__,
                level=level,
                after_fix=args.after_fix,
                images=images,
            )
        )
    sys.stdout.flush()
    sys.stderr.write(
        check_summary(
            results, level=level, version=version, after_fix=args.after_fix, collected=collected
        )
    )
    sys.stderr.write("".join(f"{line}\n" for line in images.lines()))
    sys.stderr.write(user_namespaces_line(config.user_namespaces, results))
    if any(r.error for r in results):
        return 2
    if any(d.findings for r in results for d in r.documents):
        return 1
    return 0
