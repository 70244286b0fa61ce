"""``hardener post-render``: a Helm post-renderer (Helm 3 ``--post-renderer``, Helm 4 plugin).

Helm writes the rendered manifests to stdin and reads the manifests to install from stdout.
The stream comes back with the same documents in the same order, ``---`` separators and
``# Source:`` comments kept; Helm hooks and CRDs pass through untouched. Findings go to stderr.

Exit status: 0 success; 1 with ``--strict`` when a finding remains (nothing is written to
stdout, so Helm stops); 2 for bad input or an invalid config (nothing is written to stdout).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hardener.cli._common import fail, load_run_config, read_stdin
from hardener.config import PROFILES
from hardener.fixer.files import FileReadError
from hardener.fixer.run import images_in_text
from hardener.fixer.stream import StreamError, harden_stream
from hardener.images import lookup_run
from hardener.model import ConfigError
from hardener.report import check_lines
from hardener.results import FileResult

__all__ = ["register", "run"]

PROG = "hardener post-render"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "post-render",
        help="Helm post-renderer: harden the rendered manifests from stdin to stdout",
        description=(
            "Read the manifests Helm rendered on stdin and write them hardened on stdout, "
            "with the same documents in the same order, '---' separators and '# Source:' "
            "comments kept. Helm hooks and CRDs pass through untouched. Findings go to "
            "stderr. Use: helm install NAME CHART --post-renderer hardener "
            "--post-renderer-args post-render. Exit status: 0 success, 1 with --strict when "
            "a finding remains, 2 bad input; on 1 and 2 nothing is written to stdout."
        ),
    )
    parser.add_argument("--config", metavar="FILE", help="hardener config file (YAML)")
    parser.add_argument(
        "--profile", choices=PROFILES, help="hardening profile (default: the config's)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1, no output) when anything that blocks hardening remains",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_run_config(args.config, args.profile)
    except ConfigError as exc:
        return fail(PROG, str(exc))
    text = read_stdin()
    if isinstance(text, FileReadError):
        return fail(PROG, f"<stdin>: {text.message}")
    try:
        found = lookup_run(images_in_text(text, rendered=True), config.images)
        hardened = harden_stream(text, config, images=found.facts)
    except StreamError as exc:
        return fail(PROG, f"{exc}; nothing was written")
    result = hardened.result
    findings: list[str] = []
    for document in result.documents:
        template = hardened.templates.get(document.line)
        suffix = f" (template {template})" if template else ""
        one = FileResult(path=result.path, documents=[document])
        findings.extend(line + suffix for line in check_lines(one))
    for line in findings:
        print(line, file=sys.stderr)
    changes = sum(len(d.changes) for d in result.documents)
    untouched = sum(1 for d in result.documents if d.skipped)
    print(
        f"{PROG}: {len(result.documents)} objects, {changes} changes, "
        f"{untouched} passed through untouched, {len(findings)} findings",
        file=sys.stderr,
    )
    if args.strict and findings:
        return fail(PROG, f"--strict and {len(findings)} findings; nothing was written", 1)
    sys.stdout.write(result.fixed if result.fixed is not None else text)
    sys.stdout.flush()
    return 0
