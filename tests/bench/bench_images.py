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

    python tests/bench/bench_images.py --fix [--images 100] [--repeat 3] [--update-results]

measures the command line instead, each run a new ``hardener`` process: ``hardener fix
--check`` on a tree of ``--images`` Deployments, each naming its own image as Docker Hub would
(``bench/img7:1``), with the registry configured as the mirror of ``docker.io``: cold (an empty
cache under ``XDG_CACHE_HOME``), warm (the cache of the cold run) and ``--offline``; the time
to gather the image strings of ``../shared/corpus`` before planning; and the README's first
command, ``hardener fix --diff examples/``, on this machine as it is (whatever route it has to
the registries the examples name), cold and with ``HARDENER_IMAGES_OFFLINE=1``. It writes the
"fix with image lookups" section of ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from hardener.images import ImageResolver  # noqa: E402
from tests.bench._results import replace_section  # noqa: E402
from tests.bench._serve import CLI  # noqa: E402
from tests.images.conftest import (  # noqa: E402
    image_config,
    layer,
    settings_for,
    start_registry,
)

START, END = "<!-- images-bench:start -->", "<!-- images-bench:end -->"


def push_images(registry: object, count: int, prefix: str | None = None) -> list[str]:
    from tests.images.conftest import Registry

    assert isinstance(registry, Registry)
    filler = layer({f"usr/share/doc/f{i}": os.urandom(4096) for i in range(512)})  # ~2 MiB
    images = []
    for i in range(count):
        passwd = f"root:x:0:0::/root:/bin/sh\napp{i}:x:{1000 + i}:{1000 + i}::/:/bin/sh\n"
        base = layer({"etc/passwd": passwd.encode(), "etc/group": b"root:x:0:\n"})
        user = str(1000 + i) if i % 2 == 0 else f"app{i}"
        registry.push_image(f"bench/img{i}", "1", image_config(user), [filler, base])
        where = f"{registry.host}/" if prefix is None else prefix
        images.append(f"{where}bench/img{i}:1")
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


FIX_START, FIX_END = "<!-- images-fix-bench:start -->", "<!-- images-fix-bench:end -->"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{index}
spec:
  selector:
    matchLabels: {{app: app{index}}}
  template:
    metadata:
      labels: {{app: app{index}}}
    spec:
      containers:
      - name: app
        image: bench/img{index}:1
"""


def hardener(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """One ``hardener`` process: its wall time and stderr."""
    command = [sys.executable, "-c", CLI]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, cwd=ROOT, check=False
    )
    elapsed = time.perf_counter() - started
    assert done.returncode in (0, 1), done.stderr
    return elapsed, done.stderr


def images_line(stderr: str) -> str:
    return next(line.strip() for line in stderr.splitlines() if line.startswith("  images:"))


def run_fix(count: int, repeat: int, host: str) -> dict[str, str]:
    from hardener.fixer.files import collect_paths
    from hardener.fixer.run import CheckOptions, images_in_files

    base_env = {k: v for k, v in os.environ.items() if k not in ("HARDENER_IMAGES_OFFLINE",)}
    base_env["PYTHONPATH"] = str(ROOT)
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as workdir:
        tree = Path(workdir) / "tree"
        tree.mkdir()
        for index in range(count):
            (tree / f"app{index}.yaml").write_text(DEPLOYMENT.format(index=index))
        config = Path(workdir) / "hardener.yaml"
        config.write_text(
            f"images:\n  registries:\n    docker.io: {{mirror: 'http://{host}', insecure: true}}\n",
            encoding="utf-8",
        )
        argv = ["fix", "--check", "--config", str(config), str(tree)]
        cold, warm, offline = [], [], []
        for attempt in range(repeat):
            env = {**base_env, "XDG_CACHE_HOME": str(Path(workdir) / f"cache{attempt}")}
            elapsed, stderr = hardener(argv, env)
            cold.append(elapsed)
            results["cold_line"] = images_line(stderr)
            elapsed, stderr = hardener(argv, env)
            warm.append(elapsed)
            results["warm_line"] = images_line(stderr)
            fresh = {**base_env, "XDG_CACHE_HOME": str(Path(workdir) / f"empty{attempt}")}
            elapsed, stderr = hardener([*argv, "--offline"], fresh)
            offline.append(elapsed)
            results["offline_line"] = images_line(stderr)
        results.update(
            cold=f"{statistics.median(cold):.2f}",
            warm=f"{statistics.median(warm):.2f}",
            offline=f"{statistics.median(offline):.2f}",
        )
        readme, readme_offline, floor = [], [], []
        for attempt in range(repeat):
            floor.append(hardener(["--help"], base_env)[0])
            env = {**base_env, "XDG_CACHE_HOME": str(Path(workdir) / f"readme{attempt}")}
            elapsed, stderr = hardener(["fix", "--diff", "examples/"], env)
            readme.append(elapsed)
            results["readme_line"] = images_line(stderr)
            results["readme_unknown"] = next(
                (line.strip() for line in stderr.splitlines() if "unknown:" in line), ""
            )
            elapsed, _ = hardener(
                ["fix", "--diff", "examples/"], {**env, "HARDENER_IMAGES_OFFLINE": "1"}
            )
            readme_offline.append(elapsed)
        results.update(
            readme=f"{statistics.median(readme):.2f}",
            readme_offline=f"{statistics.median(readme_offline):.2f}",
            floor=f"{statistics.median(floor):.2f}",
        )
    corpus = ROOT.parent / "shared" / "corpus"
    if corpus.is_dir():
        paths = collect_paths([str(corpus)], []).files
        times = []
        for _ in range(repeat):
            started = time.process_time()
            found = images_in_files(paths, CheckOptions())
            times.append(time.process_time() - started)
        results["gather"] = f"{statistics.median(times):.2f}"
        results["gather_what"] = f"{len(paths)} files, {len(found)} image strings"
    return results


def render_fix(count: int, repeat: int, r: dict[str, str]) -> str:
    load = os.getloadavg()[0]
    gather = ""
    if "gather" in r:
        gather = (
            f"| gathering the image strings of `../shared/corpus` ({r['gather_what']}), the "
            f"pass before planning (CPU seconds, in process) | {r['gather']} | |\n"
        )
    readme = "README's first command, `hardener fix --diff examples/`, empty cache, this machine"
    return f"""{FIX_START}
