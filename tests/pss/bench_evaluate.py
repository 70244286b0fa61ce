"""In-process timing of ``hardener.pss.evaluate`` (a script, not a test).

    python tests/pss/bench_evaluate.py [--number 2000] [--repeat 7] [--against REV]

Times ``evaluate(obj)`` (level restricted, version latest, as the webhook calls it) on the
webhook benchmark's pod once hardened (what the webhook evaluates) and as it comes in, and on
a few PSS fixtures; best of ``--repeat`` runs of ``--number`` calls each, in microseconds a
call. With ``--against REV`` the evaluator of that git revision (``hardener/pss`` only; the
rest of hardener is this tree's) is timed too, interleaved with this one, after checking
that both return the same violations.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hardener.config import default_config
from hardener.engine import plan
from hardener.pss import evaluate

REPO = Path(__file__).resolve().parents[2]

FIXTURES = [
    "restricted/v1.35/pass/runasnonroot0.yaml",
    "restricted/v1.35/fail/capabilities_restricted1.yaml",
    "restricted/v1.35/fail/seccompprofile_restricted3.yaml",
    "baseline/v1.35/fail/hostprobesandhostlifecycle0.yaml",
]

Evaluate = Callable[[Any], list[Any]]


def cases() -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests" / "bench"))
    from bench_webhook import realistic_review

    pod = realistic_review()["request"]["object"]
    decided = plan(pod, default_config(), namespace="shop", evaluate=False)
    found = {"benchmark pod, hardened": decided.hardened, "benchmark pod": pod}
    for name in FIXTURES:
        path = REPO / "tests" / "data" / "pss" / name
        found[name] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return found


def evaluator_of(rev: str, into: Path) -> Evaluate:
    """``evaluate`` of ``hardener/pss`` at ``rev``, loaded as a package of its own."""
    package = "pss_" + "".join(ch for ch in rev if ch.isalnum())
    folder = into / package
    folder.mkdir()
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", f"{rev}:hardener/pss"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in listing:
        if name.endswith(".py"):
            source = subprocess.run(
                ["git", "show", f"{rev}:hardener/pss/{name}"],
                cwd=REPO,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.replace("hardener.pss", package), encoding="utf-8")
    sys.path.insert(0, str(into))
    function: Evaluate = importlib.import_module(package).evaluate
    return function


def fields(violations: list[Any]) -> list[tuple[Any, ...]]:
    return [(v.check, v.level, v.message, v.pointer, v.container, v.fixable) for v in violations]


def best(function: Evaluate, obj: Any, number: int) -> float:
    return timeit.timeit(lambda: function(obj), number=number) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--against", metavar="REV")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        contenders: dict[str, Evaluate] = {"this tree": evaluate}
        if args.against:
            contenders = {args.against: evaluator_of(args.against, Path(scratch)), **contenders}
        for name, obj in cases().items():
            results = {label: fields(f(obj)) for label, f in contenders.items()}
            if len({repr(r) for r in results.values()}) != 1:
                raise SystemExit(f"{name}: the evaluators disagree")
            times = dict.fromkeys(contenders, float("inf"))
            for _ in range(args.repeat):
                for label, function in contenders.items():
                    times[label] = min(times[label], best(function, obj, args.number))
            shown = "  ".join(f"{label} {t:6.1f} us" for label, t in times.items())
            if args.against:
                shown += f"  x{times[args.against] / times['this tree']:.2f}"
            print(f"{shown}  ({len(results['this tree'])} violations) {name}")


if __name__ == "__main__":
    main()
