"""The monitoring and autoscaling components: they render onto every TLS overlay, promtool
accepts the alerting rules and runs their unit tests, and every metric the rules and the
dashboard query is one the real webhook exports on its metrics port."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from hardener.config import default_config
from hardener.webhook import ServeOptions, serve
from tests.deploy.deploy_support import DEPLOY, Obj, render
from tests.deploy.deploy_support import pick as find

MONITORING = DEPLOY / "components" / "monitoring"
RULE_TESTS = Path(__file__).parent / "data" / "prometheusrule.test.yaml"
PROMTOOL = shutil.which("promtool")
ALERTS = {
    "HardenerWebhookErrors",
    "HardenerWebhookSlow",
    "HardenerWebhookDeadlineFallback",
    "HardenerImageLookupFallback",
    "HardenerWebhookBypassed",
    "HardenerCertificateExpiring",
}
# Metrics the queries name that the webhook does not export, and why.
NOT_FROM_THE_WEBHOOK = {
    # The API server's own counter: pods created while no review arrives means a bypass.
    "apiserver_request_total",
}
# PromQL words that look like metric names in the expressions used here.
PROMQL_WORDS = {"histogram_quantile", "__rate_interval"}

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package 'prometheus')"
)


@pytest.fixture(scope="module")
def observed(kubectl: Path, deploy_copy: Path) -> dict[str, list[Obj]]:
    """Each TLS overlay with both components, rendered by ``kubectl kustomize``."""
    out = {}
    for overlay in ("self-managed", "cert-manager"):
        target = deploy_copy / "overlays" / f"{overlay}+monitoring+autoscaling"
        target.mkdir(exist_ok=True)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"../{overlay}"],
            "components": ["../../components/monitoring", "../../components/autoscaling"],
        }
        (target / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        out[overlay] = render(kubectl, target)
    return out


def _rule(objects: list[Obj]) -> Obj:
    return find(objects, "PrometheusRule", "hardener")


@pytest.mark.parametrize("overlay", ["self-managed", "cert-manager"])
def test_components_render_onto_the_overlay(observed: dict[str, list[Obj]], overlay: str) -> None:
    objects = observed[overlay]
    for obj in objects:
        cluster_scoped = {
            "Namespace",
            "MutatingWebhookConfiguration",
            "ClusterRole",
            "ClusterRoleBinding",
        }
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") == "hardener-system", obj["kind"]
    service = find(objects, "Service", "hardener")
    monitor = find(objects, "ServiceMonitor", "hardener")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in {p["name"] for p in service["spec"]["ports"]}

    assert {r["alert"] for g in _rule(objects)["spec"]["groups"] for r in g["rules"]} == ALERTS
    for group in _rule(objects)["spec"]["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
            assert anchor == rule["alert"].lower()

    dashboard = find(objects, "ConfigMap", "hardener-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["hardener-webhook.json"])["panels"]
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in ("outcome", "latency", "rule", "image lookups", "cache hits", "in flight"):
        assert topic in titles

    deployment = find(objects, "Deployment", "hardener")
    hpa = find(objects, "HorizontalPodAutoscaler", "hardener")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"], "CPU utilisation needs a CPU request"
    pdb = find(objects, "PodDisruptionBudget", "hardener")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}
    for obj in (deployment, hpa, pdb):
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_without_autoscaling_two_replicas_keep_one_up(kubectl: Path, deploy_copy: Path) -> None:
    objects = render(kubectl, deploy_copy / "base")
    assert find(objects, "Deployment", "hardener")["spec"]["replicas"] >= 2
    assert find(objects, "PodDisruptionBudget", "hardener")["spec"]["minAvailable"] == 1


@pytest.fixture
def rules_dir(observed: dict[str, list[Obj]], tmp_path: Path) -> Path:
    """The PrometheusRule's spec as a Prometheus rule file, with the promtool unit tests."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rule(observed["self-managed"])["spec"]))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    return tmp_path


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_promtool_checks_the_rules(rules_dir: Path) -> None:
    done = _promtool("check", "rules", "rules.yaml", cwd=rules_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout
    # The check is real: a broken expression fails it.
    broken = (rules_dir / "rules.yaml").read_text().replace("> 0.05", "> > 0.05")
    (rules_dir / "broken.yaml").write_text(broken)
    assert _promtool("check", "rules", "broken.yaml", cwd=rules_dir).returncode != 0


@needs_promtool
def test_promtool_unit_tests_cover_every_alert(rules_dir: Path) -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert firing == ALERTS
    done = _promtool("test", "rules", RULE_TESTS.name, cwd=rules_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(?:by|on|without|ignoring)\s*\([^)]*\)", "", expr)  # groupings
    names = set(re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", expr))
    return names - PROMQL_WORDS


def _queried(objects: list[Obj]) -> set[str]:
    names: set[str] = set()
    for group in _rule(objects)["spec"]["groups"]:
        for rule in group["rules"]:
            names |= _metric_names(rule["expr"])
    dashboard = find(objects, "ConfigMap", "hardener-grafana-dashboard")
    for panel in json.loads(dashboard["data"]["hardener-webhook.json"])["panels"]:
        for target in panel["targets"]:
            names |= _metric_names(target["expr"])
    return names


def _exported(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}


def test_metric_name_extraction() -> None:
    assert _metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(a_b_bucket{le="x_y"}[5m]))) > c_d'
    ) == {"a_b_bucket", "c_d"}


@pytest.mark.asyncio
async def test_every_queried_metric_is_exported(observed: dict[str, list[Obj]]) -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    ports: dict[str, int] = {}

    def on_started(webhook: Any, metrics: Any) -> None:
        ports["metrics"] = metrics.addresses[0][1]
        started.set()

    options = ServeOptions(
        config=default_config(), host="127.0.0.1", port=0, metrics_port=0, sans=("localhost",)
    )
    out = io.StringIO()
    task = asyncio.create_task(
        serve(options, stop=stop, out=out, handle_signals=False, on_started=on_started)
    )
    try:
        await asyncio.wait_for(started.wait(), 60)
        url = f"http://127.0.0.1:{ports['metrics']}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            text = await resp.text()
        # The generated certificate, read while the server still keeps it.
        match = re.search(r"were made in (\S+) \(removed on exit\)", out.getvalue())
        assert match, out.getvalue()
        pem = (Path(match.group(1)) / "tls.crt").read_bytes()
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0

    exported = _exported(text)
    queried = _queried(observed["self-managed"])
    assert "hardener_webhook_requests_total" in queried
    missing = queried - exported - NOT_FROM_THE_WEBHOOK
    assert not missing, f"queried but not exported: {sorted(missing)}"
    assert not NOT_FROM_THE_WEBHOOK & exported, "exported now: drop it from the pending set"

    # The expiry gauge holds the serving certificate's notAfter.
    gauge = re.search(r"^hardener_webhook_certificate_expiry_timestamp_seconds (\S+)$", text, re.M)
    assert gauge, text
    not_after = x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
    assert float(gauge.group(1)) == not_after > time.time()
