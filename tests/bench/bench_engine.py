"""Benchmark: engine time per pod (a script, not a test).

    python tests/bench/bench_engine.py [--shared ../shared] [--repeat 5]

Measures ``hardener.plan`` per pod object on
- every pod of the restricted PSA fixtures (newest version),
- every Deployment in the corpus,
with and without the PSS evaluation of the result, and, for comparison, the cost of deriving
the same patch with ``jsonpatch.make_patch`` over a deep copy (what the engine avoids).
Prints a markdown table to paste into tests/bench/RESULTS.md.

    python tests/bench/bench_engine.py --compiled-python VENV/bin/python [--callgrind]

compares the two builds (docs/build.md) in one run: this checkout's sources (pure) and the
hardener that ``VENV/bin/python`` imports (``HARDENER_COMPILE=1 pip install .`` there), each
in its own process, taking turns so that the load of the machine falls on both alike. With
``--callgrind``, also the instructions per object that ``valgrind --tool=callgrind`` counts
(the set planned three times less the set planned once, over two passes).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from hardener import default_config, plan

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
    target = plan(obj, config, evaluate=False).hardened
    return jsonpatch.make_patch(copy.deepcopy(obj), target)


config = default_config()


def sets(shared: Path) -> list[tuple[str, list[Any]]]:
    fixtures = load(sorted((shared / "fixtures/pss/restricted/v1.35").glob("*/*.yaml")), None)
    deployments = load(sorted((shared / "corpus").rglob("*.y*ml")), {"Deployment"})
    return [("PSA fixtures v1.35", fixtures), ("corpus Deployments", deployments)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=HERE.parents[3] / "shared")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compiled-python", type=Path, help="compare with this interpreter")
    parser.add_argument("--rounds", type=int, default=3, help="turns each build takes")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--child", choices=("time", "loop"), help=argparse.SUPPRESS)
    parser.add_argument("--loops", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--evaluate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "time":
        child_times(args)
    elif args.child == "loop":
        child_loop(args)
    elif args.compiled_python:
        compare(args)
    else:
        single(args)


def single(args: argparse.Namespace) -> None:
    data = sets(args.shared)
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{len(data[0][1])} fixture pods, {len(data[1][1])} corpus Deployments\n"
    )
    print(
        "| set | objects | plan, evaluate=False (µs) | plan with PSS evaluation (µs) "
        "| plan + make_patch over a deep copy (µs) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, objs in data:
        fast = per_object(objs, lambda o: plan(o, config, evaluate=False), args.repeat)
        full = per_object(objs, lambda o: plan(o, config), args.repeat)
        slow = per_object(objs, make_patch_way, args.repeat)
        print(f"| {name} | {len(objs)} | {fast:.1f} | {full:.1f} | {slow:.1f} |")


# -- pure against compiled ------------------------------------------------------------------


def _variant() -> str:
    from hardener.cli import variant

    return variant()


def child_times(args: argparse.Namespace) -> None:
    result: dict[str, Any] = {"variant": _variant(), "sets": {}}
    for name, objs in sets(args.shared):
        for obj in objs:  # warm the caches both builds keep
            plan(obj, config)
        result["sets"][name] = {
            "objects": len(objs),
            "fast": per_object(objs, lambda o: plan(o, config, evaluate=False), args.repeat),
            "full": per_object(objs, lambda o: plan(o, config), args.repeat),
        }
    print(json.dumps(result))


def child_loop(args: argparse.Namespace) -> None:
    data = sets(args.shared)
    for _, objs in data:
        for obj in objs:
            plan(obj, config, evaluate=args.evaluate)
    for _ in range(args.loops):
        for _, objs in data:
            for obj in objs:
                plan(obj, config, evaluate=args.evaluate)


def _builds(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str], Path]]:
    """How to run this script on each build: command, environment, working directory."""
    script = str(HERE)
    common = ["--shared", str(args.shared), "--repeat", str(args.repeat)]
    pure_env = dict(os.environ, PYTHONPATH=str(HERE.parents[2]))
    compiled_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {
        "pure": ([sys.executable, script, *common], pure_env, HERE.parents[2]),
        "compiled": ([str(args.compiled_python), script, *common], compiled_env, Path("/")),
    }


def compare(args: argparse.Namespace) -> None:
    builds = _builds(args)
    runs: dict[str, list[dict[str, Any]]] = {"pure": [], "compiled": []}
    for _ in range(args.rounds):
        for build, (command, env, cwd) in builds.items():
            out = subprocess.run(
                [*command, "--child", "time"], env=env, cwd=cwd, capture_output=True, text=True
            )
            if out.returncode != 0:
                raise SystemExit(f"{build}: {out.stderr}")
            result = json.loads(out.stdout)
            if result["variant"] != build:
                raise SystemExit(f"the {build} run imported the {result['variant']} build")
            runs[build].append(result["sets"])
    names = list(runs["pure"][0])
    print(
        f"python {platform.python_version()} on {platform.machine()}, {args.rounds} turns of "
        f"each build, median of {args.repeat} runs a turn; load average before: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(
        "| set | objects | pure, evaluate=False (µs) | compiled (µs) | speed-up "
        "| pure, with PSS evaluation (µs) | compiled (µs) | speed-up |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        row = [name, str(runs["pure"][0][name]["objects"])]
        for key in ("fast", "full"):
            pure = statistics.median(r[name][key] for r in runs["pure"])
            compiled = statistics.median(r[name][key] for r in runs["compiled"])
            row += [f"{pure:.1f}", f"{compiled:.1f}", f"{pure / compiled:.2f}x"]
        print("| " + " | ".join(row) + " |")
    if args.callgrind:
        callgrind(args, builds, sum(r["objects"] for r in runs["pure"][0].values()))


def _instructions(command: list[str], env: dict[str, str], cwd: Path) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--callgrind needs valgrind")
    out = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in: {out.stderr[-500:]}")
    return int(match.group(1))


def callgrind(
    args: argparse.Namespace,
    builds: dict[str, tuple[list[str], dict[str, str], Path]],
    objects: int,
) -> None:
    print(
        f"\nInstructions per object (callgrind, both sets, {objects} objects: planned three "
        "times less planned once, divided by twice the count):\n"
    )
    print("| build | plan, evaluate=False | plan with PSS evaluation |")
    print("| --- | --- | --- |")
    counts: dict[str, list[float]] = {}
    for build, (command, env, cwd) in builds.items():
        counts[build] = []
        for evaluate in ([], ["--evaluate"]):
            once, thrice = (
                _instructions([*command, "--child", "loop", "--loops", str(n), *evaluate], env, cwd)
                for n in (1, 3)
            )
            counts[build].append((thrice - once) / (2 * objects))
        print(f"| {build} | {counts[build][0] / 1000:,.0f}k | {counts[build][1] / 1000:,.0f}k |")
    ratios = [p / c for p, c in zip(counts["pure"], counts["compiled"], strict=True)]
    print(f"| pure / compiled | {ratios[0]:.2f}x | {ratios[1]:.2f}x |")


if __name__ == "__main__":
    main()
