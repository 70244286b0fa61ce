"""Files on disk: which ones a run covers, reading them, and replacing them atomically.

Reading is strict: a file must be UTF-8 (a BOM is kept as the first character of the text,
so writing the text back keeps it). Writing never leaves a half-written file behind: the new
text goes to a temporary file in the same directory, is flushed to disk, takes the old file's
permission bits, and only then replaces the original with one rename.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from hardener.fixer.ignores import (
    TOOL_FOLDERS,
    IgnoreLayers,
    ignore_layers,
    is_ignored,
    with_directory,
)
from hardener.model import HardenerError

__all__ = [
    "MANIFEST_SUFFIXES",
    "STALE_TEMP_SECONDS",
    "STDIN",
    "TEMP_SUFFIX",
    "Collected",
    "FileReadError",
    "FileWriteError",
    "Snapshot",
    "collect_paths",
    "decode",
    "display_path",
    "is_excluded",
    "is_temp_name",
    "link_roots",
    "read_text",
    "within",
    "write_atomic",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


class FileReadError(HardenerError):
    """A path that cannot be read as a UTF-8 text file. ``message`` names no path; ``line``
    and ``column`` (1-based) place the problem when it has a place (a byte that is not UTF-8)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message if line is None else f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class FileWriteError(HardenerError):
    """The new text could not be put in place; the original file is untouched."""


@dataclass(frozen=True)
class Snapshot:
    """What a file looked like when it was read, to notice a change (or another file put in
    its place) before replacing it."""

    size: int
    mtime_ns: int
    mode: int
    device: int = 0
    inode: int = 0


def is_excluded(path: str, patterns: Sequence[str]) -> bool:
    """True when ``path`` or any of its parent directories matches one of the glob patterns.

    A pattern matches the whole relative path (``deploy/*.yaml``), or any single component
    (``vendor``, ``*.generated.yaml``); ``**`` in a pattern matches across directories.
    """
    if not patterns:
        return False
    pure = PurePosixPath(path.replace(os.sep, "/"))
    parts = [p for p in pure.parts if p not in ("", ".")]
    candidates = {pure.as_posix(), *parts}
    # Every leading sub-path, so that "deploy/legacy" excludes everything below it.
    for end in range(1, len(parts) + 1):
        candidates.add("/".join(parts[:end]))
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, pattern):
                return True
            if "**" in pattern and fnmatch.fnmatchcase(candidate, pattern.replace("**/", "")):
                return True
    return False


TEMP_SUFFIX = ".hardener-tmp"
"""The suffix of the temporary file ``write_atomic`` writes before its rename."""

STALE_TEMP_SECONDS = 300
"""A temporary file of hardener's older than this was left by a run that was killed: a live
run keeps its temporary file for well under a second."""

# The name write_atomic's mkstemp gives: ".NAME." + 8 random characters + TEMP_SUFFIX.
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")

# Why a path is left out; the summary groups by these.
IGNORED = "ignored by .gitignore or .git/info/exclude"
TOOL_FOLDER = "tool folder"
EXCLUDED = "--exclude"
LINK_OUTSIDE = "symbolic link to a path outside the paths given"
LINK_DIRECTORY = "symbolic link to a directory (not followed)"
LINK_NAMED = "symbolic link (pass --follow-symlinks to edit its target)"
TEMP_FILE = "temporary file of an interrupted hardener run"


@dataclass
class Collected:
    """What a run covers: the files in order, the paths that do not exist (errors), the paths
    left out on purpose with the reason (one of the constants above), and the stale temporary
    files found (``removed`` says whether they were deleted)."""

    files: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    removed: bool = False


def is_temp_name(name: str) -> bool:
    """Whether a file name is one ``write_atomic`` gives its temporary files."""
    return _TEMP_NAME.match(name) is not None


