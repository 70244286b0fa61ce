"""The one place where RFC 6902 operations are built.

``PatchBuilder`` is handed the original object and the edits the rules decided on. It never
copies the object: it records *pending* values beside it and emits, at the end, the smallest
list of ``add``/``replace`` operations in a stable order (the order in which edits first touched
each place):

- a missing parent is created by a single ``add`` whose value nests everything set below it;
- an append to an existing array is an ``add`` at ``…/-``;
- a member that exists but holds ``null`` is set with ``replace``, as is an enforced value;
- pointers are escaped per RFC 6901 (``~0``, ``~1``);
- an edit that would not change anything emits nothing.

``get`` answers what a path holds once the pending edits are applied, so later rules see what
earlier ones did without paying for a deep copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardener.model import JSONValue, Operation
from hardener.pointer import join, split

__all__ = ["MISSING", "PatchBuilder", "apply_shared"]

Path = tuple[str | int, ...]


class _Missing:
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""What ``PatchBuilder.get`` returns for a path that holds nothing (absent or ``null``)."""


@dataclass
class _Pending:
    op: str  # "add" | "replace" | "append"
    path: Path  # where the value goes; for "append", the array
    value: JSONValue


class PatchBuilder:
    """Records edits against a document it never modifies, and emits them as RFC 6902 ops.

    Pending values are indexed by the identity of the original node they hang from
    (``(id(parent), key)`` for a member added or replaced, ``id(array)`` for appends), so a
    lookup is one walk down the original with a dictionary probe per step, not a search
    over paths. The document must not change while the builder is in use.
    """

    def __init__(self, document: JSONValue) -> None:
        self._doc = document
        self._pending: list[_Pending] = []
        self._placed: dict[tuple[int, str | int], _Pending] = {}
        self._appends: dict[int, list[_Pending]] = {}

    # -- reading -----------------------------------------------------------------------------

    def original(self, path: Path) -> JSONValue:
        """What the original document holds at ``path`` (``MISSING`` for absent or null)."""
        return _walk(self._doc, path)

    def get(self, path: Path, anchor: tuple[int, JSONValue] | None = None) -> JSONValue:
        """What ``path`` holds once the pending edits apply (``MISSING`` for absent or null).

        ``anchor=(n, node)`` says that ``path[:n]`` is ``node`` in the original document and
        that no pending edit replaces it or anything above it (true of a container, which
        rules never replace): the lookup then starts there instead of at the root.
        Values returned may be pending values: treat them as read-only.
        """
        node, depth = (anchor[1], anchor[0]) if anchor is not None else (self._doc, 0)
        placed = self._placed
        size = len(path)
        while depth < size:
            token = path[depth]
            if placed:
                pending = placed.get((id(node), token))
                if pending is not None:
                    return _walk(pending.value, path[depth + 1 :])
            if isinstance(node, dict):
                child = node.get(token) if isinstance(token, str) else None
            elif isinstance(node, list) and isinstance(token, int) and token >= 0:
                if token < len(node):
                    child = node[token]
                else:
                    appended = self._appends.get(id(node))
                    offset = token - len(node)
                    if not appended or offset >= len(appended):
                        return MISSING
                    return _walk(appended[offset].value, path[depth + 1 :])
            else:
                return MISSING
            if child is None:
                return MISSING
            node = child
            depth += 1
        if isinstance(node, list) and self._appends:
            appended = self._appends.get(id(node))
            if appended:
                return [*node, *(p.value for p in appended)]
        return node

    # -- writing -----------------------------------------------------------------------------

    def set(
        self,
        path: Path,
        value: JSONValue,
        *,
        replace: bool = False,
        anchor: tuple[int, JSONValue] | None = None,
    ) -> tuple[bool, JSONValue]:
        """Set ``path`` to ``value`` if it holds nothing; with ``replace``, also overwrite.

        Returns whether an edit was recorded, and what ``path`` held before (``MISSING`` for
        nothing). Intermediate mappings are created as needed.
        """
        current = self.get(path, anchor)
        if current is not MISSING and (not replace or current == value):
            return False, current
        self._place(path, _copy(value), anchor)
        return True, current

    def append(
        self, array_path: Path, item: JSONValue, anchor: tuple[int, JSONValue] | None = None
    ) -> None:
        """Append ``item`` to the array at ``array_path``, creating the array if absent."""
        item = _copy(item)
        home = self._home(array_path, anchor)
        if home is None:
            existing = (
                _walk(anchor[1], array_path[anchor[0] :]) if anchor else self.original(array_path)
            )
            if isinstance(existing, list):
                pending = _Pending("append", array_path, item)
                self._pending.append(pending)
                self._appends.setdefault(id(existing), []).append(pending)
                return
        current = self.get(array_path, anchor)
        if isinstance(current, list) and home is not None:
            # The array is itself (part of) a pending value: grow it in place.
            current.append(item)
            return
        self._place(array_path, [item], anchor)

    def ops(self) -> list[Operation]:
        result: list[Operation] = []
        for pending in self._pending:
            if pending.op == "append":
                path = join((*pending.path, "-"))
                result.append({"op": "add", "path": path, "value": pending.value})
            elif pending.op == "replace":
                result.append({"op": "replace", "path": join(pending.path), "value": pending.value})
            else:
                result.append({"op": "add", "path": join(pending.path), "value": pending.value})
        return result

    # -- internals ---------------------------------------------------------------------------

    def _home(
        self, path: Path, anchor: tuple[int, JSONValue] | None
    ) -> tuple[_Pending, Path] | None:
        """The pending value that holds ``path`` (at or above it), with the rest of the path."""
        if not self._placed:
            return None
        node, start = (anchor[1], anchor[0]) if anchor is not None else (self._doc, 0)
        for depth in range(start, len(path)):
            token = path[depth]
            pending = self._placed.get((id(node), token))
            if pending is not None:
                return pending, path[depth + 1 :]
            node = _child(node, token)
            if node is MISSING or node is None:
                return None
        return None

    def _place(self, path: Path, value: JSONValue, anchor: tuple[int, JSONValue] | None) -> None:
        if not path:
            raise ValueError("the document itself cannot be replaced")
        node, start = (anchor[1], anchor[0]) if anchor is not None else (self._doc, 0)
        last = len(path) - 1
        for depth in range(start, len(path)):
            token = path[depth]
            key = (id(node), token)
            pending = self._placed.get(key)
            if pending is not None:
                if depth == last:
                    pending.value = value  # an enforced value replacing a pending one
                else:
                    # Inside a value that is itself pending: merge into it.
                    _deep_set(pending.value, path[depth + 1 :], value)
                return
            child = _child(node, token)
            if child is MISSING or child is None or depth == last:
                op = "add" if child is MISSING else "replace"
                pending = _Pending(op, path[: depth + 1], _nest(path[depth + 1 :], value))
                self._pending.append(pending)
                self._placed[key] = pending
                return
            node = child
        raise AssertionError("unreachable")


