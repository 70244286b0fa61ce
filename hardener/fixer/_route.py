"""Routing RFC 6902 ops through a document's original node tree into the edits of that document.

Array indices and keys refer to the original document, so the ops are routed through its node
tree, never through an edited text. Each op ends as one of three things in ``DocumentEdits``:

- ``sets``: an existing member or item gets a new value;
- ``adds``: new members of an existing mapping;
- ``appends``: new items after the last one of an existing sequence.

A later op that goes into a value an earlier op set is applied to that new value, so the
edits hold one entry per place in the text. Only ``add`` and ``replace`` are routed. Refused
with ``EditError``: going through or into an alias or an anchored node, a key that comes from a
``<<`` merge, inserting in the middle of a sequence and replacing a whole document.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from hardener.fixer._errors import EditError
from hardener.fixer._load import YNode
from hardener.model import Operation
from hardener.pointer import join, split

__all__ = ["DocumentEdits", "Set", "route"]


@dataclass
class Set:
    """An existing member (``key`` set) or item (``key`` None) of ``parent`` gets ``new``."""

    parent: YNode
    token: str
    key: YNode | None
    child: YNode
    old: Any
    new: Any


@dataclass
class DocumentEdits:
    """The edits recorded for one document; ``json`` is true for a JSON file."""

    json: bool
    adds: dict[int, tuple[YNode, dict[str, Any]]] = field(default_factory=dict)
    appends: dict[int, tuple[YNode, list[Any]]] = field(default_factory=dict)
    sets: dict[tuple[int, str], Set] = field(default_factory=dict)

    def adds_to(self, node: YNode) -> dict[str, Any]:
        """The new members recorded for a mapping (made empty on first use)."""
        return self.adds.setdefault(id(node), (node, {}))[1]

    def appends_to(self, node: YNode) -> list[Any]:
        """The new items recorded for a sequence (made empty on first use)."""
        return self.appends.setdefault(id(node), (node, []))[1]


def _patch_value(value: Any, tokens: list[str], op: Operation, new: Any, path: str) -> Any:
    """Apply the rest of an op to a value that an earlier op of the same document created."""
    if not tokens:
        return new
    try:
        return jsonpatch.apply_patch(value, [{"op": op["op"], "path": join(tokens), "value": new}])
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise EditError(f"{path}: {exc}") from None


def _guard(node: YNode, path: str) -> None:
    if node.alias:
        raise EditError(
            f"{path}: goes through an alias (line {node.line + 1}); "
            "edit this file by hand or expand the alias"
        )
    if node.aliased:
        raise EditError(
            f"{path}: changes the anchored node &{node.anchor} (line {node.line + 1}), "
            "which would change every alias of it; edit this file by hand"
        )


def route(edits: DocumentEdits, root: YNode, value: Any, op: Operation) -> None:
    """Record ``op`` in ``edits``: ``root`` is the document's node tree, ``value`` its value."""
    path = op["path"]
    name = op["op"]
    if name not in ("add", "replace"):
        raise EditError(f"{path}: unsupported op {name!r}")
    tokens = split(path)
    if not tokens:
        raise EditError("replacing a whole document is not a surgical edit")
    new = copy.deepcopy(op["value"])
    node, old = root, value
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        rest = tokens[i + 1 :]
        _guard(node, path)
        # An earlier op set this member or item (so routed through this node already): the
        # rest of this op goes into the value recorded there.
        pending = edits.sets.get((id(node), token))
        if pending is not None:
            pending.new = _patch_value(pending.new, rest, op, new, path)
            return
        if node.kind == "mapping":
            member = node.members.get(token)
            if member is not None:
                if last:
                    edits.sets[(id(node), token)] = Set(
                        node, token, member[0], member[1], old[token], new
                    )
                    return
                node, old = member[1], old[token]
                continue
            if node.has_merge and isinstance(old, dict) and token in old:
                raise EditError(
                    f"{path}: the key {token!r} comes from a '<<' merge (line "
                    f"{node.line + 1}); edit this file by hand"
                )
            adds = edits.adds_to(node)
            if token in adds:
                adds[token] = _patch_value(adds[token], rest, op, new, path)
                return
            if not last or name != "add":
                raise EditError(f"{path}: no member {token!r} to change")
            adds[token] = new
            return
        if node.kind == "sequence":
            count = len(node.items)
            appended = edits.appends_to(node)
            if token == "-":
                if not last:
                    raise EditError(f"{path}: '-' must be the last token")
                appended.append(new)
                return
            if not token.isdigit():
                raise EditError(f"{path}: {token!r} is not an array index")
            index = int(token)
            if index < count:
                if last:
                    if name == "add":
                        raise EditError(
                            f"{path}: inserting into the middle of a sequence is not supported"
                        )
                    edits.sets[(id(node), token)] = Set(
                        node, token, None, node.items[index], old[index], new
                    )
                    return
                node, old = node.items[index], old[index]
                continue
            offset = index - count
            if offset < len(appended):
                if last and name == "add":
                    appended.insert(offset, new)
                else:
                    appended[offset] = _patch_value(appended[offset], rest, op, new, path)
                return
            if offset == len(appended) and last and name == "add":
                appended.append(new)
                return
            raise EditError(f"{path}: index {index} is out of range")
        raise EditError(f"{path}: cannot descend into a scalar (line {node.line + 1})")
