"""Replacing a file keeps what the user set on it, and refuses what it cannot keep.

The atomic rename used to replace a file with mode 0444, to give the new file to whoever ran
``fix`` (uid and gid changed, extended attributes and ACLs lost), and to break hard links.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from hardener.cli import main
from hardener.fixer import files as files_module
from hardener.fixer.files import FileReadError, read_text
from hardener.fixer.run import FixOptions, fix_file
from tests.fixer.pods import BARE_POD as POD


def test_a_read_only_file_is_an_error_and_left_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    path.chmod(0o444)
    before = path.stat()
    assert main(["fix", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: error: read-only: left unchanged" in err
    after = path.stat()
    assert path.read_text() == POD
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (
        before.st_ino,
        before.st_mtime_ns,
        0o444,
    )
    # --check writes nothing, so a read-only file is no obstacle there.
    assert main(["fix", "--check", str(path)]) == 1


def test_mode_owner_and_group_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, 1234, 5678)
    before = path.stat()
    result = fix_file(str(path))
    assert result.changed and result.error is None
    after = path.stat()
    assert after.st_ino != before.st_ino  # replaced by rename, not written in place
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


def test_extended_attributes_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    try:
        os.setxattr(path, "user.origin", b"repo")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("this file system stores no user extended attributes")
        raise
    assert fix_file(str(path)).changed
    assert os.getxattr(path, "user.origin") == b"repo"


def test_a_file_with_hard_links_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    other = tmp_path / "same.yaml"
    os.link(path, other)
    result = fix_file(str(path))
    assert result.error is not None and "2 hard links: left unchanged" in result.error
    assert path.read_text() == POD and os.path.samefile(path, other)
    assert fix_file(str(path), FixOptions(write=False)).changed  # --check/--diff still see it


def test_no_temporary_file_is_left_after_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    os.link(path, tmp_path / "b.yaml")
    fix_file(str(path))
    path.chmod(0o444)
    fix_file(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.yaml", "pod.yaml"]


def test_a_file_whose_owner_cannot_be_kept_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a user who may write another user's file (through its group) meets: chown fails.
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    if os.geteuid() == 0:
        os.chown(path, 1234, os.getegid())
    else:
        pytest.skip("needs a file owned by another user, which only root can make")

    def no_chown(fd: int, uid: int, gid: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files_module.os, "fchown", no_chown)
    result = fix_file(str(path))
    assert result.error is not None and "belongs to user 1234" in result.error
    assert path.read_text() == POD and path.stat().st_uid == 1234
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pod.yaml"]


def test_a_link_out_of_the_roots_is_neither_read_nor_written(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(POD)
    repo = tmp_path / "repo"
    repo.mkdir()
    path = repo / "pod.yaml"
    path.symlink_to(outside)
    result = fix_file(str(path), FixOptions(link_roots=(str(repo.resolve()),)))
    assert result.error is not None and "symbolic link" in result.error
    assert outside.read_text() == POD and path.is_symlink()
    # The read itself refuses the link (O_NOFOLLOW): one put in place after a look fails too.
    with pytest.raises(FileReadError, match="symbolic link"):
        read_text(str(path), follow_symlinks=False)
