"""Every overlay renders, every object is valid Kubernetes, and the objects agree."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from hardener.certs import service_dns_names
from tests.deploy.deploy_support import (
    DEPLOY,
    OVERLAYS,
    REPO,
    TARGETS,
    Obj,
    RenderError,
    copy_deploy,
    render,
)
from tests.deploy.deploy_support import pick as find

Rendered = dict[str, list[Obj]]

# The oldest Kubernetes minor the manifests claim to support (docs/deploy.md) and the newest the
# installed kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
CLUSTER_SCOPED = {
    "Namespace",
    "MutatingWebhookConfiguration",
    "ClusterRole",
    "ClusterRoleBinding",
}
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}

# kubernetes-validate has no schemas for cert-manager's CRDs. This covers the cert-manager.io/v1
# fields the overlay uses (names and types as in the Certificate and Issuer CRDs), strictly, so
# a misspelt field fails here rather than at `kubectl apply`.
_ISSUER_REF = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string"},
        "group": {"type": "string"},
    },
    "required": ["name"],
    "additionalProperties": False,
}
_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name", "namespace"],
    "additionalProperties": False,
}
CERT_MANAGER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Issuer": {
        "type": "object",
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"},
            "kind": {"const": "Issuer"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "properties": {
                    "selfSigned": {"type": "object", "additionalProperties": False},
                    "ca": {
                        "type": "object",
                        "properties": {"secretName": {"type": "string"}},
                        "required": ["secretName"],
                        "additionalProperties": False,
                    },
                },
                "minProperties": 1,
                "maxProperties": 1,
                "additionalProperties": False,
            },
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    },
    "Certificate": {
        "type": "object",
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"},
            "kind": {"const": "Certificate"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "properties": {
                    "secretName": {"type": "string"},
                    "isCA": {"type": "boolean"},
                    "commonName": {"type": "string", "maxLength": 64},
                    "dnsNames": {"type": "array", "items": {"type": "string"}},
                    "duration": {"type": "string", "pattern": r"^[0-9]+h$"},
                    "renewBefore": {"type": "string", "pattern": r"^[0-9]+h$"},
                    "usages": {
                        "type": "array",
                        "items": {"enum": ["server auth", "digital signature", "cert sign"]},
                    },
                    "privateKey": {
                        "type": "object",
                        "properties": {
                            "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                            "size": {"type": "integer"},
                            "rotationPolicy": {"enum": ["Never", "Always"]},
                        },
                        "additionalProperties": False,
                    },
                    "issuerRef": _ISSUER_REF,
                },
                "required": ["secretName", "issuerRef"],
                "additionalProperties": False,
            },
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    },
}


def test_every_overlay_directory_is_rendered() -> None:
    assert set(OVERLAYS) == {"cert-manager", "self-managed", "warn-mode", "fail-closed"}
    assert set(OVERLAYS) <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_renders_the_expected_objects(rendered: Rendered, target: str) -> None:
    kinds = sorted(o["kind"] for o in rendered[target])
    expected = [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "MutatingWebhookConfiguration",
        "Namespace",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    if target.startswith("self-managed"):
        expected.append("Secret")
    if target not in ("base",) and not target.startswith("self-managed"):
        expected += ["Certificate", "Certificate", "Issuer", "Issuer"]
    assert kinds == sorted(expected)


@pytest.mark.parametrize("target", TARGETS)
def test_objects_are_namespaced_in_hardener_system(rendered: Rendered, target: str) -> None:
    for obj in rendered[target]:
        meta = obj["metadata"]
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in meta, f"{obj['kind']} {meta['name']} is cluster-scoped"
        else:
            assert meta.get("namespace") == "hardener-system", f"{obj['kind']} {meta['name']}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_objects_validate_against_kubernetes_schemas(
    rendered: Rendered, target: str, version: str
) -> None:
    for obj in rendered[target]:
        where = f"{target}: {obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in CERT_MANAGER_KINDS:
            errors = list(
                jsonschema.Draft202012Validator(CERT_MANAGER_SCHEMAS[obj["kind"]]).iter_errors(obj)
            )
            assert not errors, f"{where}: {[e.message for e in errors]}"
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where} is invalid for Kubernetes {version}: {path}: {exc.message}")


def test_strict_validation_catches_a_misspelt_field(rendered: Rendered) -> None:
    # The validation above is only worth something if it rejects what the API server rejects.
    deployment = find(rendered["self-managed"], "Deployment", "hardener")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    certificate = find(rendered["cert-manager"], "Certificate", "hardener-serving")
    broken = yaml.safe_load(yaml.safe_dump(certificate))
    broken["spec"]["dnsName"] = ["typo"]
    validator = jsonschema.Draft202012Validator(CERT_MANAGER_SCHEMAS["Certificate"])
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("target", TARGETS)
def test_no_latest_or_untagged_images(rendered: Rendered, target: str) -> None:
    pod = find(rendered[target], "Deployment", "hardener")["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        image = container["image"]
        name, _, tag = image.rpartition(":")
        assert name and tag and "/" not in tag, f"{image} has no tag"
        assert tag != "latest"


@pytest.mark.parametrize("target", TARGETS)
def test_references_between_objects_resolve(rendered: Rendered, target: str) -> None:
    objects = rendered[target]
    deployment = find(objects, "Deployment", "hardener")
    template = deployment["spec"]["template"]
    pod = template["spec"]
    pod_labels = template["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    assert find(objects, "ServiceAccount", pod["serviceAccountName"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = volumes["config"]["configMap"]["name"]
    assert config_map.startswith("hardener-config-"), "the config name must carry kustomize's hash"
    assert find(objects, "ConfigMap", config_map)
    assert volumes["tls"]["secret"]["secretName"] == "hardener-tls"

    service = find(objects, "Service", "hardener")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert container_ports == {"webhook": 8443, "metrics": 9090}
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert service_ports == {"webhook": (443, "webhook"), "metrics": (9090, "metrics")}

    pdb = find(objects, "PodDisruptionBudget", "hardener")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    policy = find(objects, "NetworkPolicy", "hardener")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    admitted = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert admitted == {8443, 9090}
    # Egress: the API server's ports (user-namespaces: auto's watch), registries on 443 (image
    # lookups) and DNS; nothing else.
    api, dns = policy["spec"]["egress"]
    assert {(p["port"], p["protocol"]) for p in api["ports"]} == {(443, "TCP"), (6443, "TCP")}
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert "to" not in api and "to" not in dns

    binding = find(objects, "ClusterRoleBinding", "hardener")
    assert (
        binding["roleRef"]["name"] == find(objects, "ClusterRole", "hardener")["metadata"]["name"]
    )
    (subject,) = binding["subjects"]
    assert (subject["kind"], subject["name"], subject["namespace"]) == (
        "ServiceAccount",
        pod["serviceAccountName"],
        deployment["metadata"]["namespace"],
    )

    webhooks = find(objects, "MutatingWebhookConfiguration", "hardener")["webhooks"]
    for webhook in webhooks:
        ref = webhook["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"], ref["port"]) == ("hardener", "hardener-system", 443)


def test_the_token_is_mounted_for_the_node_watch(rendered: Rendered) -> None:
    # user-namespaces: auto reads Nodes and RuntimeClasses with the pod's token.
    account = find(rendered["base"], "ServiceAccount", "hardener")
    assert account["automountServiceAccountToken"] is True
    pod = find(rendered["base"], "Deployment", "hardener")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True


# What the webhook may read, and nothing else: get, list and watch on nodes and RuntimeClasses.
WEBHOOK_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["node.k8s.io"],
        "resources": ["runtimeclasses"],
        "verbs": ["get", "list", "watch"],
    },
]


def test_rbac_is_read_only_on_nodes_and_runtime_classes(rendered: Rendered) -> None:
    rbac = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    for target, objects in rendered.items():
        found = sorted((o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in rbac)
        assert found == [("ClusterRole", "hardener"), ("ClusterRoleBinding", "hardener")], target
        role = find(objects, "ClusterRole", "hardener")
        assert role["rules"] == WEBHOOK_RULES, target
        assert "aggregationRule" not in role


def test_install_grants_what_deploy_grants(rendered: Rendered) -> None:
    from hardener.audit import rbac_objects

    role, binding = rbac_objects(namespace="hardener-system", service_account="hardener")
    deployed_role = find(rendered["base"], "ClusterRole", "hardener")
    deployed_binding = find(rendered["base"], "ClusterRoleBinding", "hardener")
    assert role["rules"] == deployed_role["rules"]
    assert binding["roleRef"] == deployed_binding["roleRef"]
    assert binding["subjects"] == deployed_binding["subjects"]


def test_own_namespace_enforces_restricted(rendered: Rendered) -> None:
    labels = find(rendered["base"], "Namespace", "hardener-system")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["hardener.dev/skip"] == "true"


def test_self_managed_secret_and_ca_bundle_match_hardener_certs(
    rendered: Rendered, deploy_copy: Path
) -> None:
    tls = deploy_copy / "overlays" / "self-managed" / "tls"
    objects = rendered["self-managed"]
    secret = find(objects, "Secret", "hardener-tls")
    assert secret["type"] == "kubernetes.io/tls"
    for key in ("tls.crt", "tls.key", "ca.crt"):
        assert base64.b64decode(secret["data"][key]) == (tls / key).read_bytes()
    webhooks = find(objects, "MutatingWebhookConfiguration", "hardener")["webhooks"]
    assert len(webhooks) == 2
    for webhook in webhooks:
        assert (
            base64.b64decode(webhook["clientConfig"]["caBundle"]) == (tls / "ca.crt").read_bytes()
        )
        # The strategic merge must not have lost the rest of the entry.
        assert webhook["clientConfig"]["service"]["path"] == "/mutate"
        assert webhook["rules"]


def test_self_managed_needs_hardener_certs_first(kubectl: Path, tmp_path: Path) -> None:
    # Without the generated files the overlay must fail loudly, not render without TLS.
    copy = copy_deploy(tmp_path)
    with pytest.raises(RenderError, match="self-managed/tls"):
        render(kubectl, copy / "overlays" / "self-managed")


def test_generated_tls_files_are_ignored_by_git_and_docker() -> None:
    gitignore = (DEPLOY / "overlays" / "self-managed" / "tls" / ".gitignore").read_text()
    assert [line for line in gitignore.splitlines() if line and not line.startswith("#")] == [
        "*",
        "!.gitignore",
    ]
    # The build context is an allow-list: everything is excluded, then the package and its
    # build scripts (the compiled build, docs/build.md) let back in.
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    assert {p for p in patterns if p.startswith("!")} == {
        "!pyproject.toml",
        "!setup.py",
        "!MANIFEST.in",
        "!README.md",
        "!_build/",
        "!hardener/",
    }


def test_cert_manager_certificate_names_the_service(rendered: Rendered) -> None:
    objects = rendered["cert-manager"]
    serving = find(objects, "Certificate", "hardener-serving")
    assert serving["spec"]["secretName"] == "hardener-tls"
    assert serving["spec"]["dnsNames"] == service_dns_names("hardener", "hardener-system")
    assert "server auth" in serving["spec"]["usages"]
    ca_issuer = find(objects, "Issuer", serving["spec"]["issuerRef"]["name"])
    ca_certificate = find(objects, "Certificate", "hardener-ca")
    assert ca_certificate["spec"]["isCA"] is True
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_certificate["spec"]["secretName"]
    bootstrap = find(objects, "Issuer", ca_certificate["spec"]["issuerRef"]["name"])
    assert bootstrap["spec"] == {"selfSigned": {}}
    config = find(objects, "MutatingWebhookConfiguration", "hardener")
    annotation = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == "hardener-system/hardener-serving"


@pytest.mark.parametrize("target", ["warn-mode", "self-managed+warn-mode"])
def test_warn_mode_only_changes_the_mode(rendered: Rendered, target: str) -> None:
    def config(objects: list[dict[str, Any]]) -> dict[str, Any]:
        maps = [o for o in objects if o["kind"] == "ConfigMap"]
        assert len(maps) == 1
        data: dict[str, Any] = yaml.safe_load(maps[0]["data"]["config.yaml"])
        return data

    base, warn = config(rendered["base"]), config(rendered[target])
    assert base["mode"] == "mutate"
    assert warn == {**base, "mode": "warn"}


@pytest.mark.parametrize("target", ["base", "warn-mode"])
def test_config_file_is_valid_hardener_config(
    rendered: Rendered, target: str, tmp_path: Path
) -> None:
    from hardener.config import load_config

    (config_map,) = [o for o in rendered[target] if o["kind"] == "ConfigMap"]
    path = tmp_path / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    config = load_config(path)
    assert config.mode == ("warn" if target == "warn-mode" else "mutate")
    # The webhook answers (patch or not) before the API server gives up on it.
    webhooks = [o for o in rendered[target] if o["kind"] == "MutatingWebhookConfiguration"]
    for webhook in webhooks[0]["webhooks"]:
        assert config.webhook.deadline_seconds < webhook["timeoutSeconds"]