def within(path: str, roots: Sequence[str]) -> bool:
    """Whether the real location of ``path`` lies inside one of ``roots`` (real paths)."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def link_roots(paths: Iterable[str]) -> tuple[str, ...]:
    """The real paths of the directories among ``paths``: a symbolic link met while walking
    them may be followed only to a place inside one of them."""
    return tuple(os.path.realpath(p) for p in paths if p != STDIN and os.path.isdir(p))


def collect_paths(
    paths: Iterable[str],
    exclude: Sequence[str] = (),
    *,
    use_ignore_files: bool = True,
    follow_symlinks: bool = False,
    remove_stale: bool = False,
    now: float | None = None,
) -> Collected:
    """Expand the command-line paths into the files to process, in a stable order.

    A directory is walked recursively for ``*.yaml``, ``*.yml`` and ``*.json``, in sorted order.
    The walk leaves out tool folders and what git ignores (``hardener.fixer.ignores``; the
    ignore files only with ``use_ignore_files``), whatever ``exclude`` names, symbolic links to
    directories, symbolic links to files outside the directories given, and hardener's own
    temporary files. A file named explicitly is taken whatever its suffix (unless excluded);
    a symbolic link named explicitly only with ``follow_symlinks``. ``-`` stands for stdin.

    Temporary files older than ``STALE_TEMP_SECONDS`` in the directories covered are listed
    in ``stale``, and deleted with ``remove_stale``.
    """
    given = list(paths)
    collected = Collected()
    roots = link_roots(given)
    seen: set[str] = set()
    directories: set[str] = set()

    def add(path: str) -> None:
        # A file reached through a link and by its own name is processed once. realpath costs
        # a stat per path component, so only links pay for it.
        key = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            collected.files.append(path)

    for raw in given:
        if raw == STDIN:
            collected.files.append(STDIN)
            continue
        if is_excluded(raw, exclude):
            collected.left_out.append((raw, EXCLUDED))
            continue
        if os.path.islink(raw) and not follow_symlinks:
            collected.left_out.append((raw, LINK_NAMED))
            directories.add(os.path.dirname(raw) or ".")
        elif os.path.isdir(raw):
            for found in _walk(raw, exclude, roots, use_ignore_files, collected, directories):
                add(found)
        elif os.path.lexists(raw):
            directories.add(os.path.dirname(raw) or ".")
            if is_temp_name(os.path.basename(raw)):
                collected.left_out.append((raw, TEMP_FILE))
            else:
                add(raw)
        else:
            collected.missing.append((raw, "no such file or directory"))
    collected.stale = _stale_temps(sorted(directories), time.time() if now is None else now)
    if remove_stale:
        for path in collected.stale:
            _remove_quietly(path)
        collected.removed = True
    return collected


def _walk(
    root: str,
    exclude: Sequence[str],
    roots: Sequence[str],
    use_ignore_files: bool,
    collected: Collected,
    directories: set[str],
) -> list[str]:
    found: list[str] = []
    layers = {root: ignore_layers(root) if use_ignore_files else ()}
    for directory, dirnames, filenames in os.walk(root, onerror=None):
        directories.add(directory)
        here = layers.pop(directory, ())
        kept = []
        for name in sorted(dirnames):
            path = os.path.join(directory, name)
            reason = _directory_reason(name, path, here, exclude)
            if reason is not None:
                collected.left_out.append((path, reason))
                continue
            kept.append(name)
            if use_ignore_files:
                # os.walk lists a directory's files only when it gets there; one stat here.
                has_gitignore = os.path.isfile(os.path.join(path, ".gitignore"))
                layers[path] = with_directory(here, path, has_gitignore)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.lower().endswith(MANIFEST_SUFFIXES):
                continue
            path = os.path.join(directory, name)
            if is_excluded(path, exclude):
                collected.left_out.append((path, EXCLUDED))
            elif is_ignored(here, path, is_dir=False):
                collected.left_out.append((path, IGNORED))
            elif os.path.islink(path) and not within(path, roots):
                collected.left_out.append((path, LINK_OUTSIDE))
            else:
                found.append(path)
    return found


def _directory_reason(
    name: str, path: str, layers: IgnoreLayers, exclude: Sequence[str]
) -> str | None:
    if name in TOOL_FOLDERS:
        return TOOL_FOLDER
    if is_excluded(path, exclude):
        return EXCLUDED
    if os.path.islink(path):
        # Not followed, as os.walk does not: a link could lead anywhere, or round in a loop.
        return LINK_DIRECTORY
    if is_ignored(layers, path, is_dir=True):
        return IGNORED
    return None


def _stale_temps(directories: Sequence[str], now: float) -> list[str]:
    stale = []
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not is_temp_name(name):
                continue
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_TEMP_SECONDS:
                stale.append(path)
    return stale


def read_text(path: str, *, follow_symlinks: bool = True) -> tuple[str, Snapshot]:
    """The text of a UTF-8 file and a snapshot of its metadata.

    Raises ``FileReadError`` for directories, missing or unreadable files, what is not a
    regular file, and bytes that are not UTF-8 (naming the line and column of the first bad
    byte). Without ``follow_symlinks``, a symbolic link is an error, even one put in place
    after the caller looked.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        # What is opened is what is judged: a FIFO swapped in after a check would block.
        fd = os.open(path, flags)
        with open(fd, "rb") as handle:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise FileReadError("is a directory")
            if not stat.S_ISREG(info.st_mode):
                # A FIFO or a device would block or never end; stdin is read with "-".
                raise FileReadError("not a regular file")
            data = handle.read()
    except IsADirectoryError as exc:
        raise FileReadError("is a directory") from exc
    except PermissionError as exc:
        raise FileReadError("permission denied: cannot read the file") from exc
    except FileNotFoundError as exc:
        raise FileReadError("no such file or directory") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise FileReadError(
                "symbolic link: left unchanged (pass --follow-symlinks to edit its target)"
            ) from exc
        raise FileReadError(f"cannot read the file: {exc.strerror or exc}") from exc
    snapshot = Snapshot(
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        mode=info.st_mode,
        device=info.st_dev,
        inode=info.st_ino,
    )
    return decode(data), snapshot