def apply_shared(document: JSONValue, ops: list[Operation]) -> JSONValue:
    """``document`` with ``ops`` applied, without copying what the ops do not touch.

    Only the containers on the path of each op are copied (shallowly); everything else, and the
    op values themselves, are shared with the inputs. Treat the result as read-only. Meant for
    the ``add``/``replace`` ops ``PatchBuilder`` emits, for which it gives what
    ``jsonpatch.apply_patch`` gives, at a fraction of the cost of its deep copy.
    """
    if not ops:
        return document
    copied: set[int] = set()

    def fresh(node: JSONValue) -> JSONValue:
        if id(node) in copied:
            return node
        node = dict(node) if isinstance(node, dict) else list(node)
        copied.add(id(node))
        return node

    root = fresh(document)
    for op in ops:
        tokens = split(op["path"])
        node = root
        for token in tokens[:-1]:
            key: str | int = int(token) if isinstance(node, list) else token
            child = fresh(node[key])
            node[key] = child
            node = child
        last = tokens[-1]
        if isinstance(node, list):
            if last == "-":
                node.append(op["value"])
            else:
                node[int(last)] = op["value"]
        else:
            node[last] = op["value"]
    return root


def _walk(node: JSONValue, path: Path) -> JSONValue:
    for token in path:
        if isinstance(node, dict):
            node = node.get(token, MISSING) if isinstance(token, str) else MISSING
        elif isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
            node = node[token]
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return MISSING if node is None else node


def _copy(value: JSONValue) -> JSONValue:
    """A copy of a JSON value, so the caller's value and ours never alias (cheaper than
    ``copy.deepcopy`` for the small literals rules set)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _child(node: JSONValue, token: str | int) -> JSONValue:
    if isinstance(node, dict):
        return node.get(token, MISSING) if isinstance(token, str) else MISSING
    if isinstance(node, list) and isinstance(token, int):
        return node[token] if 0 <= token < len(node) else MISSING
    return MISSING


def _nest(path: Path, value: JSONValue) -> JSONValue:
    for token in reversed(path):
        if isinstance(token, int):
            raise ValueError(f"cannot create array index {token} in a new value")
        value = {token: value}
    return value


def _deep_set(container: JSONValue, path: Path, value: JSONValue) -> None:
    if not path:
        raise ValueError("a pending value cannot be replaced wholesale")
    node = container
    for token in path[:-1]:
        child = _child(node, token)
        if child is MISSING or child is None:
            if not isinstance(node, dict) or not isinstance(token, str):
                raise ValueError(f"cannot create {token!r} inside a pending value")
            node[token] = {}
            child = node[token]
        node = child
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        node[last] = value
    else:
        raise ValueError(f"cannot set {last!r} inside a pending value")
