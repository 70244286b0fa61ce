"""Benchmark of image lookups against a loopback registry (a script, not a test).

    python tests/bench/bench_images.py [--images 100] [--repeat 5] [--update-results]

Starts Debian's ``docker-registry`` on 127.0.0.1 and pushes ``--images`` distinct images
through its API (half with a numeric ``USER``, half with a named one, whose uid is read from a
gzip layer holding ``/etc/passwd`` under a 2 MiB layer of other files). Then measures:

- a cold lookup of one image (new resolver, empty cache): numeric user and named user;
- all images cold (new resolver, empty disk cache), the cost of a first ``fix`` run;
- all images warm from disk (new resolver, the cache of the cold run), a second ``fix`` run
  within the tag TTL;
- all images warm in memory (the same resolver again), the webhook's steady state.

Loopback has no network latency, so these numbers are hardener's own cost (HTTP, hashing,
gzip, tar) plus the registry's; a real registry adds its round trips (a cold lookup makes 4
requests for a numeric user and 5 for a named one, plus a token request on token-auth
registries). ``--update-results`` rewrites the images section of ``tests/bench/RESULTS.md``
(between its markers) and leaves the rest alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hardener.images import ImageResolver  # noqa: E402
from tests.images.conftest import (  # noqa: E402
    image_config,
    layer,
    settings_for,
    start_registry,
)

RESULTS = ROOT / "tests" / "bench" / "RESULTS.md"
START, END = "<!-- images-bench:start -->", "<!-- images-bench:end -->"


def push_images(registry: object, count: int) -> list[str]:
    from tests.images.conftest import Registry

    assert isinstance(registry, Registry)
    filler = layer({f"usr/share/doc/f{i}": os.urandom(4096) for i in range(512)})  # ~2 MiB
    images = []
    for i in range(count):
        passwd = f"root:x:0:0::/root:/bin/sh\napp{i}:x:{1000 + i}:{1000 + i}::/:/bin/sh\n"
        base = layer({"etc/passwd": passwd.encode(), "etc/group": b"root:x:0:\n"})
        user = str(1000 + i) if i % 2 == 0 else f"app{i}"
        registry.push_image(f"bench/img{i}", "1", image_config(user), [filler, base])
        images.append(f"{registry.host}/bench/img{i}:1")
    return images


async def timed(resolver: ImageResolver, images: list[str]) -> tuple[float, int]:
    before = resolver.requests
    started = time.perf_counter()
    facts = await resolver.lookup_many(images)
    elapsed = time.perf_counter() - started
    bad = [f for f in facts.values() if f.uid is None]
    assert not bad, bad[:3]
    return elapsed, resolver.requests - before


async def run(count: int, repeat: int, host: str, images: list[str]) -> dict[str, str]:
    settings = settings_for(host)
    cold_one: dict[str, list[float]] = {"numeric": [], "named": []}
    requests_one: dict[str, int] = {}
    for _ in range(repeat):
        for kind, image in (("numeric", images[0]), ("named", images[1])):
            with tempfile.TemporaryDirectory() as cache:
                async with ImageResolver(settings, cache_dir=Path(cache)) as resolver:
                    elapsed, requests = await timed(resolver, [image])
            cold_one[kind].append(elapsed)
            requests_one[kind] = requests
    cold_all, warm_disk, warm_memory = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            async with ImageResolver(settings, cache_dir=Path(cache)) as resolver:
                elapsed, cold_requests = await timed(resolver, images)
                cold_all.append(elapsed)
                elapsed, memory_requests = await timed(resolver, images)
                warm_memory.append(elapsed)
            async with ImageResolver(settings, cache_dir=Path(cache)) as resolver:
                elapsed, disk_requests = await timed(resolver, images)
                warm_disk.append(elapsed)
    ms = lambda values: f"{statistics.median(values) * 1000:.1f}"  # noqa: E731
    return {
        "cold_numeric": ms(cold_one["numeric"]),
        "cold_named": ms(cold_one["named"]),
        "req_numeric": str(requests_one["numeric"]),
        "req_named": str(requests_one["named"]),
        "cold_all": ms(cold_all),
        "warm_disk": ms(warm_disk),
        "warm_memory": ms(warm_memory),
        "req_cold": str(cold_requests),
        "req_disk": str(disk_requests),
        "req_memory": str(memory_requests),
    }


def render(count: int, repeat: int, r: dict[str, str]) -> str:
    load = os.getloadavg()[0]
    return f"""{START}
## Image lookups (`hardener.images`)

Run with `python tests/bench/bench_images.py --images {count} --repeat {repeat}` against
Debian's docker-registry on loopback (median of {repeat} runs). python
{platform.python_version()} on {platform.machine()}, load average {load:.2f} before the run.
Half of the images have a numeric `USER`; the other half a name, resolved from `/etc/passwd` in
the top layer (the layer below it, ~2 MiB, is never read).

| lookup | wall time (ms) | HTTP requests |
| --- | --- | --- |
| one image cold, numeric user | {r["cold_numeric"]} | {r["req_numeric"]} |
| one image cold, named user | {r["cold_named"]} | {r["req_named"]} |
| {count} distinct images cold (a first `fix`) | {r["cold_all"]} | {r["req_cold"]} |
| {count} images warm from disk (a new run) | {r["warm_disk"]} | {r["req_disk"]} |
| {count} images warm in memory (the webhook) | {r["warm_memory"]} | {r["req_memory"]} |

- Loopback has no round-trip time: against a real registry each cold lookup adds its
  requests' round trips (4 for a numeric user: probe once per host, HEAD, manifest, config;
  one more per layer read for a named user; one token request per repository on token-auth
  registries). Lookups run 8 at a time.
- Warm lookups make no request at all: the tag's digest is trusted for 60 s and the facts
  behind a digest never change.
{END}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        registry = start_registry(Path(workdir), None)
        try:
            images = push_images(registry, args.images)
            results = asyncio.run(run(args.images, args.repeat, registry.host, images))
        finally:
            registry.stop()
    section = render(args.images, args.repeat, results)
    print(section)
    if args.update_results:
        text = RESULTS.read_text(encoding="utf-8")
        if START in text:
            text = re.sub(
                re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S
            )
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
