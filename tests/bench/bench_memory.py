"""Peak memory of ``hardener serve`` per body size and shape (a script, not a test).

    python tests/bench/bench_memory.py [--update-results]

Each review is posted over TLS (certificates from ``hardener certs``) to a fresh ``hardener
serve`` process (config ``images: {lookup: false}``, the rest default), so that its peak is
that of one review of that body on a server that has done nothing else. The peak is the
process's ``VmHWM`` (reset through ``/proc/PID/clear_refs`` once the server is ready), the
idle RSS is ``VmRSS`` just before. Shapes, for each size up to ``webhook.max-body-bytes``:

- ``annotation``: a Pod whose size is one long annotation, the way real objects grow
  (``last-applied-configuration``, embedded JSON);
- ``containers``: a Pod of 250 containers (``webhook.max-containers``) and 1,000 volumes,
  each container with environment variables up to the size: the most work hardener does;
- ``arrays``: a Pod with a field holding ``[[],[],...]`` up to the size: the most Python
  objects per byte a body can make (over ``webhook.max-values``: admitted unhardened, but
  parsed first).

Then a fresh server takes ``--clients`` bodies of the largest ``arrays`` at once, once with
the default ``webhook.max-bytes-in-flight`` and once with the budget out of the way, to show
what the body budget bounds; and four 1 MiB ones, which fill the default budget together.
``--update-results`` rewrites the memory section of ``tests/bench/RESULTS.md`` (between its
markers) and leaves the rest alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._results import replace_section
from tests.bench._serve import (
    Server,
    TreePeak,
    memory_limit_mib,
    reset_peak,
    start_server,
    status_kib,
)

START_MARK = "<!-- memory-bench:start -->"
END_MARK = "<!-- memory-bench:end -->"
MAX_BODY = 3 * 1024 * 1024
SIZES = (64 * 1024, 270_000, 1024 * 1024, MAX_BODY - 4096)
CONFIG = "images: {lookup: false}\n"


def _review(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "6b4f2c4e-8a1d-4a55-9c55-2f1d0c3e9a10",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def _pod(containers: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {"name": f"c{i}", "image": "registry.example/web:1.0"} for i in range(containers)
            ]
        },
    }


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def body_of(shape: str, size: int) -> bytes:
    """An AdmissionReview of ``shape`` whose body is ``size`` bytes, give or take a few."""
    pod = _pod(250 if shape == "containers" else 1)
    if shape == "containers":
        pod["spec"]["volumes"] = [{"name": f"v{i}", "emptyDir": {}} for i in range(1000)]
    frame = len(_encode(_review(pod)))
    room = max(size - frame, 0)
    if shape == "annotation":
        pod["metadata"]["annotations"] = {"example.com/blob": "x" * max(room - 40, 0)}
    elif shape == "containers":
        # Environment variables of 64-byte values, spread over the containers.
        per_env = len('{"name":"E0000","value":""},') + 64
        count = room // per_env
        for i, container in enumerate(pod["spec"]["containers"]):
            share = count // 250 + (1 if i < count % 250 else 0)
            container["env"] = [{"name": f"E{j:04}", "value": "v" * 64} for j in range(share)]
    elif shape == "arrays":
        pod["spec"]["x-padding"] = [[] for _ in range(max(room - 20, 0) // 3)]
    else:
        raise ValueError(shape)
    return _encode(_review(pod))


def one_review(work: Path, shape: str, size: int, log: Any) -> dict[str, Any]:
    body = body_of(shape, size)
    server = start_server(work, CONFIG, log, ca=work / "ca.crt")
    try:
        time.sleep(0.5)
        idle = status_kib(server.pid, "VmRSS")
        reset_peak(server.pid)
        started = time.monotonic()
        with TreePeak(server.pid) as tree:
            status, answer = server.post(body)
            took = time.monotonic() - started
            time.sleep(0.1)
        peak = status_kib(server.pid, "VmHWM")
        after = status_kib(server.pid, "VmRSS")
    finally:
        server.stop()
    response = (answer or {}).get("response", {})
    outcome = (response.get("auditAnnotations") or {}).get("outcome", str(status))
    return {
        "shape": shape,
        "bytes": len(body),
        "status": status,
        "outcome": outcome,
        "idle_mib": idle / 1024,
        "peak_mib": peak / 1024,
        "tree_mib": tree.peak_kib / 1024,
        "after_mib": after / 1024,
        "seconds": took,
    }


def at_once(work: Path, clients: int, size: int, budget: int | None, log: Any) -> dict[str, Any]:
    body = body_of("arrays", size)
    config = CONFIG + ("" if budget is None else f"webhook: {{max-bytes-in-flight: {budget}}}\n")
    server: Server = start_server(work, config, log, ca=work / "ca.crt")
    statuses: list[str] = []
    try:
        time.sleep(0.5)
        idle = status_kib(server.pid, "VmRSS")
        reset_peak(server.pid)

        def post() -> None:
            try:
                status, answer = server.post(body)
            except OSError as exc:
                statuses.append(f"client error {type(exc).__name__}")
                return
            response = (answer or {}).get("response") or {}
            outcome = (response.get("auditAnnotations") or {}).get("outcome", "")
            statuses.append(f"{status} {outcome}".strip())

        posters = [threading.Thread(target=post) for _ in range(clients)]
        with TreePeak(server.pid) as tree:
            for poster in posters:
                poster.start()
            for poster in posters:
                poster.join()
            time.sleep(3)  # any work left past the deadline ends within this
        peak = status_kib(server.pid, "VmHWM")
    finally:
        server.stop()
    return {
        "clients": clients,
        "bytes": len(body),
        "budget": budget,
        "idle_mib": idle / 1024,
        "peak_mib": peak / 1024,
        "tree_mib": tree.peak_kib / 1024,
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
    }


def _render(rows: list[dict[str, Any]], crowds: list[dict[str, Any]]) -> str:
    limit = memory_limit_mib()
    load = os.getloadavg()
    lines = [
        START_MARK,
        "## Webhook memory (`hardener serve`)",
        "",
        "Run with `python tests/bench/bench_memory.py --update-results`. Each review goes over "
        "TLS to a fresh `hardener serve` (config `images: {lookup: false}`, the rest default); "
        "peak is the process's `VmHWM` from the moment it was ready, idle its RSS before the "
        "review; with workers, the largest memory of the server and its worker processes "
        "together (a body of very many values is decoded in one: the sum of their proportional "
        "set sizes, which counts shared pages once, as the memory limit does), sampled every "
        "5 ms. The Deployment's "
        f"memory limit (`deploy/base/deployment.yaml`) is {limit} MiB. "
        f"python {platform.python_version()}, load average before the run "
        f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}.",
        "",
        "| shape | body (bytes) | answer | idle RSS (MiB) | peak RSS (MiB) | peak - idle (MiB) "
        "| with workers (MiB) | with workers, % of the limit | time (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['shape']} | {row['bytes']} | {row['status']} {row['outcome']} "
            f"| {row['idle_mib']:.0f} | {row['peak_mib']:.0f} "
            f"| {row['peak_mib'] - row['idle_mib']:.0f} | {row['tree_mib']:.0f} "
            f"| {max(row['peak_mib'], row['tree_mib']) / limit * 100:.0f}% "
            f"| {row['seconds']:.2f} |"
        )
    lines += [
        "",
        "`arrays` bodies posted at once, each on its own connection (the peak is read 3 s "
        "after the last answer, so work left running past the deadline is counted):",
        "",
        "| bodies at once | webhook.max-bytes-in-flight | answers | idle RSS (MiB) "
        "| peak RSS (MiB) | with workers (MiB) | with workers, % of the limit |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for crowd in crowds:
        budget = "default" if crowd["budget"] is None else f"{crowd['budget']} (no bound)"
        answers = ", ".join(f"{n} x {s}" for s, n in crowd["statuses"].items())
        lines.append(
            f"| {crowd['clients']} x {crowd['bytes']} bytes | {budget} | {answers} "
            f"| {crowd['idle_mib']:.0f} | {crowd['peak_mib']:.0f} | {crowd['tree_mib']:.0f} "
            f"| {max(crowd['peak_mib'], crowd['tree_mib']) / limit * 100:.0f}% |"
        )
    lines.append(END_MARK)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--update-results", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hardener-memory-"))
    from tests.bench._serve import make_certs

    make_certs(work)
    rows = []
    with (work / "serve.log").open("wb") as log:
        for shape in ("annotation", "containers", "arrays"):
            for size in SIZES:
                row = one_review(work, shape, size, log)
                rows.append(row)
                print(
                    f"{shape:11} {row['bytes']:>8} {row['status']} {row['outcome']:13} "
                    f"idle {row['idle_mib']:.0f} peak {row['peak_mib']:.0f} MiB "
                    f"{row['seconds']:.2f}s",
                    flush=True,
                )
        crowds = []
        # The default budget (4 MiB) holds one largest body at a time, or four of 1 MiB: the
        # most memory it lets the worst bodies take at once.
        for clients, size, budget in (
            (args.clients, SIZES[-1], None),
            (args.clients, SIZES[-1], 1 << 30),
            (4, SIZES[-2], None),
        ):
            crowd = at_once(work, clients, size, budget, log)
            crowds.append(crowd)
            print(f"at once: {crowd}", flush=True)
    section = _render(rows, crowds)
    print(section)
    if args.update_results:
        replace_section(START_MARK, END_MARK, section)


if __name__ == "__main__":
    main()
