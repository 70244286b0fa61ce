"""Benchmark of the webhook's image lookups (a script, not a test).

    python tests/bench/bench_webhook_images.py [--reviews 3000] [--rounds 7] [--update-results]

Starts Debian's ``docker-registry`` on 127.0.0.1 and pushes the image of the webhook
benchmark's review (``registry.example.com/shop/checkout:2.7.1`` and its
``registry.example.com/fluent-bit:3.0`` sidecar, a numeric ``USER`` each) under the same
paths; ``images.registries`` mirrors ``registry.example.com`` to it. Then, on one
event loop, it runs the review handler's pipeline (``_review_body``: decode, size, learn the
image facts, plan, answer; the HTTP and TLS around it are the same in every mode) over the same
AdmissionReview in three modes:

- ``off``: ``images.lookup: false``; the image's facts come from an ``images.table`` entry
  with the same user, so the engine decides exactly as in ``warm``;
- ``warm``: lookups on, the cache warm (the steady state: the tag's digest trusted for its
  TTL, the facts of a digest for ever);
- ``none``: no resolver at all (the engine's unknown-image policy), the webhook before image
  facts: for reference only, as it decides differently.

Reported: reviews per second (the median of ``--rounds`` interleaved rounds of ``--reviews``
each), ``warm`` as a ratio of ``off`` (the target: within 5%), and the CPU instructions per
review counted by callgrind (``valgrind --tool=callgrind``, the difference between a run of
N and of 2N reviews, so start-up cancels out), which do not vary with the machine's load.
Then the cost of a cold lookup inside a review: a new app with an empty cache, the review's
latency and the registry requests it made, for a numeric user and for a named one (its uid
read from ``/etc/passwd`` in a layer). ``--update-results`` rewrites the section of
``tests/bench/RESULTS.md`` between its markers and leaves the rest alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from hardener.config import Config, parse_config  # noqa: E402
from hardener.images import ImageResolver, LookupMetrics  # noqa: E402
from hardener.webhook import Metrics, ServerState  # noqa: E402
from hardener.webhook._app import _review_body  # noqa: E402
from tests.bench._results import replace_section  # noqa: E402
from tests.bench.bench_webhook import realistic_review  # noqa: E402

START, END = "<!-- webhook-images-bench:start -->", "<!-- webhook-images-bench:end -->"
MODES = ("off", "warm", "none")
IMAGE_HOST = "registry.example.com"
PASSWD = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"


def _review_bytes(image: str | None = None) -> bytes:
    review = realistic_review()
    if image is not None:
        for container in review["request"]["object"]["spec"]["containers"]:
            container["image"] = image
    return json.dumps(review).encode()


def _images_of(body: bytes) -> list[str]:
    spec = json.loads(body)["request"]["object"]["spec"]
    return [c["image"] for c in spec.get("containers", []) + spec.get("initContainers", [])]


def config_for(mode: str, mirror: str, cache: Path) -> Config:
    images: dict[str, Any] = {
        "cache-dir": str(cache),
        "registries": {IMAGE_HOST: {"mirror": mirror, "insecure": True}},
    }
    if mode == "off":
        images["lookup"] = False
        images["table"] = {
            f"{IMAGE_HOST}/{path}": {"user": "1000", "source": "bench"}
            for path in ("shop/checkout", "fluent-bit")
        }
    return parse_config({"images": images})


class Pipeline:
    """One app's state and the handler's pipeline, without HTTP."""

    def __init__(self, mode: str, mirror: str, cache: Path) -> None:
        self.config = config_for(mode, mirror, cache)
        self.metrics = Metrics()
        self.state = ServerState()
        if mode != "none":
            self.state.images = ImageResolver(self.config.images, metrics=LookupMetrics())

    async def review(self, body: bytes) -> Any:
        result, _ = await _review_body(
            self.state, self.metrics, body, self.config, time.monotonic(), None
        )
        return result

    async def close(self) -> None:
        if self.state.images is not None:
            await self.state.images.close()


async def _rounds(
    body: bytes, mirror: str, cache: Path, reviews: int, rounds: int
) -> dict[str, Any]:
    # Each mode its own cache directory: lookups off read the cache too.
    pipelines = {mode: Pipeline(mode, mirror, cache / mode) for mode in MODES}
    try:
        outcomes = {}
        for mode, pipeline in pipelines.items():
            for _ in range(50):  # warm: the cache, the engine's own memo, the allocator
                result = await pipeline.review(body)
            outcomes[mode] = (result.outcome, result.rules)
        assert outcomes["off"] == outcomes["warm"], outcomes
        warm_resolver = pipelines["warm"].state.images
        assert warm_resolver is not None
        warm_before = warm_resolver.requests
        per_second: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode, pipeline in pipelines.items():
                started = time.perf_counter()
                for _ in range(reviews):
                    await pipeline.review(body)
                per_second[mode].append(reviews / (time.perf_counter() - started))
        warm = pipelines["warm"].state.images
        assert warm is not None
        return {
            "per_second": {mode: statistics.median(v) for mode, v in per_second.items()},
            "spread": {mode: (min(v), max(v)) for mode, v in per_second.items()},
            "warm_outcomes": dict(warm.metrics.outcomes),
            "warm_requests": warm.requests - warm_before,
        }
    finally:
        for pipeline in pipelines.values():
            await pipeline.close()


async def _cold(body: bytes, mirror: str, repeat: int) -> dict[str, tuple[float, int]]:
    """Latency of a review whose image is not cached (a new app, an empty cache)."""
    found: dict[str, list[tuple[float, int]]] = {}
    for _ in range(repeat):
        for kind, image in (
            ("numeric", f"{IMAGE_HOST}/shop/checkout:2.7.1"),
            ("named", f"{IMAGE_HOST}/shop/named:1"),
        ):
            with tempfile.TemporaryDirectory() as cache:
                pipeline = Pipeline("warm", mirror, Path(cache))
                try:
                    one = _review_bytes(image)
                    started = time.perf_counter()
                    result = await pipeline.review(one)
                    took = time.perf_counter() - started
                    assert pipeline.state.images is not None
                    requests = pipeline.state.images.requests
                    warnings = result.response.get("warnings", [])
                    assert not [w for w in warnings if "lookup failed" in w], warnings
                    found.setdefault(kind, []).append((took, requests))
                finally:
                    await pipeline.close()
    return {
        kind: (statistics.median(t for t, _ in runs), runs[0][1]) for kind, runs in found.items()
    }


def _push(registry: Any) -> None:
    from tests.images.conftest import image_config, layer

    base = layer({"etc/passwd": PASSWD, "etc/group": b"root:x:0:\napp:x:1000:\n"})
    registry.push_image("shop/checkout", "2.7.1", image_config("1000"), [base])
    registry.push_image("fluent-bit", "3.0", image_config("1000"), [base])
    registry.push_image("shop/named", "1", image_config("app"), [base])


# -- callgrind ----------------------------------------------------------------------------------


def _child(mode: str, count: int, mirror: str, cache: str) -> None:
    """Run under callgrind: ``count`` reviews in ``mode`` after a warm-up."""
    body = _review_bytes()

    async def go() -> None:
        pipeline = Pipeline(mode, mirror, Path(cache) / mode)
        for _ in range(20):
            await pipeline.review(body)
        resolver = pipeline.state.images
        before = resolver.requests if resolver is not None else 0
        for _ in range(count):
            await pipeline.review(body)
        after = resolver.requests if resolver is not None else 0
        # The parent reads this: registry requests inside the counted reviews (a tag's digest
        # is asked again once its TTL has passed, and valgrind runs slowly).
        print(f"requests {after - before}", file=sys.stderr)
        await pipeline.close()

    asyncio.run(go())


def _instructions(mode: str, count: int, mirror: str, cache: Path, work: Path) -> tuple[int, int]:
    """Instructions of the whole child run, and the registry requests its counted reviews
    made."""
    out = work / f"callgrind-{mode}-{count}.out"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "_child",
            "--mode",
            mode,
            "--count",
            str(count),
            "--mirror",
            mirror,
            "--cache",
            str(cache),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    requests = int(re.findall(r"^requests (\d+)$", done.stderr, re.M)[-1])
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]), requests
    raise RuntimeError(f"no totals in {out}")


def _per_review(mirror: str, cache: Path, count: int) -> dict[str, tuple[float, int]]:
    """Instructions per review by mode, and the registry requests made while counting."""
    found = {}
    with tempfile.TemporaryDirectory() as work:
        for mode in MODES:
            small, asked_small = _instructions(mode, count, mirror, cache, Path(work))
            large, asked_large = _instructions(mode, 2 * count, mirror, cache, Path(work))
            found[mode] = ((large - small) / count, asked_small + asked_large)
    return found


# -- the report ---------------------------------------------------------------------------------


def _render(
    args: argparse.Namespace,
    timed: dict[str, Any],
    counted: dict[str, tuple[float, int]] | None,
    cold: dict[str, tuple[float, int]],
    load: tuple[float, float, float],
) -> str:
    rate = timed["per_second"]
    spread = timed["spread"]
    instructions = {mode: n for mode, (n, _) in counted.items()} if counted else None
    lines = [
        "## Webhook image lookups (`hardener serve`, warm cache vs lookups off)",
        "",
        f"Run with `python tests/bench/bench_webhook_images.py --reviews {args.reviews} "
        f"--rounds {args.rounds}`: python {platform.python_version()} on {platform.machine()}, "
        f"load average {load[0]:.2f} before the run. The review is the webhook benchmark's "
        "(a Deployment's pod, an app and a sidecar container), its images served by Debian's "
        "docker-registry on loopback through an `images.registries` mirror; the handler's "
        "pipeline runs on one event loop without HTTP (decode, size, image facts, plan, answer).",
        "",
        "| mode | reviews/s (median) | min .. max | vs off | instructions/review | vs off |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        ins = instructions.get(mode) if instructions else None
        lines.append(
            f"| {mode} | {rate[mode]:.0f} | {spread[mode][0]:.0f} .. {spread[mode][1]:.0f} | "
            f"{rate[mode] / rate['off'] - 1:+.1%} | "
            + (
                f"{ins:,.0f} | {ins / instructions['off'] - 1:+.1%} |"
                if ins and instructions
                else "n/a | |"
            )
        )
    lines += [
        "",
        "- `off`: `images.lookup: false`, the image in `images.table` with the same user, so the "
        "engine decides as in `warm`; `warm`: lookups on, the cache warm (requests made during "
        f"the timed rounds: {timed['warm_requests']}); `none`: no resolver, the engine's "
        "unknown-image policy (it decides differently: no `runAsNonRoot`), for reference.",
        "- instructions/review: callgrind's count for a run of "
        f"{2 * args.callgrind} reviews minus one of {args.callgrind}, divided by "
        f"{args.callgrind}. Registry requests made inside those counted reviews: "
        + (
            ", ".join(f"{mode} {asked}" for mode, (_, asked) in counted.items())
            if counted
            else "not measured"
        )
        + " (under valgrind a review takes ~100x longer, so the 60 s tag TTL can pass and "
        "the tag's digest is asked again with one HEAD).",
        "- Both `off` and `warm` answer from memory without a task (`ImageResolver.answer_now`): "
        "a warm review creates no future and never yields to the loop.",
        "- Wall-clock rates on this shared 2-core machine vary by up to 50% between rounds (see "
        "min .. max; `none`, which does less work, can come out slower): compare the modes by "
        "their instruction counts, which do not depend on the load.",
        "",
        f"A cold lookup inside one review (a new app, an empty cache; median of {args.cold} runs):",
        "",
        "| image | review latency (ms) | registry requests |",
        "| --- | --- | --- |",
    ]
    for kind, (took, requests) in cold.items():
        user = "numeric user" if kind == "numeric" else "named user (uid from /etc/passwd)"
        lines.append(f"| {user} | {took * 1000:.1f} | {requests} |")
    lines += [
        "",
        "- The warm review after it costs what the `warm` row says; loopback has no round "
        "trip, so a real registry adds one per request (and a token request on token-auth "
        "registries). The webhook gives lookups at most 75% of `webhook.deadline-seconds`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("_child")
    child.add_argument("--mode", choices=MODES, required=True)
    child.add_argument("--count", type=int, required=True)
    child.add_argument("--mirror", required=True)
    child.add_argument("--cache", required=True)
    parser.add_argument("--reviews", type=int, default=3000, help="reviews per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cold", type=int, default=5, help="cold reviews per image kind")
    parser.add_argument(
        "--callgrind", type=int, default=60, help="reviews under callgrind (0: skip)"
    )
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()
    if args.command == "_child":
        _child(args.mode, args.count, args.mirror, args.cache)
        return

    from tests.images.conftest import start_registry

    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-webhook-images-"))
    registry = start_registry(work, None)
    try:
        _push(registry)
        mirror = f"http://{registry.host}"
        cache = work / "cache"
        body = _review_bytes()
        assert all(image.startswith(IMAGE_HOST) for image in _images_of(body))
        timed = asyncio.run(_rounds(body, mirror, cache, args.reviews, args.rounds))
        instructions = None
        if args.callgrind and shutil.which("valgrind"):
            instructions = _per_review(mirror, cache, args.callgrind)
        cold = asyncio.run(_cold(body, mirror, args.cold))
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    section = _render(args, timed, instructions, cold, load)
    print(section)
    if args.update_results:
        replace_section(START, END, section)


if __name__ == "__main__":
    main()
