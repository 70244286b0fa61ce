"""Benchmark of ``hardener serve`` against a floor server (a script, not a test).

    python tests/bench/bench_webhook.py [--duration 10] [--compiled-python VENV/bin/python]
        [--attribute] [--update-results]
    python tests/bench/bench_webhook.py breakdown    # the in-process table only

Starts, in the same run, ``hardener serve`` (TLS, default config, JSON logs to a file) and a
*floor* server: a bare aiohttp handler over the same TLS certificate that only reads and
parses the JSON body (stdlib ``json``, asyncio's own event loop) and returns a fixed
AdmissionReview. The floor is the reference of the target ratio. A second reference, the same
floor on uvloop with orjson (what ``hardener serve`` itself runs on), shows how much of
hardener's standing comes from the faster loop and parser: the ratio is reported against both.
All get the same realistic AdmissionReview (a Pod created by a Deployment's ReplicaSet, as the
API server sends it) at concurrency 1, 8 and 64, over keep-alive TLS connections (as the API
server keeps them).

The load comes from ``wrk`` when it is installed (``apt-get install wrk``), else from an
aiohttp client in a separate process. With two or more cores the server runs pinned to core 0
and the load generator to core 1 (``taskset``). Reported: requests/s, p50 and p99 latency,
and hardener's throughput as a ratio of the floor's. ``--update-results`` rewrites the webhook
section of ``tests/bench/RESULTS.md`` (between its markers) and leaves the rest alone.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
from tests.bench._results import replace_section  # noqa: E402
from tests.bench._serve import CLI  # noqa: E402

START_MARK = "<!-- webhook-bench:start -->"
END_MARK = "<!-- webhook-bench:end -->"
CONCURRENCY = (1, 8, 64)

FIXED_RESPONSE = json.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "00000000-0000-0000-0000-000000000000", "allowed": True},
    }
).encode()


def realistic_review() -> dict[str, Any]:
    """A Pod CREATE as the API server sends it for a pod of a Deployment's ReplicaSet."""
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": "checkout-6f7d8c9b5d-",
            "namespace": "shop",
            "creationTimestamp": None,
            "labels": {
                "app.kubernetes.io/name": "checkout",
                "app.kubernetes.io/part-of": "shop",
                "pod-template-hash": "6f7d8c9b5d",
            },
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "checkout-6f7d8c9b5d",
                    "uid": "5c1d3f5e-8a1b-4c1e-9d7f-2b6a1c0e9f11",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-05-01T10:00:01Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:generateName": {},
                            "f:labels": {
                                ".": {},
                                "f:app.kubernetes.io/name": {},
                                "f:pod-template-hash": {},
                            },
                            "f:ownerReferences": {
                                ".": {},
                                'k:{"uid":"5c1d3f5e-8a1b-4c1e-9d7f-2b6a1c0e9f11"}': {},
                            },
                        },
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"checkout"}': {".": {}, "f:image": {}, "f:name": {}}
                            },
                            "f:dnsPolicy": {},
                            "f:restartPolicy": {},
                        },
                    },
                }
            ],
        },
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "checkout", "defaultMode": 420}},
                {
                    "name": "kube-api-access-7xk2p",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                        }
                                    ]
                                }
                            },
                        ],
                        "defaultMode": 420,
                    },
                },
            ],
            "containers": [
                {
                    "name": "checkout",
                    "image": "registry.example.com/shop/checkout:2.7.1",
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "PAYMENT_URL", "value": "http://payment.shop.svc:8080"},
                        {
                            "name": "POD_NAME",
                            "valueFrom": {
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}
                            },
                        },
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/checkout", "readOnly": True},
                        {
                            "name": "kube-api-access-7xk2p",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        },
                    ],
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                        "timeoutSeconds": 1,
                        "periodSeconds": 10,
                        "successThreshold": 1,
                        "failureThreshold": 3,
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                        "timeoutSeconds": 1,
                        "periodSeconds": 5,
                        "successThreshold": 1,
                        "failureThreshold": 3,
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                },
                {
                    "name": "log-shipper",
                    "image": "registry.example.com/fluent-bit:3.0",
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                    "volumeMounts": [
                        {
                            "name": "kube-api-access-7xk2p",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        }
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                },
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "checkout",
            "serviceAccount": "checkout",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {},
    }
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "b1c2d3e4-0000-4000-8000-000000000001",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
            },
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


