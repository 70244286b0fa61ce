"""Which paths a run covers: dot-folders walked, tool folders and git-ignored paths left out
(and said so in the summary), ``--no-ignore``, symbolic links, and hardener's own temporary
files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hardener.cli import main
from hardener.fixer.files import STALE_TEMP_SECONDS, collect_paths
from tests.fixer.pods import BARE_POD as POD


def rel(root: Path, paths: list[str]) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


def test_dot_folders_are_walked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A repository whose manifests live in .k8s/ or whose tests live in .chainsaw-test/ got
    # "0 files scanned", with no word of why.
    for folder in (".k8s", ".chainsaw-test/case"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "pod.yaml").write_text(POD)
    for tool in (".git", "node_modules", ".venv", "__pycache__", ".tox", ".hg", ".svn"):
        (tmp_path / tool).mkdir()
        (tmp_path / tool / "pod.yaml").write_text(POD)
    collected = collect_paths([str(tmp_path)])
    assert rel(tmp_path, collected.files) == [".chainsaw-test/case/pod.yaml", ".k8s/pod.yaml"]
    assert sorted(rel(tmp_path, [p for p, _ in collected.left_out])) == sorted(
        [".git", "node_modules", ".venv", "__pycache__", ".tox", ".hg", ".svn"]
    )
    assert main(["fix", "--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "2 files scanned" in err and "7 paths left out" in err
    assert "left out 7 paths: tool folder" in err


def make_repository(root: Path) -> None:
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "info" / "exclude").write_text("local/\n")
    (root / ".gitignore").write_text(
        "# build output\nrendered/\n*.generated.yaml\n!keep.generated.yaml\n"
    )
    for path in (
        "deploy/pod.yaml",
        "deploy/x.generated.yaml",
        "deploy/keep.generated.yaml",
        "rendered/pod.yaml",
        "local/pod.yaml",
        "sub/pod.yaml",
        "sub/tmp.yaml",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(POD)
    (root / "sub" / ".gitignore").write_text("tmp.yaml\n")


def test_gitignore_and_info_exclude_are_honoured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repository(tmp_path)
    collected = collect_paths([str(tmp_path)])
    assert rel(tmp_path, collected.files) == [
        "deploy/keep.generated.yaml",
        "deploy/pod.yaml",
        "sub/pod.yaml",
    ]
    reasons = {os.path.relpath(p, tmp_path): r for p, r in collected.left_out}
    ignored = "ignored by .gitignore or .git/info/exclude"
    assert reasons == {
        ".git": "tool folder",
        "deploy/x.generated.yaml": ignored,
        "rendered": ignored,
        "local": ignored,
        "sub/tmp.yaml": ignored,
    }
    # Walking a subdirectory still reads the ignore files above it.
    assert rel(tmp_path, collect_paths([str(tmp_path / "sub")]).files) == ["sub/pod.yaml"]
    assert main(["fix", "--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "3 files scanned" in err and "5 paths left out" in err
    assert f"left out 4 paths: {ignored}" in err


def test_no_ignore_walks_what_git_ignores(tmp_path: Path) -> None:
    make_repository(tmp_path)
    collected = collect_paths([str(tmp_path)], use_ignore_files=False)
    assert len(collected.files) == 7
    assert [r for _, r in collected.left_out] == ["tool folder"]
    assert main(["fix", "--check", "--no-ignore", str(tmp_path)]) == 1
    assert main(["check", "--no-ignore", str(tmp_path)]) == 1


def test_symlink_outside_the_roots_is_left_out_while_walking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A hostile repository linked a manifest outside it, and fix rewrote that file.
    outside = tmp_path / "outside.yaml"
    outside.write_text(POD)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "evil.yaml").symlink_to(outside)
    (repo / "real.yaml").write_text(POD)
    (repo / "alias.yaml").symlink_to(repo / "real.yaml")  # inside: same file, once
    (repo / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    assert main(["fix", str(repo)]) == 0
    err = capsys.readouterr().err
    assert outside.read_text() == POD
    assert (repo / "evil.yaml").is_symlink() and (repo / "alias.yaml").is_symlink()
    assert "allowPrivilegeEscalation" in (repo / "real.yaml").read_text()
    assert "1 file scanned" in err and "2 paths left out" in err
    assert "symbolic link to a path outside the paths given" in err
    assert "symbolic link to a directory (not followed)" in err
    # Naming the directory the link leads into makes its target part of the run.
    collected = collect_paths([str(repo), str(tmp_path)])
    assert str(repo / "evil.yaml") in collected.files or str(outside) in collected.files


def test_symlink_named_on_the_command_line_needs_follow_symlinks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "real.yaml"
    target.write_text(POD)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert main(["fix", str(link)]) == 0
    err = capsys.readouterr().err
    assert target.read_text() == POD
    assert "left out 1 path: symbolic link (pass --follow-symlinks" in err
    assert main(["fix", "--follow-symlinks", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert "allowPrivilegeEscalation" in target.read_text()


def make_temp(directory: Path, name: str, age: float) -> Path:
    path = directory / name
    path.write_text(POD)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_stale_temporary_files_are_removed_and_never_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A kill -9 during the rename step leaves ".NAME.yaml.XXXXXXXX.hardener-tmp" behind.
    (tmp_path / "pod.yaml").write_text(POD)
    stale = make_temp(tmp_path, ".pod.yaml.k2j_9x1a.hardener-tmp", STALE_TEMP_SECONDS + 60)
    fresh = make_temp(tmp_path, ".pod.yaml.abcdefgh.hardener-tmp", 5)  # a run in progress
    other = make_temp(tmp_path, ".notes.hardener-tmp", STALE_TEMP_SECONDS + 60)  # not ours
    assert main(["fix", "--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert stale.exists() and "found 1 stale temporary file" in err
    assert "1 file scanned" in err
    assert main(["fix", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert not stale.exists() and fresh.exists() and other.exists()
    assert "removed 1 stale temporary file of an interrupted hardener run" in err
    assert str(stale) in err
    # Named explicitly, a temporary file is still not a manifest.
    collected = collect_paths([str(fresh)])
    assert collected.files == [] and collected.left_out[0][0] == str(fresh)
