"""The lookups of one command-line run (``hardener.images.lookup_run``) and their report."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hardener.config import ImageSettings, RegistrySettings
from hardener.fixer.run import images_in_text
from hardener.image_facts import ImageFacts
from hardener.images import cache_directory, images_of, lookup_run, offline_reason
from hardener.report import ImageReport
from tests.images.conftest import Registries, settings_for
from tests.images.test_fix_lookup import Silent


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_offline_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARDENER_IMAGES_OFFLINE", raising=False)
    assert offline_reason(ImageSettings()) is None
    assert offline_reason(ImageSettings(), True) == "--offline"
    assert offline_reason(ImageSettings(lookup=False)) == "images.lookup: false"
    for value in ("1", "yes", "true"):
        monkeypatch.setenv("HARDENER_IMAGES_OFFLINE", value)
        assert offline_reason(ImageSettings()) == f"HARDENER_IMAGES_OFFLINE={value}"
    for value in ("", "0", "false", "no", "off"):
        monkeypatch.setenv("HARDENER_IMAGES_OFFLINE", value)
        assert offline_reason(ImageSettings()) is None


def test_the_default_cache_honours_xdg_cache_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_directory(ImageSettings()) == tmp_path / "hardener" / "images"
    # A directory the config sets wins; a relative XDG_CACHE_HOME is ignored, as the
    # specification says.
    assert cache_directory(ImageSettings(cache_dir="/srv/cache")) == Path("/srv/cache")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    assert cache_directory(ImageSettings()) == Path("~/.cache/hardener/images").expanduser()
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_directory(ImageSettings()) == Path("~/.cache/hardener/images").expanduser()


def test_images_of_objects_and_text() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {
            "initContainers": [{"name": "a", "image": "busybox"}],
            "containers": [{"name": "b", "image": "nginx:1"}, {"name": "c", "image": "busybox"}],
        },
    }
    broken = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "no"}}
    assert images_of([pod, broken, pod]) == ["busybox", "nginx:1"]
    text = "kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - {name: a, image: redis}\n"
    assert images_in_text(text) == ["redis"]
    assert images_in_text("kind: Pod\nspec: [\n") == []  # fix reports the error itself
    template = text.replace("redis", "{{ .Values.image }}") + "metadata: {name: {{ .x }}}\n"
    assert images_in_text(template) == []  # a Helm template is skipped by fix too


def test_no_image_no_work() -> None:
    found = lookup_run([], ImageSettings())
    assert (found.facts, found.requests) == ({}, 0)


def test_one_resolver_for_the_run(registries: Registries, images_online: Path) -> None:
    images = [registries.images["numeric"], registries.images["named"]] * 3
    settings = settings_for(registries.anonymous.host)
    found = lookup_run(images, settings)
    assert list(found.facts) == images[:2]
    assert {f.source for f in found.facts.values()} == {"registry"}
    assert found.facts[registries.images["named"]].uid == 101
    assert found.offline is None and found.requests > 0
    # The cache under XDG_CACHE_HOME answers the next run without a request.
    again = lookup_run(images, settings)
    assert {f.source for f in again.facts.values()} == {"cache"} and again.requests == 0


def test_progress_line_on_a_terminal_only_after_a_second(images_online: Path) -> None:
    silent = Silent()
    try:
        settings = ImageSettings(
            timeout_seconds=1.6,
            registries={"docker.io": RegistrySettings(mirror=silent.url, insecure=True)},
        )
        terminal = Terminal()
        found = lookup_run(["app/a:1", "app/b:1"], settings, stream=terminal)
        assert {f.source for f in found.facts.values()} == {"unknown"}
        shown = terminal.getvalue()
        assert "\rlooking up images: 0/2" in shown or "\rlooking up images: 2/2" in shown
        assert shown.endswith("\r")  # the line is cleared before the summary
        quiet = io.StringIO()
        lookup_run(["app/c:1"], settings, stream=quiet)
        assert quiet.getvalue() == ""
        fast = Terminal()
        lookup_run(["app/d:1"], settings, offline=True, stream=fast)
        assert fast.getvalue() == ""  # no lookup took a second
    finally:
        silent.close()


def test_the_report_counts_by_source_and_says_why() -> None:
    facts = {
        "a:1": ImageFacts(reference="docker.io/library/a:1", source="registry", user="1"),
        "b:1": ImageFacts(reference="docker.io/library/b:1", source="cache", user=""),
        "nginx": ImageFacts(reference="docker.io/library/nginx:latest", source="table", user=""),
        "$IMAGE": ImageFacts.unknown("$IMAGE", "image '$IMAGE': not a reference; nothing"),
        "r.example/x:1": ImageFacts.unknown(
            "r.example/x:1",
            "registry https://r.example cannot be reached (DNS); check the network",
        ),
        "r.example/y:1": ImageFacts.unknown(
            "r.example/y:1",
            "registry https://r.example failed moments ago (Name or service not known); not "
            "asked again for now; from nowhere",
        ),
    }
    report = ImageReport(facts, None, 7)
    assert report.counts() == {"registry": 1, "cache": 1, "table": 1, "unknown": 3}
    lines = report.lines()
    assert lines[0] == "  images: 6 images, looked up: 1 registry, 1 cache, 1 table, 3 unknown"
    assert lines[1:] == [
        "    unknown: $IMAGE: image '$IMAGE': not a reference",
        "    unknown: r.example/x:1, r.example/y:1: registry https://r.example cannot be reached",
    ]
    data = report.to_json()
    assert (data["lookup"], data["requests"], data["total"]) == ("on", 7, 6)
    assert ImageReport({}, "--offline").lines() == []
    assert (
        ImageReport(facts, "--offline")
        .lines()[0]
        .startswith("  images: 6 images, lookups off (--offline): ")
    )
