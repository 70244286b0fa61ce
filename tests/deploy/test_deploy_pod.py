"""hardener's own Deployment: restricted, hardened, available, and wired to the serve CLI."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardener.cli import main
from hardener.pss import evaluate
from tests.deploy.deploy_support import TARGETS, Obj, pick

Rendered = dict[str, list[Obj]]

SERVE_ARGS = [
    "--config",
    "/etc/hardener/config.yaml",
    "--port",
    "8443",
    "--tls-cert",
    "/etc/hardener/tls/tls.crt",
    "--tls-key",
    "/etc/hardener/tls/tls.key",
    "--metrics-port",
    "9090",
]


def deployment(rendered: Rendered, target: str = "base") -> dict[str, Any]:
    return pick(rendered[target], "Deployment", "hardener")


@pytest.mark.parametrize("version", ["latest", "v1.30", "v1.25"])
@pytest.mark.parametrize("target", TARGETS)
def test_passes_pod_security_restricted(rendered: Rendered, target: str, version: str) -> None:
    violations = evaluate(deployment(rendered, target), level="restricted", version=version)
    assert violations == [], [v.message for v in violations]


def test_the_pss_check_is_not_vacuous(rendered: Rendered) -> None:
    obj = copy.deepcopy(deployment(rendered))
    obj["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("capabilities")
    assert [v.check for v in evaluate(obj, level="restricted")] == ["capabilities_restricted"]


def test_security_context(rendered: Rendered) -> None:
    pod = deployment(rendered)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field)


def test_only_tmp_and_the_image_cache_are_writable(rendered: Rendered) -> None:
    pod = deployment(rendered)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert set(mounts) == {
        "/etc/hardener/config.yaml",
        "/etc/hardener/tls",
        "/tmp",
        "/var/cache/hardener",
    }
    writable = [path for path, mount in mounts.items() if not mount.get("readOnly")]
    assert sorted(writable) == ["/tmp", "/var/cache/hardener"]
    for path in writable:
        assert "emptyDir" in volumes[mounts[path]["name"]]
        assert volumes[mounts[path]["name"]]["emptyDir"]["sizeLimit"]
    tls = volumes[mounts["/etc/hardener/tls"]["name"]]["secret"]
    assert tls == {"secretName": "hardener-tls", "defaultMode": 0o440}
    assert mounts["/etc/hardener/config.yaml"]["subPath"] == "config.yaml"
    assert not [v for v in volumes.values() if "hostPath" in v]


@pytest.mark.parametrize("target", ["base", "warn-mode"])
def test_the_image_cache_is_on_its_emptydir(
    rendered: Rendered, target: str, tmp_path: Path
) -> None:
    from hardener.config import load_config

    (config_map,) = [o for o in rendered[target] if o["kind"] == "ConfigMap"]
    path = tmp_path / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    cache = Path(load_config(path).images.cache_dir)
    (container,) = deployment(rendered, target)["spec"]["template"]["spec"]["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "image-cache")
    assert cache.is_relative_to(mount["mountPath"]) and not mount.get("readOnly")


def test_registry_credentials_are_the_webhooks_own_file(rendered: Rendered) -> None:
    pod = deployment(rendered, "cert-manager+registry-credentials")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["registry-credentials"]["secret"] == {
        "secretName": "hardener-registry-credentials",
        "defaultMode": 0o440,
        "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
    }
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "registry-credentials")
    assert mount["readOnly"] is True
    env = {e["name"]: e["value"] for e in container["env"]}
    # $DOCKER_CONFIG/config.json is where the resolver looks (hardener.images._auth).
    assert env == {"DOCKER_CONFIG": mount["mountPath"]}
    # Everything else is the overlay's own.
    plain = deployment(rendered, "cert-manager")["spec"]["template"]["spec"]
    assert len(pod["volumes"]) == len(plain["volumes"]) + 1
    assert "env" not in plain["containers"][0]


def test_serve_command_line(rendered: Rendered) -> None:
    (container,) = deployment(rendered)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["hardener", "serve"]
    assert container["args"] == SERVE_ARGS


def test_serve_accepts_the_command_line(rendered: Rendered) -> None:
    # The Deployment's arguments, parsed by the real `hardener serve` parser.
    from hardener.cli import serve

    parser = argparse.ArgumentParser(prog="hardener")
    serve.register(parser.add_subparsers(dest="command"))
    (container,) = deployment(rendered)["spec"]["template"]["spec"]["containers"]
    args = parser.parse_args(container["command"][1:] + container["args"])
    assert args.func is serve.run
    assert (args.port, args.metrics_port) == (8443, 9090)
    assert str(args.config) == "/etc/hardener/config.yaml"
    assert str(args.tls_cert) == "/etc/hardener/tls/tls.crt"
    assert str(args.tls_key) == "/etc/hardener/tls/tls.key"


def test_probes_use_https_on_the_webhook_port(rendered: Rendered) -> None:
    (container,) = deployment(rendered)["spec"]["template"]["spec"]["containers"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get == {"path": path, "port": "webhook", "scheme": "HTTPS"}
        # The kubelet must give up on a probe before the next one starts.
        assert container[probe]["timeoutSeconds"] < container[probe]["periodSeconds"]


def test_resources_are_bounded(rendered: Rendered) -> None:
    (container,) = deployment(rendered)["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    for key in ("cpu", "memory"):
        assert resources["requests"][key]
        assert resources["limits"][key]


def test_availability(rendered: Rendered) -> None:
    obj = deployment(rendered)
    spec = obj["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    constraints = spec["template"]["spec"]["topologySpreadConstraints"]
    keys = {c["topologyKey"] for c in constraints}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    pod_labels = spec["template"]["metadata"]["labels"]
    for constraint in constraints:
        assert constraint["maxSkew"] == 1
        # Spreading must never keep the webhook from running on a small cluster.
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    pdb = pick(rendered["base"], "PodDisruptionBudget", "hardener")
    assert pdb["spec"]["minAvailable"] == 1 < spec["replicas"]


def test_hardener_has_nothing_to_change(rendered: Rendered) -> None:
    # The same engine `hardener fix` and the webhook use, with every rule switched on.
    from hardener.config import parse_config
    from hardener.engine import plan
    from hardener.rules import RULES

    everything = parse_config({"rules": {rule.id: {"enabled": True} for rule in RULES}})
    for target in TARGETS:
        result = plan(deployment(rendered, target), everything)
        assert result.ops == [], target
        assert result.findings == [], target


def test_hardener_fix_check_finds_nothing_in_deploy(
    deploy_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On a copy: were --check ever ignored, the repository's files would stay untouched.
    code = main(["fix", "--check", str(deploy_copy)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert " 0 would change" in captured.err
    assert " 0 errors" in captured.err


def test_hardener_fix_check_notices_a_weaker_deployment(
    deploy_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weaker = tmp_path / "deployment.yaml"
    text = (deploy_copy / "base" / "deployment.yaml").read_text()
    weaker.write_text(text.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: null"))
    assert main(["fix", "--check", str(weaker)]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("target", ["base", "self-managed", "cert-manager"])
def test_hardener_check_restricted_passes(
    rendered: Rendered, target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(deployment(rendered, target)))
    assert main(["check", "--level", "restricted", str(path)]) == 0, capsys.readouterr().out
