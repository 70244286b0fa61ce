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

from typing import Any, Final

from hardener.model import JSONValue, Operation
from hardener.pointer import join_path

__all__ = ["MISSING", "PatchBuilder"]

JsonPath = tuple[str | int, ...]


class _Missing:
    """The type of ``MISSING``; its one instance is made below, compared by identity."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final[Any] = _Missing()
"""What ``PatchBuilder.get`` returns for a path that holds nothing (absent or ``null``)."""


class _Pending:
    __slots__ = ("op", "path", "value")

    def __init__(self, op: str, path: JsonPath, value: JSONValue) -> None:
        self.op = op  # "add" | "replace" | "append"
        self.path = path  # where the value goes; for "append", the array
        self.value = value


class PatchBuilder:
    """Records edits against a document it never modifies, and emits them as RFC 6902 ops.

    The builder keeps a *working tree*: the document with the edits applied, sharing every
    node it does not change. A node on the way to an edit is copied (shallowly) the first time
    an edit goes through it, and new values are linked in where they belong, so reading what
    a path holds now is a plain walk. Each edit also records the one operation that carries
    it; an edit inside a value that is itself new merges into that value instead. The
    document must not change while the builder is in use.
    """

    def __init__(self, document: JSONValue) -> None:
        self._doc = document
        self._root = document
        self._pending: list[_Pending] = []
        # id(original node) -> its working copy; id(working node) -> the node, for the copies
        # and for the nodes of new values. Both hold the nodes, so no id is ever reused.
        self._copies: dict[int, Any] = {}
        self._copied: dict[int, Any] = {}
        self._new: dict[int, Any] = {}
        # (id(working parent), key) -> the pending op that set it: an enforced value that
        # replaces a pending one updates that op.
        self._placed: dict[tuple[int, str | int], _Pending] = {}

    # -- reading -----------------------------------------------------------------------------

    def original(self, path: JsonPath) -> JSONValue:
        """What the original document holds at ``path`` (``MISSING`` for absent or null)."""
        return _walk(self._doc, path)

    def get(self, path: JsonPath, anchor: tuple[int, JSONValue] | None = None) -> JSONValue:
        """What ``path`` holds once the pending edits apply (``MISSING`` for absent or null).

        ``anchor=(n, node)`` says that ``path[:n]`` is ``node`` in the original document: the
        lookup then starts there (at its working copy, if it has one). Values returned may be
        the builder's own: treat them as read-only.
        """
        if anchor is None:
            return _walk(self._root, path)
        node = anchor[1]
        return _walk(self._copies.get(id(node), node), path[anchor[0] :])

    def get_in(self, node: JSONValue, keys: tuple[str, ...]) -> JSONValue:
        """What ``keys`` lead to below ``node``, a mapping of the original document, once the
        pending edits apply (``MISSING`` for absent or null)."""
        node = self._copies.get(id(node), node)
        for key in keys:
            if not isinstance(node, dict):
                return MISSING
            node = node.get(key)
            if node is None:
                return MISSING
        return node

    def result(self) -> JSONValue:
        """The document with every pending edit applied, sharing all it does not change.

        Equal to applying ``ops()`` to the document; treat it as read-only."""
        return self._root

    # -- writing -----------------------------------------------------------------------------

    def set(
        self,
        path: JsonPath,
        value: JSONValue,
        *,
        replace: bool = False,
        anchor: tuple[int, JSONValue] | None = None,
    ) -> tuple[bool, JSONValue]:
        """Set ``path`` to ``value`` if it holds nothing; with ``replace``, also overwrite.

        Returns whether an edit was recorded, and what ``path`` held before (``MISSING`` for
        nothing). Intermediate mappings are created as needed.
        """
        if anchor is None:
            current = _walk(self._root, path)
        else:
            node = anchor[1]
            current = _walk(self._copies.get(id(node), node), path[anchor[0] :])
        if current is not MISSING and (not replace or current == value):
            return False, current
        self._place(path, _copy(value) if isinstance(value, (dict, list)) else value, anchor)
        return True, current

    def append(
        self, array_path: JsonPath, item: JSONValue, anchor: tuple[int, JSONValue] | None = None
    ) -> int:
        """Append ``item`` to the array at ``array_path``, creating the array if absent.

        Returns the index the item gets."""
        item = _copy(item)
        current = self.get(array_path, anchor)
        if not isinstance(current, list):
            self._place(array_path, [item], anchor)
            return 0
        index = len(current)
        if id(current) in self._new:
            # The array is itself (part of) a pending value: grow it in place.
            current.append(self._adopt(item))
            return index
        array = self._writable(array_path, anchor)
        array.append(self._adopt(item))
        self._pending.append(_Pending("append", array_path, item))
        return index

    def ops(self) -> list[Operation]:
        result: list[Operation] = []
        for pending in self._pending:
            if pending.op == "append":
                path = join_path((*pending.path, "-"))
                result.append({"op": "add", "path": path, "value": pending.value})
            elif pending.op == "replace":
                result.append(
                    {"op": "replace", "path": join_path(pending.path), "value": pending.value}
                )
            else:
                result.append(
                    {"op": "add", "path": join_path(pending.path), "value": pending.value}
                )
        return result

    # -- internals ---------------------------------------------------------------------------

    def _adopt(self, value: JSONValue) -> JSONValue:
        """Mark the containers of a new value as the builder's own (edits merge into them)."""
        if isinstance(value, dict):
            self._new[id(value)] = value
            for child in value.values():
                if isinstance(child, (dict, list)):
                    self._adopt(child)
        elif isinstance(value, list):
            self._new[id(value)] = value
            for child in value:
                if isinstance(child, (dict, list)):
                    self._adopt(child)
        return value

    def _own(self, node: JSONValue) -> JSONValue:
        """The working node for ``node``: itself if the builder owns it, else its copy."""
        key = id(node)
        if key in self._new or key in self._copied:
            return node
        copy = self._copies.get(key)
        if copy is None:
            copy = dict(node) if isinstance(node, dict) else list(node)
            self._copies[key] = copy
            self._copied[id(copy)] = copy
        return copy

    def _writable(self, path: JsonPath, anchor: tuple[int, JSONValue] | None = None) -> Any:
        """The working node at ``path`` (which exists), copying the way down to it."""
        node, start = None, 0
        if anchor is not None:
            node = self._copies.get(id(anchor[1]))
            start = anchor[0] if node is not None else 0
        if node is None:
            node = self._root = self._own(self._root)
        for token in path[start:]:
            child = self._own(node[token])
            node[token] = child
            node = child
        return node

    def _place(
        self, path: JsonPath, value: JSONValue, anchor: tuple[int, JSONValue] | None = None
    ) -> None:
        if not path:
            raise ValueError("the document itself cannot be replaced")
        node: Any = None
        depth = 0
        if anchor is not None:
            # Once an edit went through the anchor, its copy is linked into the working tree:
            # start there. Before that, copy the way down to it first.
            depth = anchor[0]
            node = self._copies.get(id(anchor[1]))
            if node is None:
                node = self._writable(path[:depth])
        else:
            node = self._root = self._own(self._root)
        new = self._new
        last = len(path) - 1
        while True:
            token = path[depth]
            if id(node) in new:
                # Inside a value that is itself pending: merge into it.
                self._merge(node, path[depth:], value)
                return
            if isinstance(node, dict):
                child = node.get(token, MISSING) if isinstance(token, str) else MISSING
            else:
                child = _child(node, token)
            if depth == last or child is MISSING or child is None:
                break
            if not isinstance(child, (dict, list)):
                raise ValueError(
                    f"cannot set {join_path(path)}: {join_path(path[: depth + 1])} is a scalar"
                )
            child = self._own(child)
            node[token] = child
            node = child
            depth += 1
        if depth == last:
            nested = self._adopt(value) if isinstance(value, (dict, list)) else value
        else:
            nested = self._adopt(_nest(path[depth + 1 :], value))
        key = (id(node), token)
        pending = self._placed.get(key) if depth == last else None
        if pending is not None:
            pending.value = nested  # an enforced value replacing a pending one
        else:
            pending = _Pending("add" if child is MISSING else "replace", path[: depth + 1], nested)
            self._pending.append(pending)
            self._placed[key] = pending
        if isinstance(node, list):
            if not isinstance(token, int) or not 0 <= token < len(node):
                raise ValueError(f"cannot set {join_path(path)}: no such array index")
        elif not isinstance(token, str):
            raise ValueError(f"cannot set {join_path(path)}: {token!r} is not a member name")
        node[token] = nested

    def _merge(self, node: Any, path: JsonPath, value: JSONValue) -> None:
        """Set ``path`` below ``node``, a new value, creating mappings on the way."""
        for token in path[:-1]:
            child = _child(node, token)
            if child is MISSING or child is None:
                if not isinstance(node, dict) or not isinstance(token, str):
                    raise ValueError(f"cannot create {token!r} inside a pending value")
                child = node[token] = {}
                self._new[id(child)] = child
            node = child
        last = path[-1]
        if isinstance(node, dict) and isinstance(last, str):
            node[last] = self._adopt(value)
        elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
            node[last] = self._adopt(value)
        else:
            raise ValueError(f"cannot set {last!r} inside a pending value")


def _walk(node: JSONValue, path: JsonPath) -> JSONValue:
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
        return {k: _copy(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _child(node: JSONValue, token: str | int) -> JSONValue:
    if isinstance(node, dict):
        return node.get(token, MISSING) if isinstance(token, str) else MISSING
    if isinstance(node, list) and isinstance(token, int):
        return node[token] if 0 <= token < len(node) else MISSING
    return MISSING


def _nest(path: JsonPath, value: JSONValue) -> JSONValue:
    for token in reversed(path):
        if isinstance(token, int):
            raise ValueError(f"cannot create array index {token} in a new value")
        value = {token: value}
    return value
