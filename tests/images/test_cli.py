"""``hardener images inspect`` against the real registry, text and JSON, online and offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardener.cli import main
from tests.images.conftest import Registries

# These tests look images up in a loopback registry.
pytestmark = pytest.mark.usefixtures("images_online")


def _config(tmp_path: Path, registries: Registries) -> Path:
    path = tmp_path / "hardener.yaml"
    path.write_text(
        f"images:\n"
        f"  cache-dir: {tmp_path / 'cache'}\n"
        f"  registries:\n"
        f"    '{registries.anonymous.host}': {{insecure: true}}\n"
        f"  table:\n"
        f"    {registries.anonymous.host}/app/named: {{user: web, writable-paths: [/srv/tmp]}}\n",
        encoding="utf-8",
    )
    return path


def test_inspect_prints_facts_and_their_source(
    registries: Registries, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, registries)
    named, numeric = registries.images["named"], registries.images["numeric"]
    assert main(["images", "inspect", "--config", str(config), "--format", "json", named]) == 0
    data = json.loads(capsys.readouterr().out)
    (entry,) = data["images"]
    assert entry["image"] == named and entry["source"] == "registry"
    assert (entry["user"], entry["uid"], entry["gid"]) == ("web", 101, 102)
    assert entry["runs_as"] == "name 'web' = uid 101"
    assert entry["writable_paths"] == ["/srv/tmp"], "writable paths from the config's table"
    assert entry["digest"] == registries.anonymous.pushed[named]

    # Offline: the first lookup is now in the cache; the other image is not.
    assert main(["images", "inspect", "--config", str(config), "--offline", named, numeric]) == 0
    out = capsys.readouterr().out
    assert f"{named}\n  source:   cache\n" in out
    assert "runs as:  name 'web' = uid 101" in out
    assert f"{numeric}\n  source:   unknown\n" in out
    assert "not cached and not in the offline table" in out


def test_inspect_refuses_bad_options_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["images", "inspect", "--platform", "amd64", "nginx"]) == 2
    assert "--platform 'amd64' is not OS/ARCH" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("images: {root: maybe}\n", encoding="utf-8")
    assert main(["images", "inspect", "--config", str(bad), "nginx"]) == 2
    assert f"invalid config: {bad}: images.root" in capsys.readouterr().err


def test_inspect_honours_the_offline_variable(
    registries: Registries,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``HARDENER_IMAGES_OFFLINE=1`` means what it means for ``fix``: no lookup."""
    monkeypatch.setenv("HARDENER_IMAGES_OFFLINE", "1")
    named = registries.images["named"]
    assert main(["images", "inspect", "--config", str(_config(tmp_path, registries)), named]) == 0
    out = capsys.readouterr().out
    assert "source:   table" in out and "lookups are off (offline)" in out, out
