"""Loading the config file: the same file for the webhook and the fixer."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardener import ConfigError, load_config, plan


def test_a_full_config_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "hardener.yaml"
    path.write_text(
        """\
profile: restricted
mode: warn
level: baseline
version: v1.30
ids: {user: 1000, group: 1000, fs-group: 1000}
writable-paths: [/tmp, /var/run]
rules:
  run-as-user: {enabled: true}
  fs-group:
    only-with-volumes: true
  no-privilege-escalation: {enforce: true}
  read-only-root-filesystem: false
exempt:
  namespaces: [kube-*]
  names: [debug-*]
webhook:
  deadline-seconds: 1.5
  max-body-bytes: 1048576
""",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.source == str(path)
    assert (config.mode, config.level, config.version) == ("warn", "baseline", "v1.30")
    assert config.rule("run-as-user").enabled
    assert config.rule("run-as-user").options == {"user": 1000, "group": 1000}
    assert config.rule("fs-group").options == {"fs-group": 1000, "only-with-volumes": True}
    assert config.rule("no-privilege-escalation").enforce
    assert not config.rule("read-only-root-filesystem").enabled
    assert config.exempt_namespaces == ("kube-*",)
    assert config.webhook.deadline_seconds == 1.5
    assert config.webhook.max_body_bytes == 1048576
    assert config.with_profile("baseline").rule("run-as-user").enabled, (
        "explicit rule settings survive a change of profile"
    )
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}
    assert plan(pod, config).ops


def test_an_empty_file_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path).profile == "restricted"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("profile: [", ":1:"),
        ("rules:\n  fs-group: {fs-group: -1}\n", "rules.fs-group.fs-group: must be between"),
        ("exempt: {namespaces: kube-system}\n", "exempt.namespaces: must be a list of strings"),
        ("webhook: {deadline-seconds: 0}\n", "webhook.deadline-seconds: must be a number"),
        (
            "user-namespaces: sometimes\n",
            "user-namespaces: 'sometimes' is not allowed; allowed: auto, always, never",
        ),
        (b"\xff\xfe".decode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content.encode("latin-1") if "\xff" in content else content.encode())
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"invalid config: {path}")
    assert message in str(caught.value)


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
def test_user_namespaces_loads_and_survives_a_change_of_profile(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "hardener.yaml"
    path.write_text(f"user-namespaces: {mode}\n", encoding="utf-8")
    assert load_config(path).user_namespaces == mode
    assert load_config(path).with_profile("baseline").user_namespaces == mode


def test_user_namespaces_defaults_to_auto(tmp_path: Path) -> None:
    path = tmp_path / "hardener.yaml"
    path.write_text("profile: restricted\n", encoding="utf-8")
    assert load_config(path).user_namespaces == "auto"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_the_images_block_loads(tmp_path: Path) -> None:
    path = tmp_path / "hardener.yaml"
    path.write_text(
        """\
images:
  lookup: false
  platform: linux/arm64/v8
  root: run-as-user
  unknown: assume-nonroot
  timeout-seconds: 1
  cache-dir: /var/cache/hardener
  max-layer-bytes: 1048576
  registries:
    docker.io: {mirror: "http://mirror.local:5000/", insecure: true}
    ghcr.io: {ca-file: /etc/ssl/ghcr.pem}
  table:
    example.com/team/app: {user: app, uid: 1000, gid: 1000, writable-paths: [/cache]}
    nginx: {user: "", writable-paths: [/var/cache/nginx, /var/run, /tmp], source: our fork}
""",
        encoding="utf-8",
    )
    images = load_config(path).images
    assert (images.lookup, images.platform, images.root, images.unknown) == (
        False,
        "linux/arm64/v8",
        "run-as-user",
        "assume-nonroot",
    )
    assert (images.timeout_seconds, images.max_layer_bytes) == (1.0, 1048576)
    assert images.cache_dir == "/var/cache/hardener"
    assert images.registries["docker.io"].mirror == "http://mirror.local:5000"
    assert images.registries["ghcr.io"].ca_file == "/etc/ssl/ghcr.pem"
    app = images.table["example.com/team/app"]
    assert (app.user, app.uid, app.gid, app.writable_paths) == ("app", 1000, 1000, ("/cache",))
    assert app.source == f"{path}: images.table.example.com/team/app"
    assert images.table["nginx"].source == "our fork"
    default = load_config(tmp_path / "hardener.yaml").with_profile("baseline").images
    assert default == images, "the block survives a change of profile"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("images: [a]\n", "images: must be a mapping"),
        ("images: {lookups: true}\n", "images.lookups: unknown key; allowed: lookup, platform"),
        ("images: {lookup: maybe}\n", "images.lookup: must be true or false"),
        ("images: {platform: amd64}\n", "images.platform: 'amd64' is not OS/ARCH"),
        (
            "images: {root: nobody}\n",
            "images.root: 'nobody' is not allowed; allowed: user-namespace, keep, run-as-user",
        ),
        ("images: {unknown: guess}\n", "images.unknown: 'guess' is not allowed"),
        ("images: {timeout-seconds: 0}\n", "images.timeout-seconds: must be a number in (0, 60]"),
        ("images: {max-layer-bytes: -1}\n", "images.max-layer-bytes: must be a non-negative"),
        ("images: {cache-dir: ''}\n", "images.cache-dir: must be a directory path"),
        (
            "images: {registries: {docker.io: {mirror: 'http://m'}}}\n",
            "images.registries.docker.io.mirror: plain http:// needs `insecure: true`",
        ),
        (
            "images: {registries: {docker.io: {mirror: 'ftp://m'}}}\n",
            "images.registries.docker.io.mirror: must be an http(s) URL",
        ),
        (
            "images: {registries: {docker.io: {tls: true}}}\n",
            "images.registries.docker.io.tls: unknown key; allowed: mirror, insecure, ca-file",
        ),
        ("images: {table: {nginx: {uid: 1}}}\n", "images.table.nginx.user: is required"),
        ("images: {table: {nginx: {user: '', uid: -1}}}\n", "images.table.nginx.uid: must be"),
        (
            "images: {table: {nginx: {user: '', writable-paths: [tmp]}}}\n",
            "images.table.nginx.writable-paths: paths must be absolute",
        ),
    ],
)
def test_bad_images_blocks_name_the_file_and_the_key(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"invalid config: {path}: images")
    assert message in str(caught.value)
