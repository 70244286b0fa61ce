"""Files on disk: which ones a run covers, reading them, and replacing them atomically.

Reading is strict: a file must be UTF-8 (a BOM is kept as the first character of the text,
so writing the text back keeps it). Writing never leaves a half-written file behind: the new
text goes to a temporary file in the same directory, is flushed to disk, takes the old file's
permission bits, and only then replaces the original with one rename.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from hardener.model import HardenerError

__all__ = [
    "MANIFEST_SUFFIXES",
    "STDIN",
    "FileReadError",
    "FileWriteError",
    "Snapshot",
    "collect_paths",
    "decode",
    "display_path",
    "is_excluded",
    "read_text",
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
    """What a file looked like when it was read, to notice a change before replacing it."""

    size: int
    mtime_ns: int
    mode: int


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


def _is_hidden(name: str) -> bool:
    return name.startswith(".") and name not in (".", "..")


def collect_paths(
    paths: Iterable[str], exclude: Sequence[str] = ()
) -> tuple[list[str], list[tuple[str, str]]]:
    """Expand the command-line paths into the files to process, in a stable order.

    A directory is walked recursively for ``*.yaml``, ``*.yml`` and ``*.json``, in sorted order,
    skipping hidden directories and files and whatever ``exclude`` names. A file named
    explicitly is taken whatever its suffix (unless excluded). ``-`` stands for stdin.
    Returns the files and the ``(path, message)`` pairs of paths that do not exist.
    """
    files: list[str] = []
    missing: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.normpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in paths:
        if raw == STDIN:
            files.append(STDIN)
            continue
        if is_excluded(raw, exclude):
            continue
        if os.path.isdir(raw):
            for found in _walk(raw, exclude):
                add(found)
        elif os.path.lexists(raw):
            add(raw)
        else:
            missing.append((raw, "no such file or directory"))
    return files, missing


def _walk(root: str, exclude: Sequence[str]) -> list[str]:
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root, onerror=None):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not _is_hidden(d) and not is_excluded(os.path.join(directory, d), exclude)
        )
        for name in sorted(filenames):
            if _is_hidden(name) or not name.lower().endswith(MANIFEST_SUFFIXES):
                continue
            path = os.path.join(directory, name)
            if not is_excluded(path, exclude):
                found.append(path)
    return found


def read_text(path: str) -> tuple[str, Snapshot]:
    """The text of a UTF-8 file and a snapshot of its metadata.

    Raises ``FileReadError`` for directories, missing or unreadable files and bytes that are
    not UTF-8 (naming the line and column of the first bad byte).
    """
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise FileReadError("is a directory")
        if not stat.S_ISREG(mode):
            # A FIFO or a device would block or never end; stdin is read with "-".
            raise FileReadError("not a regular file")
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read()
    except IsADirectoryError as exc:
        raise FileReadError("is a directory") from exc
    except PermissionError as exc:
        raise FileReadError("permission denied: cannot read the file") from exc
    except FileNotFoundError as exc:
        raise FileReadError("no such file or directory") from exc
    except OSError as exc:
        raise FileReadError(f"cannot read the file: {exc.strerror or exc}") from exc
    snapshot = Snapshot(size=info.st_size, mtime_ns=info.st_mtime_ns, mode=info.st_mode)
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
    systems. A symbolic link is followed: its target is replaced, the link stays. With a
    ``snapshot``, a file that changed since it was read is left alone.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    try:
        current = os.stat(target)
    except OSError as exc:
        raise FileWriteError(f"cannot stat the file before writing: {exc.strerror or exc}") from exc
    if snapshot is not None and (
        current.st_size != snapshot.size or current.st_mtime_ns != snapshot.mtime_ns
    ):
        raise FileWriteError("the file changed while it was being processed; run again")
    data = text.encode("utf-8")
    try:
        fd, temp = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".hardener-tmp"
        )
    except OSError as exc:
        raise FileWriteError(
            f"cannot create a temporary file in {directory}: {exc.strerror or exc}"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(current.st_mode))
        os.replace(temp, target)
    except OSError as exc:
        _remove_quietly(temp)
        raise FileWriteError(f"cannot write the file: {exc.strerror or exc}") from exc
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_directory(directory)


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
