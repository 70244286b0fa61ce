"""The ``hardener`` command line: one sub-command a module, wired here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES

from hardener import __version__, engine

__all__ = ["main", "variant"]

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func``
# (``func(args) -> int``) as the parser default.
COMMANDS: tuple[str, ...] = (
    "rules",
    "certs",
    "serve",
    "fix",
    "check",
    "audit",
    "install",
    "images",
    "post_render",
    "krm",
)


def variant() -> str:
    """Which build of hardener runs: ``compiled`` when its core (the engine, the rules, the
    Pod Security Standards evaluator) is made of mypyc's extension modules, else ``pure``
    (docs/build.md)."""
    origin = engine.__file__ or ""
    return "compiled" if origin.endswith(tuple(EXTENSION_SUFFIXES)) else "pure"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command, or of ``only`` that one (its module alone is imported:
    ``hardener fix`` does not pay for importing the webhook and the Kubernetes client)."""
    parser = argparse.ArgumentParser(
        prog="hardener",
        description="Harden Kubernetes pods: admission webhook, manifest fixer, review reports.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"hardener {__version__} ({variant()}, Python {sys.version.split()[0]})",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"hardener.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments[0].replace("-", "_") if arguments else ""
    command = "install" if command == "uninstall" else command  # one module has both
    # A known sub-command first: only its module is needed. Anything else (--help, --version,
    # a typo) gets the whole parser, which lists every sub-command.
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(arguments)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("hardener: interrupted", file=sys.stderr)
        return 130
    return code
