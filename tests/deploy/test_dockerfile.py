"""The Dockerfile: lint-clean, pinned, multi-stage, non-root, exec-form entrypoint.

No container engine runs in the test suite, so the image is not built here; these tests read
the Dockerfile the way the builder would (instructions, line continuations, build args).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deploy_support import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, starting with its FROM."""
    out: list[list[tuple[str, str]]] = []
    for keyword, args in parsed:
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, args))
    return out


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def resolve_image(reference: str, parsed: list[tuple[str, str]]) -> str:
    """A FROM image with global ``ARG`` defaults substituted."""
    defaults = {}
    for keyword, args in parsed:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name] = value
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], reference)


def test_hadolint_is_clean(hadolint: Path) -> None:
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(hadolint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install aiohttp\nUSER root\n")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "Using latest is prone to errors"


def test_multi_stage_with_wheel_built_first(parsed: list[tuple[str, str]]) -> None:
    build, runtime = stages(parsed)
    assert build[0][1].endswith(" AS build")
    assert runtime[0][1].endswith(" AS runtime")
    build_runs = " ".join(args for keyword, args in build if keyword == "RUN")
    assert "pip wheel" in build_runs
    assert "/wheels/hardener-*.whl" in build_runs
    # The runtime stage gets the installed environment and nothing else: no source, no RUN.
    copies = [args for keyword, args in runtime if keyword in ("COPY", "ADD")]
    assert copies == ["--from=build /opt/hardener /opt/hardener"]
    assert not [args for keyword, args in runtime if keyword == "RUN"]


def test_base_images_are_pinned(parsed: list[tuple[str, str]]) -> None:
    for stage in stages(parsed):
        reference = stage[0][1].split()[0]
        image = resolve_image(reference, parsed)
        name_tag, _, digest = image.partition("@")
        name, _, tag = name_tag.rpartition(":")
        assert name == "python", image
        assert tag != "latest"
        assert re.fullmatch(r"3\.11\.\d+-slim-bookworm", tag), f"{image}: pin a patch release"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{image}: pin the digest too"
    assert "latest" not in DOCKERFILE.read_text().lower()


def test_runs_as_numeric_non_root_user(parsed: list[tuple[str, str]]) -> None:
    runtime = stages(parsed)[-1]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and group.isdigit(), "USER must be numeric for runAsNonRoot"
    assert int(user) == 65532 and int(group) == 65532
    # Nothing after USER may switch back to root.
    last_user = max(i for i, (keyword, _) in enumerate(runtime) if keyword == "USER")
    assert not [k for k, _ in runtime[last_user + 1 :] if k in ("USER", "RUN")]


def test_entrypoint_is_exec_form_serve(parsed: list[tuple[str, str]]) -> None:
    runtime = stages(parsed)[-1]
    entrypoints = [args for keyword, args in runtime if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["hardener", "serve"]
    assert not [args for keyword, args in runtime if keyword == "CMD"]
    exposed = [args for keyword, args in runtime if keyword == "EXPOSE"]
    assert exposed == ["8443 9090"]


def test_read_only_root_filesystem_environment(parsed: list[tuple[str, str]]) -> None:
    runtime = stages(parsed)[-1]
    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    settings = dict(re.findall(r"(\w+)=(\S+)", env))
    assert settings["PYTHONDONTWRITEBYTECODE"] == "1"
    assert settings["TMPDIR"] == "/tmp"
    assert settings["HOME"] == "/tmp"
    assert settings["PATH"].startswith("/opt/hardener/bin:")


def test_build_context_has_what_the_wheel_needs(parsed: list[tuple[str, str]]) -> None:
    build = stages(parsed)[0]
    copied = {
        source
        for keyword, args in build
        if keyword == "COPY"
        for source in args.split()[:-1]
        if not source.startswith("--")
    }
    assert copied == {
        "pyproject.toml",
        "setup.py",
        "MANIFEST.in",
        "README.md",
        "_build",
        "hardener",
    }
    for source in copied:
        assert (REPO / source).exists(), f"{source} is copied into the image but missing"
    # ... and the build context (.dockerignore) lets each of them through.
    allowed = {
        line.strip().removeprefix("!").rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip().startswith("!")
    }
    assert copied <= allowed


def test_the_image_holds_the_compiled_build(parsed: list[tuple[str, str]]) -> None:
    """The build stage compiles the core (docs/build.md) and checks that it did; the compiler
    stays in the build stage."""
    build, runtime = stages(parsed)
    env = " ".join(args for keyword, args in build if keyword == "ENV")
    assert dict(re.findall(r"(\w+)=(\S+)", env))["HARDENER_COMPILE"] == "1"
    build_runs = " ".join(args for keyword, args in build if keyword == "RUN")
    assert "gcc" in build_runs
    assert "variant() != 'compiled'" in build_runs
    assert "HARDENER_COMPILE" not in " ".join(args for _, args in runtime)
