"""What the sub-commands share: the options of ``fix`` and ``check``, the run config, stdin,
the image lookup before a run, running the files, and the error line."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from hardener.config import Config, default_config, load_config
from hardener.fixer.files import STDIN, FileReadError, decode
from hardener.fixer.output import Progress
from hardener.fixer.run import (
    CheckOptions,
    FixOptions,
    images_in_files,
    images_in_text,
    read_error_result,
    run_files,
)
from hardener.images import lookup_run
from hardener.report import FORMATS, ImageReport
from hardener.results import FileResult

__all__ = [
    "add_common_arguments",
    "fail",
    "load_run_config",
    "look_up_images",
    "read_stdin",
    "run_paths",
]


def fail(prog: str, message: str, code: int = 2) -> int:
    """Print ``<prog>: error: <message>`` on stderr; returns the exit status ``code``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


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


def run_paths(
    paths: list[str],
    missing: list[tuple[str, str]],
    stdin: str | FileReadError | None,
    worker: Callable[[str], FileResult],
    on_stdin: Callable[[str], FileResult],
    jobs: int,
) -> list[FileResult]:
    """The results of the ``missing`` paths, then of ``paths`` in order: the files by ``worker``
    in ``jobs`` processes (with a progress line), ``-`` by ``on_stdin`` on the text read."""
    files = [p for p in paths if p != STDIN]
    progress = Progress(sys.stderr, len(files))
    try:
        pending = iter(run_files(worker, files, jobs=jobs, on_result=progress.advance))
    finally:
        progress.close()
    results = [FileResult(path=path, error=message) for path, message in missing]
    for path in paths:
        if path != STDIN:
            results.append(next(pending))
            continue
        text = read_stdin() if stdin is None else stdin
        if isinstance(text, FileReadError):
            results.append(read_error_result(STDIN, text))
        else:
            results.append(on_stdin(text))
    return results
