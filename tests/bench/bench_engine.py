"""Benchmark: engine time per pod (a script, not a test).

    python tests/bench/bench_engine.py [--shared ../shared] [--repeat 5]

Measures ``hardener.plan`` per pod object on
- every pod of the restricted PSA fixtures (newest version),
- every Deployment in the corpus,
with and without the PSS evaluation of the result, and, for comparison, the cost of deriving
the same patch with ``jsonpatch.make_patch`` over a deep copy (what the engine avoids).
Prints a markdown table to paste into tests/bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from hardener import default_config, plan
from hardener.patch import apply_shared

HERE = Path(__file__).resolve()


def load(paths: list[Path], kinds: set[str] | None) -> list[Any]:
    objs = []
    for path in paths:
        try:
            docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for doc in docs:
            if isinstance(doc, dict) and (kinds is None or doc.get("kind") in kinds):
                objs.append(doc)
    return objs


def per_object(objs: list[Any], fn: Callable[[Any], object], repeat: int) -> float:
    """Median over ``repeat`` runs of the mean CPU microseconds per object (process time,
    so that other load on the machine counts less)."""
    runs = []
    for _ in range(repeat):
        start = time.process_time()
        for obj in objs:
            fn(obj)
        runs.append((time.process_time() - start) / len(objs) * 1e6)
    return statistics.median(runs)


def make_patch_way(obj: Any) -> object:
    ops = plan(obj, config, evaluate=False).ops
    target = apply_shared(obj, ops)
    return jsonpatch.make_patch(copy.deepcopy(obj), target)


config = default_config()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=HERE.parents[3] / "shared")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    fixtures = load(sorted((args.shared / "fixtures/pss/restricted/v1.35").glob("*/*.yaml")), None)
    deployments = load(sorted((args.shared / "corpus").rglob("*.y*ml")), {"Deployment"})
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{len(fixtures)} fixture pods, {len(deployments)} corpus Deployments\n"
    )
    print(
        "| set | objects | plan, evaluate=False (µs) | plan with PSS evaluation (µs) "
        "| plan + make_patch over a deep copy (µs) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, objs in (("PSA fixtures v1.35", fixtures), ("corpus Deployments", deployments)):
        fast = per_object(objs, lambda o: plan(o, config, evaluate=False), args.repeat)
        full = per_object(objs, lambda o: plan(o, config), args.repeat)
        slow = per_object(objs, make_patch_way, args.repeat)
        print(f"| {name} | {len(objs)} | {fast:.1f} | {full:.1f} | {slow:.1f} |")


if __name__ == "__main__":
    main()