# -- the floor server -----------------------------------------------------------------------------


FLOORS = ("floor", "floor-fast")
"""The floor as the issue defines it, and the same on uvloop with orjson."""


def run_floor(port: int, cert: str, key: str, fast: bool = False) -> None:
    from aiohttp import web

    loop = None
    loads: Any = json.loads
    if fast:
        import orjson
        import uvloop

        loop = uvloop.new_event_loop()
        loads = orjson.loads

    async def handler(request: web.Request) -> web.Response:
        loads(await request.read())
        return web.Response(body=FIXED_RESPONSE, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/mutate", handler)
    app.router.add_get("/healthz", healthz)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        ssl_context=context,
        access_log=None,
        print=None,
        loop=loop,
    )


# -- hardener serve with parts of the work replaced by precomputed answers (--attribute) -----

STUBS = ("plan", "plan+evaluate", "review")


def run_stubbed(stub: str, serve_args: list[str]) -> None:
    """``hardener serve`` with ``stub`` answered from a precomputed result for the benchmark's
    review: what the server costs without that part. For measurements only."""
    sys.path.insert(0, str(REPO))
    import hardener.webhook._app as app_module
    import hardener.webhook._review as review_module
    from hardener.cli import main as cli_main
    from hardener.config import default_config
    from hardener.engine import plan, still_violated

    obj = realistic_review()["request"]["object"]
    config = default_config()
    planned = plan(obj, config, namespace="shop", evaluate=False)
    verdict = still_violated(planned.hardened, config, namespace="shop")
    if stub in ("plan", "plan+evaluate"):
        review_module.plan = lambda *args, **kwargs: planned  # type: ignore[assignment]
    if stub == "plan+evaluate":
        review_module.still_violated = lambda *args, **kwargs: list(verdict)  # type: ignore[assignment]
    if stub == "review":

        def unchanged(work: Any, *args: Any, **kwargs: Any) -> Any:
            return review_module.ReviewResult(
                response={"uid": work.request["uid"], "allowed": True}, outcome="unchanged"
            )

        app_module.finish_review = unchanged  # type: ignore[assignment]
    raise SystemExit(cli_main(["serve", *serve_args]))


# -- the aiohttp load generator (when wrk is missing) ----------------------------------------------


