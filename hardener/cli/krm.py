"""``hardener krm``: a KRM function (Kustomize exec transformer, kpt, Argo CD plugins).

Reads a ``ResourceList`` on stdin and writes it back on stdout with the items hardened and
the changes and findings as ``results``. The hardener config comes from ``functionConfig``.

Exit status: 0 success (findings are results, not errors); 1 for bad input or an invalid
``functionConfig``, with the error on stderr and nothing on stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from hardener.cli._common import fail, read_stdin
from hardener.config import Config
from hardener.fixer.files import FileReadError
from hardener.fixer.resourcelist import harden_resource_list
from hardener.fixer.stream import StreamError
from hardener.image_facts import ImageFacts
from hardener.images import lookup_run

__all__ = ["register", "run"]

PROG = "hardener krm"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "krm",
        help="KRM function: harden the items of a ResourceList from stdin to stdout",
        description=(
            "A KRM function (KRM Functions Specification): read a ResourceList on stdin, "
            "harden its items in place (comments kept), add the changes and findings as "
            "results, and write it on stdout. functionConfig carries the hardener config: the "
            "spec of a HardenerConfig, or the data of a ConfigMap. Works as a Kustomize exec "
            "transformer, with kpt fn eval --exec and in Argo CD config management plugins. "
            "Exit status: 0 success, 1 bad input (error on stderr, nothing on stdout)."
        ),
    )
    parser.set_defaults(func=run)


def _look_up(images: list[str], config: Config) -> Mapping[str, ImageFacts]:
    return lookup_run(images, config.images).facts


def run(args: argparse.Namespace) -> int:
    text = read_stdin()
    if isinstance(text, FileReadError):
        return fail(PROG, f"<stdin>: {text.message}", 1)
    try:
        outcome = harden_resource_list(text, look_up=_look_up)
    except StreamError as exc:
        return fail(PROG, f"{exc}; nothing was written", 1)
    sys.stdout.write(outcome.text)
    sys.stdout.flush()
    warnings = sum(1 for r in outcome.results if r["severity"] == "warning")
    print(
        f"{PROG}: {outcome.changed_items} items hardened, {warnings} findings",
        file=sys.stderr,
    )
    return 0
