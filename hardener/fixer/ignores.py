"""What a directory walk leaves out on purpose: tool folders and what git ignores.

The conventions are those of ruff and black. The usual tool folders (``.git``, ``.hg``,
``.svn``, ``.venv``, ``node_modules``, ``__pycache__``, ``.tox``, and a few caches) are never
walked. Every other directory is, dot-folders included (``.k8s/``, ``.chainsaw-test/``), unless
git ignores it: the ``.gitignore`` files from the repository's top down to the directory, and
``.git/info/exclude``, are read as git reads them (``pathspec``'s git semantics), without
running git. Outside a repository, the ``.gitignore`` files from the walked directory down
still count. The user's global ignore file (``core.excludesFile``) is not read: it describes
one person's editor, not the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pathspec import GitIgnoreSpec

__all__ = ["TOOL_FOLDERS", "IgnoreLayers", "ignore_layers", "is_ignored", "with_directory"]

TOOL_FOLDERS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        ".venv",
        "node_modules",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)


@dataclass(frozen=True)
class _Layer:
    base: str
    """The absolute directory the patterns are relative to."""
    spec: GitIgnoreSpec


IgnoreLayers = tuple[_Layer, ...]
"""The ignore files that apply in one directory, outermost first (a later match wins)."""


def _read_spec(path: str) -> GitIgnoreSpec | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    spec = GitIgnoreSpec.from_lines(lines)
    return spec if len(spec) else None


def _git_dir(top: str) -> str | None:
    """The directory holding ``info/exclude`` for the repository whose top is ``top``."""
    dot_git = os.path.join(top, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:  # a worktree or submodule: ".git" is a file naming the real git directory
        with open(dot_git, encoding="utf-8") as handle:
            first = handle.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    git_dir = os.path.join(top, first.removeprefix("gitdir:").strip())
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
            return os.path.normpath(os.path.join(git_dir, handle.readline().strip()))
    except OSError:
        return git_dir


def _repository_top(directory: str) -> str | None:
    current = directory
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def ignore_layers(root: str) -> IgnoreLayers:
    """The ignore files that apply in ``root``, a directory about to be walked: those of the
    repository above it (``info/exclude``, then each ``.gitignore`` from the top down), and
    ``root``'s own ``.gitignore``."""
    root = os.path.abspath(root)
    layers: list[_Layer] = []
    top = _repository_top(root)
    directories = [root]
    if top is not None:
        git_dir = _git_dir(top)
        if git_dir is not None:
            spec = _read_spec(os.path.join(git_dir, "info", "exclude"))
            if spec is not None:
                layers.append(_Layer(top, spec))
        directories = []
        current = root
        while True:
            directories.append(current)
            if current == top:
                break
            current = os.path.dirname(current)
        directories.reverse()
    for directory in directories:
        spec = _read_spec(os.path.join(directory, ".gitignore"))
        if spec is not None:
            layers.append(_Layer(directory, spec))
    return tuple(layers)


def with_directory(layers: IgnoreLayers, directory: str, has_gitignore: bool) -> IgnoreLayers:
    """The layers that apply inside ``directory``, a subdirectory met while walking."""
    if not has_gitignore:
        return layers
    directory = os.path.abspath(directory)
    spec = _read_spec(os.path.join(directory, ".gitignore"))
    return layers if spec is None else (*layers, _Layer(directory, spec))


def is_ignored(layers: IgnoreLayers, path: str, is_dir: bool) -> bool:
    """Whether git would ignore ``path`` under these layers (the last matching pattern wins)."""
    if not layers:
        return False
    absolute = os.path.abspath(path)
    ignored = False
    for layer in layers:
        relative = os.path.relpath(absolute, layer.base)
        if relative.startswith(".."):
            continue
        relative = relative.replace(os.sep, "/") + ("/" if is_dir else "")
        verdict = layer.spec.check_file(relative).include
        if verdict is not None:
            ignored = verdict
    return ignored