def run_load(url: str, concurrency: int, duration: float, body_file: str) -> None:
    import aiohttp

    body = Path(body_file).read_bytes()

    async def main() -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
        latencies: list[float] = []
        errors = 0
        async with aiohttp.ClientSession(connector=connector) as session:
            stop_at = time.perf_counter() + duration

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < stop_at:
                    started = time.perf_counter()
                    async with session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as resp:
                        await resp.read()
                        if resp.status != 200:
                            errors += 1
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - began
        latencies.sort()
        print(
            json.dumps(
                {
                    "rps": len(latencies) / elapsed,
                    "p50_ms": latencies[len(latencies) // 2] * 1000,
                    "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
                    "requests": len(latencies),
                    "errors": errors,
                }
            )
        )

    asyncio.run(main())


# -- the benchmark -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pin(core: int | None) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(core)]


def _wait_ready(url: str, context: ssl.SSLContext, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def _post_once(url: str, body: bytes, context: ssl.SSLContext) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=context) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
        return answer


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk(
    url: str, concurrency: int, duration: float, lua: Path, core: int | None
) -> dict[str, float]:
    command = [
        *_pin(core),
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert found, out
        return float(found.group(1)) * _UNITS[found.group(2)]

    errors = 0
    for pattern in (
        r"Non-2xx or 3xx responses:\s+(\d+)",
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    ):
        found = re.search(pattern, out)
        if found:
            errors += sum(int(g) for g in found.groups())
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "requests": requests,
        "errors": errors,
    }


def _aiohttp_load(
    url: str, concurrency: int, duration: float, body_file: Path, core: int | None
) -> dict[str, float]:
    command = [
        *_pin(core),
        sys.executable,
        __file__,
        "load",
        "--url",
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--body",
        str(body_file),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def _machine(load_before: tuple[float, float, float]) -> dict[str, str]:
    import aiohttp

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk = shutil.which("wrk")
    wrk_version = "not installed"
    if wrk:
        probe = subprocess.run([wrk, "--version"], capture_output=True, text=True)
        wrk_version = (probe.stdout or probe.stderr).splitlines()[0].strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "uvloop": _version("uvloop"),
        "orjson": _version("orjson"),
        "openssl": ssl.OPENSSL_VERSION,
        "load generator": wrk_version if wrk else "aiohttp client (wrk not installed)",
        "load average before the run (1, 5, 15 min; other jobs on the machine)": ", ".join(
            f"{value:.2f}" for value in load_before
        ),
    }


def _breakdown(review: dict[str, Any]) -> list[tuple[str, float]]:
    """Microseconds per call of each step of the hot path, in this process, for the review."""
    import binascii
    import io
    import logging

    import orjson

    import hardener.webhook._review as review_module
    from hardener.config import default_config
    from hardener.engine import plan, still_violated
    from hardener.locate import pod_sites
    from hardener.webhook import (
        Metrics,
        configure_logging,
        decode_review,
        encode_review,
        finish_review,
        prepare_review,
    )
    from hardener.webhook._logs import log_review

    def decide(request: Any, config: Any) -> Any:
        """What the server runs for the review: sized by its body, so not counted again."""
        work = prepare_review(request, config, body_bytes=len(body))
        assert not isinstance(work, review_module.ReviewResult)
        return finish_review(work, config)

    config = default_config()
    body = json.dumps(review).encode()
    obj = review["request"]["object"]
    sites = pod_sites(obj)
    decided = plan(obj, config, namespace="shop", evaluate=False, sites=sites)
    verdict = still_violated(decided.hardened, config, namespace="shop", sites=sites)
    result = decide(decode_review(body), config)
    response = result.response

    def per_call(function: Any, number: int = 300) -> float:
        return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6

    def without_engine() -> float:
        """review() with plan() and the PSS verdict answered from precomputed results: the
        glue."""
        real_plan, real_verdict = review_module.plan, review_module.still_violated
        review_module.plan = lambda *args, **kwargs: decided  # type: ignore[assignment]
        review_module.still_violated = lambda *args, **kwargs: list(verdict)  # type: ignore[assignment]
        # Timed around review() alone, each call on a request decoded just before it (as in
        # the server), rather than as a difference of two noisy measurements.
        clock = time.perf_counter
        best = float("inf")
        try:
            for _ in range(5):
                spent = 0.0
                for _ in range(300):
                    request = decode_review(body)
                    started = clock()
                    decide(request, config)
                    spent += clock() - started
                best = min(best, spent / 300 * 1e6)
        finally:
            review_module.plan, review_module.still_violated = real_plan, real_verdict
        return best

    stream = io.StringIO()
    names = ("hardener", "aiohttp.server", "aiohttp.web", "asyncio")
    saved = {name: list(logging.getLogger(name).handlers) for name in names}
    handler = configure_logging(stream)
    fields = {
        "uid": response["uid"],
        "kind": result.kind,
        "namespace": result.namespace,
        "name": result.name,
        "operation": result.operation,
        "subresource": None,
        "outcome": result.outcome,
        "rules": result.rules,
        "ops": result.ops,
        "violations": result.violations,
        "latency_ms": 0.789,
    }

    async def log_lines() -> float:
        # On a running loop, as in the server: lines are queued and written in batches.
        def one() -> None:
            log_review(fields)
            if len(stream.getvalue()) > 1 << 20:
                stream.seek(0)
                stream.truncate()

        return per_call(one)

    log_us = asyncio.run(log_lines())
    handler.flush()
    for name, handlers in saved.items():
        logging.getLogger(name).handlers[:] = handlers
    metrics = Metrics()

    def count() -> None:
        metrics.by_outcome[result.outcome].inc()
        metrics.count_patch(result.rules)
        metrics.latency.observe(0.000789)

    return [
        ("json.loads of the body (stdlib: all the floor does)", per_call(lambda: json.loads(body))),
        (
            "orjson.loads of the body (what hardener parses with)",
            per_call(lambda: orjson.loads(body)),
        ),
        ("decode_review (orjson.loads + envelope checks)", per_call(lambda: decode_review(body))),
        (
            "engine plan(evaluate=False), as the webhook calls it",
            per_call(lambda: plan(obj, config, namespace="shop", evaluate=False, sites=sites)),
        ),
        (
            "patch: orjson.dumps + base64 of plan().ops",
            per_call(lambda: binascii.b2a_base64(orjson.dumps(decided.ops), newline=False)),
        ),
        (
            "PSS verdict of the hardened pod (still_violated)",
            per_call(
                lambda: still_violated(decided.hardened, config, namespace="shop", sites=sites)
            ),
        ),
        (
            "review() without plan() and the PSS verdict (size, patch, warnings, result)",
            without_engine(),
        ),
        ("encode_review (the response)", per_call(lambda: encode_review(response))),
        ("the review log line (queued, written in batches)", log_us),
        ("metrics: outcome, patches by rule, latency", per_call(count)),
        (
            "whole review(): decode + plan + patch + PSS verdict + encode",
            per_call(lambda: encode_review(decide(decode_review(body), config).response)),
        ),
    ]


ATTRIBUTION_ROUNDS = 3


def _attribute(
    servers: dict[str, subprocess.Popen[bytes]],
    urls: dict[str, str],
    load: Any,
    server_core: int | None,
    work: Path,
    client_context: ssl.SSLContext,
    duration: float,
    warmup: float,
) -> list[tuple[str, list[float]]]:
    """Server CPU per request at the top concurrency for hardener as is, with each stub, and
    for the floor: every variant runs at once and is measured in interleaved rounds, so that
    drift in the machine's speed hits them all alike."""
    for stub in STUBS:
        port = _free_port()
        servers[stub] = subprocess.Popen(
            [
                *_pin(server_core),
                sys.executable,
                __file__,
                "stubbed",
                "--stub",
                stub,
                "--",
                *_serve_options(port, work),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        urls[stub] = f"https://127.0.0.1:{port}/mutate"
        _wait_ready(f"https://127.0.0.1:{port}/readyz", client_context, servers[stub])
        load(stub, 8, warmup)
    variants = ["hardener", *STUBS, *FLOORS]
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(ATTRIBUTION_ROUNDS):
        for name in variants if round_number % 2 == 0 else reversed(variants):
            samples[name].append(load(name, CONCURRENCY[-1], duration)["cpu_us"])
        print(
            f"attribution round {round_number + 1}: "
            + ", ".join(f"{n} {samples[n][-1]:.0f} us" for n in variants),
            file=sys.stderr,
        )
    return [(name, samples[name]) for name in variants]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER_LABELS = {
    "floor": "floor",
    "floor-fast": "floor on uvloop + orjson",
    "hardener": "hardener",
    "hardener-compiled": "hardener, compiled",
}
HARDENERS = ("hardener", "hardener-compiled")


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| concurrency | server | req/s | p50 (ms) | p99 (ms) | errors | server CPU per "
        "request (us) | vs floor | vs floor on uvloop + orjson |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['c']} | {SERVER_LABELS[row['server']]} | {row['rps']:.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']:.0f} | "
            f"{row['cpu_us']:.0f} | {row.get('ratio', '')} | {row.get('ratio_fast', '')} |"
        )
    return "\n".join(lines)


def _served_on(log_lines: list[str]) -> str:
    """The event loop hardener's ``serving`` log line names."""
    for line in log_lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "serving":
            return str(record.get("loop", "asyncio (not named)"))
    return "unknown"


def _serve_options(port: int, work: Path) -> list[str]:
    """``hardener serve``'s options for a server of this run on ``port``."""
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        str(_free_port()),
        "--tls-cert",
        str(work / "tls.crt"),
        "--tls-key",
        str(work / "tls.key"),
    ]


def _without_checkout() -> dict[str, str]:
    """The environment for a process that must import its own install of hardener."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def _installed_breakdown(python: str) -> list[tuple[str, float]]:
    """The in-process table, measured by ``python`` on its own install of hardener."""
    done = subprocess.run(
        [python, __file__, "breakdown", "--installed", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env=_without_checkout(),
        cwd=tempfile.gettempdir(),
    )
    return [(name, float(micros)) for name, micros in json.loads(done.stdout)]


def _variant(python: str, checkout: bool = False) -> str:
    """What ``hardener --version`` says under ``python``: which build runs."""
    done = subprocess.run(
        [python, "-c", CLI, "--version"],
        capture_output=True,
        text=True,
        env=None if checkout else _without_checkout(),
        cwd=REPO if checkout else tempfile.gettempdir(),
    )
    return (done.stdout or done.stderr).strip()


def benchmark(
    duration: float,
    warmup: float,
    update_results: bool,
    attribute: bool,
    compiled_python: str | None = None,
) -> None:
    sys.path.insert(0, str(REPO))
    from hardener.certs import make_bundle, write_bundle

    load_before = os.getloadavg()
    cores = os.cpu_count() or 1
    server_core, load_core = (0, 1) if cores >= 2 else (None, None)
    use_wrk = shutil.which("wrk") is not None
    work = Path(tempfile.mkdtemp(prefix="hardener-bench-"))
    bundle = make_bundle(["localhost"], ["127.0.0.1"])
    write_bundle(bundle, work)
    review = realistic_review()
    # In-process costs first, while nothing else of this run uses the machine.
    breakdowns = {"hardener": _breakdown(copy.deepcopy(review))}
    if compiled_python:
        breakdowns["hardener-compiled"] = _installed_breakdown(compiled_python)
    body = json.dumps(review).encode()
    body_file = work / "review.json"
    body_file.write_bytes(body)
    lua = work / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body_file}", "rb")\n'
        'wrk.body = f:read("*all")\n'
        "f:close()\n"
    )
    client_context = ssl.create_default_context(cadata=bundle.ca_cert.decode())
    hardener_port = _free_port()
    floor_ports = {name: _free_port() for name in FLOORS}
    log_file = (work / "hardener.log").open("wb")
    compiled_log = (work / "hardener-compiled.log").open("wb")
    servers = {
        "hardener": subprocess.Popen(
            [
                *_pin(server_core),
                sys.executable,
                "-c",
                CLI,
                "serve",
                *_serve_options(hardener_port, work),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            cwd=REPO,
        ),
    }
    if compiled_python:
        compiled_port = _free_port()
        servers["hardener-compiled"] = subprocess.Popen(
            [
                *_pin(server_core),
                compiled_python,
                "-c",
                CLI,
                "serve",
                *_serve_options(compiled_port, work),
            ],
            stdout=subprocess.DEVNULL,
            stderr=compiled_log,
            cwd=work,  # its own install of hardener, not this checkout
            env=_without_checkout(),
        )
    for name in FLOORS:
        servers[name] = subprocess.Popen(
            [
                *_pin(server_core),
                sys.executable,
                __file__,
                "floor",
                "--port",
                str(floor_ports[name]),
                "--cert",
                str(work / "tls.crt"),
                "--key",
                str(work / "tls.key"),
                *(["--fast"] if name == "floor-fast" else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    urls = {"hardener": f"https://127.0.0.1:{hardener_port}/mutate"}
    if compiled_python:
        urls["hardener-compiled"] = f"https://127.0.0.1:{compiled_port}/mutate"
    hardeners = [name for name in HARDENERS if name in urls]
    urls.update({name: f"https://127.0.0.1:{port}/mutate" for name, port in floor_ports.items()})
    try:
        for name in hardeners:
            _wait_ready(urls[name].replace("/mutate", "/readyz"), client_context, servers[name])
        for name in FLOORS:
            _wait_ready(
                f"https://127.0.0.1:{floor_ports[name]}/healthz", client_context, servers[name]
            )
            assert _post_once(urls[name], body, client_context)["response"]["allowed"] is True
        for name in hardeners:
            answer = _post_once(urls[name], body, client_context)["response"]
            assert answer.get("patchType") == "JSONPatch", (name, answer)

        def load(server: str, concurrency: int, seconds: float) -> dict[str, float]:
            cpu_before = _cpu_seconds(servers[server].pid)
            if use_wrk:
                result = _wrk(urls[server], concurrency, seconds, lua, load_core)
            else:
                result = _aiohttp_load(urls[server], concurrency, seconds, body_file, load_core)
            cpu = _cpu_seconds(servers[server].pid) - cpu_before
            result["cpu_us"] = cpu / max(result["requests"], 1) * 1e6
            return result

        for server in (*FLOORS, *hardeners):
            load(server, 8, warmup)
        rows: list[dict[str, Any]] = []
        for concurrency in CONCURRENCY:
            measured = {}
            for server in (*FLOORS, *hardeners):
                result = load(server, concurrency, duration)
                measured[server] = result
                rows.append({"c": concurrency, "server": server, **result})
                if server in HARDENERS:
                    ratio = result["rps"] / measured["floor"]["rps"]
                    ratio_fast = result["rps"] / measured["floor-fast"]["rps"]
                    rows[-1]["ratio"] = f"{ratio:.2f}x"
                    rows[-1]["ratio_fast"] = f"{ratio_fast:.2f}x"
                    print(
                        f"c={concurrency}: floor {measured['floor']['rps']:.0f} req/s, floor on "
                        f"uvloop + orjson {measured['floor-fast']['rps']:.0f} req/s, {server} "
                        f"{result['rps']:.0f} req/s ({ratio:.2f}x, {ratio_fast:.2f}x), "
                        f"p99 {result['p99_ms']:.2f} ms (floor {measured['floor']['p99_ms']:.2f})",
                        file=sys.stderr,
                    )
        attribution: list[tuple[str, list[float]]] = []
        if attribute:
            attribution = _attribute(
                servers, urls, load, server_core, work, client_context, duration, warmup
            )
    finally:
        for process in servers.values():
            process.terminate()
        for process in servers.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log_file.close()
        compiled_log.close()
        log_lines = (work / "hardener.log").read_text().splitlines()
        compiled_lines = (work / "hardener-compiled.log").read_text().splitlines()
        shutil.rmtree(work, ignore_errors=True)
    reviews = 0
    for line in log_lines:
        try:
            reviews += json.loads(line).get("event") == "review"
        except (ValueError, AttributeError):
            continue

    machine = _machine(load_before)
    machine["event loop of hardener serve (its serving log line)"] = _served_on(log_lines)
    if compiled_python:
        machine["compiled build"] = _variant(compiled_python) + f", {_served_on(compiled_lines)}"
        machine["pure build"] = _variant(sys.executable, checkout=True)
    section = _render(
        rows,
        machine,
        breakdowns,
        duration,
        len(body),
        reviews,
        pinned=server_core is not None,
        attribution=attribution,
    )
    print(section)
    if update_results:
        replace_section(START_MARK, END_MARK, section)


def _render(
    rows: list[dict[str, Any]],
    machine: dict[str, str],
    breakdowns: dict[str, list[tuple[str, float]]],
    duration: float,
    body_bytes: int,
    reviews: int,
    pinned: bool,
    attribution: list[tuple[str, list[float]]] | None = None,
) -> str:
    facts = "\n".join(f"- {key}: {value}" for key, value in machine.items())
    variants = list(breakdowns)
    names = [name for name, _ in breakdowns["hardener"]]
    columns = [dict(breakdowns[v]) for v in variants]
    steps = "\n".join(
        f"| {name} | " + " | ".join(f"{column[name]:.0f}" for column in columns) + " |"
        for name in names
    )
    by = {(row["c"], row["server"]): row for row in rows}

    def targets(server: str) -> str:
        plain = [by[(c, server)]["rps"] / by[(c, "floor")]["rps"] for c in CONCURRENCY]
        fast = [by[(c, server)]["rps"] / by[(c, "floor-fast")]["rps"] for c in CONCURRENCY]
        p99 = by[(8, server)]["p99_ms"] / by[(8, "floor")]["p99_ms"]
        p99_fast = by[(8, server)]["p99_ms"] / by[(8, "floor-fast")]["p99_ms"]
        return (
            f"- {SERVER_LABELS[server]}: throughput {min(plain):.2f}x to {max(plain):.2f}x the "
            f"floor (target >= 0.8x), {min(fast):.2f}x to {max(fast):.2f}x the floor on uvloop "
            f"+ orjson (target >= 0.6x); p99 at concurrency 8 {by[(8, server)]['p99_ms']:.2f} ms, "
            f"{p99:.2f}x the floor's (target <= 1.5x; {p99_fast:.2f}x the fast floor's)"
        )

    header = " | ".join(SERVER_LABELS[v] for v in variants)
    return (
        f"{START_MARK}\n"
        "## Webhook (`hardener serve`)\n\n"
        "Run with `python tests/bench/bench_webhook.py --compiled-python VENV/bin/python "
        "--update-results` (VENV: a venv with `HARDENER_COMPILE=1 pip install .` of the same "
        "commit). The same realistic "
        f"AdmissionReview ({body_bytes} bytes: a Pod CREATE for a Deployment's ReplicaSet, two "
        "containers, nine ops in the answer) is posted over keep-alive TLS to `hardener serve` "
        "(default config, JSON log line per review to a file), pure and compiled, to the floor "
        "server (aiohttp handler that only parses the JSON with the standard `json` module on "
        "asyncio's own event loop and returns a fixed AdmissionReview, same certificate) and "
        "to the same floor on uvloop with orjson, the loop and parser hardener itself uses. "
        f"{duration:g} s per point after a warm-up, the servers taking turns at each point; "
        + (
            "servers pinned to core 0, load generator to core 1.\n\n"
            if pinned
            else "not pinned (fewer than two cores).\n\n"
        )
        + "Machine:\n\n"
        f"{facts}\n\n"
        f"{_table(rows)}\n\n"
        "Targets:\n\n"
        + "\n".join(targets(v) for v in variants)
        + f"\n\nhardener logged {reviews} review lines during the run.\n\n"
        "Where a request's time goes (in-process, microseconds per call, best of 5):\n\n"
        f"| step | {header} |\n|---|" + "---:|" * len(variants) + "\n"
        f"{steps}\n\n" + "\n\n".join(_limits(by, breakdowns[v], v) for v in variants) + "\n"
        f"{_attribution(attribution or [])}"
        f"{END_MARK}\n"
    )


def _limits(
    by: dict[tuple[int, str], dict[str, Any]], breakdown: list[tuple[str, float]], server: str
) -> str:
    """What limits the numbers of ``server``, computed from this run."""
    step = dict(breakdown)
    names = [name for name, _ in breakdown]
    parse, fast_parse = step[names[0]], step[names[1]]
    plan_us, evaluate_us, whole = step[names[3]], step[names[5]], step[names[-1]]
    log_us, metrics_us = step[names[8]], step[names[9]]
    per_request = whole + log_us + metrics_us
    top = CONCURRENCY[-1]
    floor_cost = 1e6 / by[(top, "floor")]["rps"]
    fast_cost = 1e6 / by[(top, "floor-fast")]["rps"]
    hardener_cost = 1e6 / by[(top, server)]["rps"]
    bound = floor_cost / (floor_cost + per_request - parse)
    bound_fast = fast_cost / (fast_cost + per_request - fast_parse)
    budget = floor_cost / 0.8 - floor_cost
    budget_fast = fast_cost / 0.6 - fast_cost
    # Measured one by one, not whole() minus the engine: that difference carries the noise of
    # three separate measurements.
    rest = sum(step[names[i]] for i in (2, 6, 7)) + log_us + metrics_us
    return (
        f"What limits {SERVER_LABELS[server]}: at concurrency {top} the server core is "
        f"saturated, so 1/throughput is the server time per request: {floor_cost:.0f} us for "
        f"the floor (TLS, HTTP, JSON parse), {fast_cost:.0f} us for the floor on uvloop + "
        f"orjson, {hardener_cost:.0f} us for {SERVER_LABELS[server]} (CPU time of the server "
        f"processes per request: {by[(top, 'floor')]['cpu_us']:.0f}, "
        f"{by[(top, 'floor-fast')]['cpu_us']:.0f} and {by[(top, server)]['cpu_us']:.0f} us). "
        f"In-process, it spends {per_request:.0f} us on a review (review() {whole:.0f} us, the "
        f"log line and the metrics {log_us + metrics_us:.0f} us) where the floor only parses "
        f"({parse:.0f} us with `json`, {fast_parse:.0f} us with orjson); the engine's plan() is "
        f"{plan_us / per_request:.0%} of it, the PSS verdict of the hardened pod "
        f"{evaluate_us / per_request:.0%}, and everything else (decode, sizing, patch, "
        f"warnings, response, log line, metrics; the rows above) {rest:.0f} us. With these "
        "costs the ratio cannot exceed floor / (floor + hardener's work - parse) = "
        f"{bound:.2f}x against the floor and {bound_fast:.2f}x against the floor on uvloop + "
        f"orjson; the 0.8x target leaves {budget:.0f} us per request for everything the floor "
        f"does not do, the 0.6x target {budget_fast:.0f} us beyond the fast floor. The "
        "in-process figures are the best of 5 runs; the server's own CPU per request runs "
        "higher, more so when other jobs share its core (see the load average above)."
    )


def _attribution(measured: list[tuple[str, list[float]]]) -> str:
    """The server CPU per request with parts of the work precomputed (``--attribute``)."""
    if not measured:
        return ""
    labels = {
        "hardener": "nothing (hardener as is, the pure build)",
        "plan": "the engine's plan()",
        "plan+evaluate": "plan() and the PSS evaluation",
        "review": "the whole review (left: HTTP, TLS, JSON decode, metrics, log line)",
        "floor": "(the floor server)",
        "floor-fast": "(the floor on uvloop + orjson)",
    }
    median = {name: statistics.median(values) for name, values in measured}
    table = "\n".join(
        f"| {labels[name]} | {median[name]:.0f} | {min(values):.0f} to {max(values):.0f} |"
        for name, values in measured
    )
    spread = max(max(values) - min(values) for _, values in measured)
    return (
        f"\nAttribution (`--attribute`): server CPU per request at concurrency "
        f"{CONCURRENCY[-1]} with parts of the work answered from results precomputed for this "
        f"review; every variant runs at once, measured in {ATTRIBUTION_ROUNDS} interleaved "
        "rounds:\n\n"
        "| precomputed | median (us) | range (us) |\n|---|---:|---:|\n"
        f"{table}\n\n"
        f"Medians: the engine's plan() about {median['hardener'] - median['plan']:.0f} us, the "
        f"PSS evaluation about {median['plan'] - median['plan+evaluate']:.0f} us, the rest of "
        f"the review (patch, warnings, response) about "
        f"{median['plan+evaluate'] - median['review']:.0f} us, and what is left costs "
        f"{median['review'] - median['floor']:.0f} us more than the floor and "
        f"{median['review'] - median['floor-fast']:.0f} us more than the floor on uvloop + "
        "orjson (the decode, the handler, the log line and the metrics). Differences smaller "
        f"than the widest range ({spread:.0f} us) are within this machine's run-to-run noise. "
        "Python code costs more per call in the server than in a warm in-process loop, so "
        "these figures run above the in-process ones.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    floor = sub.add_parser("floor", help="(internal) run the floor server")
    floor.add_argument("--port", type=int, required=True)
    floor.add_argument("--cert", required=True)
    floor.add_argument("--key", required=True)
    floor.add_argument("--fast", action="store_true", help="on uvloop, parsing with orjson")
    stubbed = sub.add_parser("stubbed", help="(internal) hardener serve with a part stubbed")
    stubbed.add_argument("--stub", choices=STUBS, required=True)
    stubbed.add_argument("serve_args", nargs=argparse.REMAINDER)
    only = sub.add_parser(
        "breakdown", help="only the in-process costs of the steps of a review (no servers, no load)"
    )
    only.add_argument(
        "--installed", action="store_true", help="measure this interpreter's install of hardener"
    )
    only.add_argument("--json", action="store_true", help="print the table as JSON")
    loader = sub.add_parser("load", help="(internal) aiohttp load generator")
    loader.add_argument("--url", required=True)
    loader.add_argument("--concurrency", type=int, required=True)
    loader.add_argument("--duration", type=float, required=True)
    loader.add_argument("--body", required=True)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per point")
    parser.add_argument(
        "--attribute",
        action="store_true",
        help="also measure hardener with the engine, the evaluator, and the whole review "
        "replaced by precomputed answers, to attribute the server's CPU per request",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per server")
    parser.add_argument(
        "--compiled-python",
        help="also run hardener serve under this interpreter (a venv with the compiled build)",
    )
    parser.add_argument(
        "--update-results",
        action="store_true",
        help="rewrite the webhook section of tests/bench/RESULTS.md",
    )
    args = parser.parse_args()
    if args.command == "floor":
        run_floor(args.port, args.cert, args.key, fast=args.fast)
    elif args.command == "stubbed":
        run_stubbed(args.stub, [a for a in args.serve_args if a != "--"])
    elif args.command == "breakdown":
        if args.installed:
            sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO]
        else:
            sys.path.insert(0, str(REPO))
        table = _breakdown(realistic_review())
        if args.json:
            print(json.dumps(table))
        for name, micros in [] if args.json else table:
            print(f"{micros:8.1f} us  {name}")
    elif args.command == "load":
        run_load(args.url, args.concurrency, args.duration, args.body)
    else:
        benchmark(
            args.duration, args.warmup, args.update_results, args.attribute, args.compiled_python
        )


if __name__ == "__main__":
    main()
