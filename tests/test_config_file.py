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


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
