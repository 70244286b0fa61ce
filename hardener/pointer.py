"""RFC 6901 JSON pointers: the only place that escapes, joins and resolves them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Final, cast

from hardener.model import JSONValue, PointerError

__all__ = ["escape", "join", "join_path", "resolve", "split", "unescape"]

Token = str | int


def escape(token: object) -> str:
    """Escape one reference token: ``~`` becomes ``~0`` and ``/`` becomes ``~1`` (in that order).

    ``token`` is typed ``object``, not ``Token``: compiled, a boolean in an ``int`` slot is
    stored as the number, and a YAML 1.1 key such as ``yes`` must stay ``True``."""
    text = token if isinstance(token, str) else str(token)
    if "~" in text or "/" in text:
        return text.replace("~", "~0").replace("/", "~1")
    return text


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def join(tokens: Iterable[object]) -> str:
    """Build a pointer from unescaped tokens: ``join(["a", "b/c", 0]) == "/a/b~1c/0"``.

    Any token is written as ``str`` writes it (a YAML 1.1 key may be a boolean or a number)."""
    if isinstance(tokens, tuple) and _UNCACHEABLE.isdisjoint(map(type, tokens)):
        return join_path(cast(tuple[Token, ...], tokens))
    return _joined(tokens)


def _joined(tokens: Iterable[object]) -> str:
    parts = [escape(t) for t in tokens]
    return "/" + "/".join(parts) if parts else ""


# join_path's cache finds tuples by equality, and True == 1, 1.0 == 1: a tuple holding a
# boolean or a float (a YAML 1.1 key such as ``yes``) would be answered with the pointer of
# another. join() joins such tuples afresh.
_UNCACHEABLE: Final = frozenset({bool, float})


@functools.lru_cache(maxsize=8192)
def join_path(tokens: tuple[Token, ...]) -> str:
    """``join`` for a path whose tokens are only strings and ints (no bools, no floats), such
    as the paths the engine builds: remembered, since the same few hundred paths (the same
    fields of the same containers of every pod) are joined over and over."""
    return _joined(tokens)


def split(pointer: str) -> list[str]:
    """The unescaped tokens of a pointer (array indices stay strings)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PointerError(f"JSON pointer {pointer!r} must be empty or start with '/'")
    return [unescape(t) for t in pointer[1:].split("/")]


def resolve(document: JSONValue, pointer: str | Sequence[Token]) -> JSONValue:
    """The value a pointer names; raises PointerError when it does not resolve."""
    tokens = split(pointer) if isinstance(pointer, str) else list(pointer)
    node = document
    for token in tokens:
        if isinstance(node, dict):
            key = str(token)
            if key not in node:
                raise PointerError(f"{join(tokens)}: no member {key!r}")
            node = node[key]
        elif isinstance(node, list):
            try:
                index = int(token)
            except ValueError as exc:
                raise PointerError(f"{join(tokens)}: {token!r} is not an array index") from exc
            if not 0 <= index < len(node):
                raise PointerError(f"{join(tokens)}: index {index} out of range")
            node = node[index]
        else:
            raise PointerError(f"{join(tokens)}: cannot descend into a {type(node).__name__}")
    return node