## fix with image lookups (`hardener fix`, `check`, `audit`)

Run with `python tests/bench/bench_images.py --fix --images {count} --repeat {repeat}`: each
figure is the median wall time of {repeat} new `hardener` processes (imports included), python
{platform.python_version()} on {platform.machine()}, load average {load:.2f} after the runs (2
CPUs shared with other work). The tree: {count} Deployments, each naming its own image as Docker
Hub would (`bench/img7:1`), served by Debian's docker-registry on loopback as the mirror of
`docker.io`; half the images run as a numeric user, half as a name read from `/etc/passwd`.

| run | seconds | images |
| --- | --- | --- |
| `fix --check`, cold (empty cache) | {r["cold"]} | {r["cold_line"]} |
| `fix --check`, warm (the cache of the cold run) | {r["warm"]} | {r["warm_line"]} |
| `fix --check --offline` (no lookup, empty cache) | {r["offline"]} | {r["offline_line"]} |
{gather}| {readme} | {r["readme"]} | {r["readme_line"]} |
| the same with `HARDENER_IMAGES_OFFLINE=1` | {r["readme_offline"]} | |
| the process alone, `hardener --help` (Python, and the imports of every command) | {r["floor"]} | |

- Cold, the {count} images cost the difference to `--offline`: lookups run 16 at a time in one
  resolver per run. Warm, no request is sent (a tag's digest is trusted for 60 s, a digest's
  facts forever), so a second run costs what an offline one does.
- This machine has no route to the registries the examples name: the README's first command
  pays one failed connection per registry host, remembered for the rest of the run, and falls
  back to the offline table; the summary says so:
  `{r["readme_unknown"]}`.
- Most of each figure is the process itself: building the command line imports every
  command's modules, the webhook's and the Kubernetes client's included (2.3 of the 2.5 s
  cProfile gave `fix --diff examples/` here). Compare the rows with each other
  and with that floor, not with other sections.
{FIX_END}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--update-results", action="store_true")
    parser.add_argument("--fix", action="store_true", help="time the command line (see above)")
    args = parser.parse_args()
    if args.fix:
        with tempfile.TemporaryDirectory() as workdir:
            registry = start_registry(Path(workdir), None)
            try:
                push_images(registry, args.images, prefix="")
                fix_results = run_fix(args.images, args.repeat, registry.host)
            finally:
                registry.stop()
        section = render_fix(args.images, args.repeat, fix_results)
        print(section)
        if args.update_results:
            replace_section(FIX_START, FIX_END, section)
        return
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
        replace_section(START, END, section)


if __name__ == "__main__":
    main()