def decode(data: bytes) -> str:
    """Strict UTF-8 decoding; a leading BOM stays in the text as U+FEFF."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise FileReadError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            line,
            column,
        ) from exc


def write_atomic(path: str, text: str, snapshot: Snapshot | None = None) -> None:
    """Replace the file at ``path`` with ``text`` (UTF-8), all or nothing.

    The temporary file lives in the same directory, so the final rename cannot cross file
    systems. A symbolic link is followed (the caller decides whether it may be): its target is
    replaced, the link itself stays a link. The new file keeps the old one's mode, owner, group
    and extended attributes (POSIX ACLs among them). Refused with ``FileWriteError``, the file
    untouched: a file that changed since ``snapshot``, a read-only file (no write permission
    bit, or not writable by this user), a file with more than one hard link (a rename would
    break the links; writing in place could leave a half-written file), and a file whose owner
    or attributes the new file cannot keep.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    try:
        current = os.stat(target)
    except OSError as exc:
        raise FileWriteError(
            f"cannot stat the file before writing: {exc.strerror or exc}; {_UNCHANGED}"
        ) from exc
    _check_replaceable(target, current, snapshot)
    data = text.encode("utf-8")
    try:
        fd, temp = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(target)}.", suffix=TEMP_SUFFIX
        )
    except OSError as exc:
        raise FileWriteError(
            f"cannot create a temporary file in {directory}: {exc.strerror or exc}; {_UNCHANGED}"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            _keep_owner(handle.fileno(), current)
            # After chown, which clears the set-user-ID and set-group-ID bits.
            os.fchmod(handle.fileno(), stat.S_IMODE(current.st_mode))
            _keep_xattrs(target, handle.fileno())
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        _remove_quietly(temp)
        raise FileWriteError(f"cannot write the file: {exc.strerror or exc}; {_UNCHANGED}") from exc
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_directory(directory)


_UNCHANGED = "the file was left unchanged"


def _check_replaceable(target: str, current: os.stat_result, snapshot: Snapshot | None) -> None:
    if snapshot is not None and (
        current.st_size != snapshot.size
        or current.st_mtime_ns != snapshot.mtime_ns
        or (
            snapshot.inode and (current.st_dev, current.st_ino) != (snapshot.device, snapshot.inode)
        )
    ):
        raise FileWriteError(
            f"the file changed while it was being processed; {_UNCHANGED}; run again"
        )
    # root may write anything: a file without any write bit is read-only by its owner's will.
    if not stat.S_IMODE(current.st_mode) & 0o222 or not os.access(target, os.W_OK):
        raise FileWriteError(
            "read-only: left unchanged (make the file writable to let hardener fix it)"
        )
    if current.st_nlink > 1:
        raise FileWriteError(
            f"the file has {current.st_nlink} hard links: left unchanged (replacing it would "
            "break the links, and writing in place is not atomic); break the link (copy the "
            "file and move the copy over it), or apply what 'hardener fix --diff' shows by hand"
        )


def _keep_owner(fd: int, current: os.stat_result) -> None:
    info = os.fstat(fd)
    if (info.st_uid, info.st_gid) == (current.st_uid, current.st_gid):
        return
    try:
        os.fchown(fd, current.st_uid, current.st_gid)
        return
    except PermissionError:
        pass
    with contextlib.suppress(PermissionError):  # the group alone, if this user is in it
        os.fchown(fd, -1, current.st_gid)
    if os.fstat(fd).st_uid != current.st_uid:
        raise FileWriteError(
            f"the file belongs to user {current.st_uid}, and a new file would belong to you: "
            f"left unchanged (run hardener as the file's owner)"
        )


# The new file gets the directory's default security label, as from any editor.
_RELABELLED = frozenset({"security.selinux"})


def _keep_xattrs(source: str, fd: int) -> None:
    listxattr = getattr(os, "listxattr", None)
    if listxattr is None:  # not on this platform
        return
    try:
        names = listxattr(source)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        if name in _RELABELLED:
            continue
        try:
            os.setxattr(fd, name, os.getxattr(source, name))
        except OSError as exc:
            raise FileWriteError(
                f"cannot keep the extended attribute {name} ({exc.strerror or exc}): left unchanged"
            ) from exc


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform or file system allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def display_path(path: str) -> str:
    """How a path is shown in reports: as given, with stdin named ``<stdin>``."""
    return "<stdin>" if path == STDIN else path
