"""Reading ``/etc/passwd`` and ``/etc/group`` out of image layers, as a stream.

A layer is a tar archive, usually gzip-compressed. ``LayerDecoder`` turns the compressed bytes
into tar bytes chunk by chunk (gzip and plain tar; zstd is refused, as Python 3.11 has no zstd
in its standard library) and ``TarScan`` reads tar headers from those bytes as they arrive, keeps
the few files asked for, and notes the whiteouts that hide files of lower layers (``.wh.NAME``
deletes ``NAME``; ``.wh..wh..opq`` makes its directory opaque), as the OCI image spec defines
them. Nothing is written to disk and no more than a member's padding is ever buffered.

``passwd_entry`` and ``group_entry`` read the two files the way libc does: one
``name:password:uid:gid:...`` record a line.
"""

from __future__ import annotations

import zlib

__all__ = [
    "LayerDecoder",
    "LayerFormatError",
    "TarScan",
    "group_entry",
    "passwd_entry",
]

_BLOCK = 512
_MAX_COLLECT = 1 << 20
"""The largest member (passwd, group, a PAX header) kept in memory; larger ones are skipped."""
_REGULAR = (b"0", b"\0", b"7")
_LINKS = (b"1", b"2")


class LayerFormatError(Exception):
    """A layer that is not a tar stream hardener can read (zstd, corrupt gzip, bad header)."""


class LayerDecoder:
    """Compressed layer bytes in, tar bytes out; the format is told by the first bytes."""

    def __init__(self, max_output: int) -> None:
        self._kind: str | None = None
        self._head = b""
        self._zlib: zlib._Decompress | None = None
        self._max_output = max_output
        self.output_bytes = 0

    def feed(self, data: bytes) -> bytes:
        if self._kind is None:
            self._head += data
            if len(self._head) < 4:
                return b""
            data, self._head = self._head, b""
            if data[:2] == b"\x1f\x8b":
                self._kind = "gzip"
                self._zlib = zlib.decompressobj(31)
            elif data[:4] == b"\x28\xb5\x2f\xfd":
                raise LayerFormatError(
                    "the layer is zstd-compressed, which this Python cannot read (no zstd in "
                    "its standard library)"
                )
            else:
                self._kind = "tar"
        if self._kind == "tar":
            return self._count(data)
        out = bytearray()
        while data:
            assert self._zlib is not None
            try:
                out += self._zlib.decompress(data, 1 << 20)
                while self._zlib.unconsumed_tail:
                    self._count(b"", len(out))
                    out += self._zlib.decompress(self._zlib.unconsumed_tail, 1 << 20)
            except zlib.error as exc:
                raise LayerFormatError(f"the layer's gzip stream is corrupt: {exc}") from exc
            data = b""
            if self._zlib.eof and self._zlib.unused_data:
                # A multi-member gzip file: the next member starts right after.
                data = self._zlib.unused_data
                self._zlib = zlib.decompressobj(31)
        return self._count(bytes(out))

    def finish(self) -> bytes:
        if self._kind is None and self._head:
            self._kind = "tar"
            data, self._head = self._head, b""
            return self._count(data)
        return b""

    def _count(self, data: bytes, pending: int = 0) -> bytes:
        if self.output_bytes + len(data) + pending > self._max_output:
            raise LayerFormatError(
                f"the layer expands beyond {self._max_output} bytes (a compression bomb?)"
            )
        self.output_bytes += len(data)
        return data


def _normalise(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path.strip("/")


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for sizes beyond 8 GiB
        value = int.from_bytes(field[1:], "big")
        return value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as exc:
        raise LayerFormatError(f"a tar header has a bad number field {text!r}") from exc


class TarScan:
    """Tar bytes in; ``found`` holds the wanted files this layer carries, ``hidden`` the wanted
    paths its whiteouts hide in lower layers, ``links`` the wanted paths that are links here."""

    def __init__(self, wanted: frozenset[str]) -> None:
        self.wanted = wanted
        self.found: dict[str, bytes] = {}
        self.hidden: set[str] = set()
        self.links: dict[str, str] = {}
        self.ended = False
        self._buf = bytearray()
        self._remaining = 0  # bytes of the current member still to come, padding included
        self._size = 0
        self._kind = ""  # what the current member's data is for: "", "file", "pax", "longname"
        self._target = ""
        self._data = bytearray()
        self._next_name: str | None = None
        self._zero_blocks = 0

    def feed(self, data: bytes) -> None:
        if self.ended:
            return
        self._buf += data
        while True:
            if self._remaining:
                take = min(self._remaining, len(self._buf))
                if not take:
                    return
                if self._kind:
                    room = self._size - len(self._data)
                    self._data += self._buf[: min(take, max(room, 0))]
                del self._buf[:take]
                self._remaining -= take
                if not self._remaining:
                    self._member_done()
                continue
            if len(self._buf) < _BLOCK:
                return
            header = bytes(self._buf[:_BLOCK])
            del self._buf[:_BLOCK]
            if header == b"\0" * _BLOCK:
                self._zero_blocks += 1
                if self._zero_blocks == 2:
                    self.ended = True
                    return
                continue
            self._zero_blocks = 0
            self._header(header)

    def _header(self, header: bytes) -> None:
        checksum = _number(header[148:156])
        if checksum != sum(header[:148]) + 8 * 32 + sum(header[156:]):
            raise LayerFormatError("a tar header has a bad checksum (not a tar layer?)")
        size = _number(header[124:136])
        kind = header[156:157]
        name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
            if prefix:
                name = f"{prefix}/{name}"
        if self._next_name is not None:
            name, self._next_name = self._next_name, None
        path = _normalise(name)
        self._size = size
        self._remaining = -(-size // _BLOCK) * _BLOCK
        self._kind = ""
        self._data = bytearray()
        if kind in (b"x", b"L"):
            self._kind = "pax" if kind == b"x" else "longname"
        elif kind in _REGULAR and path in self.wanted and path not in self.found:
            self._kind = "file" if size <= _MAX_COLLECT else ""
            self._target = path
        elif kind in _LINKS and path in self.wanted:
            target = header[157:257].split(b"\0", 1)[0].decode("utf-8", "replace")
            self.links[path] = target
        self._whiteout(path)
        if self._kind and size > _MAX_COLLECT:
            self._kind = ""
        if not self._remaining:
            self._member_done()

    def _whiteout(self, path: str) -> None:
        directory, _, base = path.rpartition("/")
        if base == ".wh..wh..opq":
            prefix = f"{directory}/" if directory else ""
            self.hidden.update(w for w in self.wanted if w.startswith(prefix))
        elif base.startswith(".wh."):
            gone = f"{directory}/{base[4:]}" if directory else base[4:]
            self.hidden.update(w for w in self.wanted if w == gone or w.startswith(f"{gone}/"))

    def _member_done(self) -> None:
        data = bytes(self._data)
        if self._kind == "file":
            self.found[self._target] = data
        elif self._kind == "longname":
            self._next_name = data.split(b"\0", 1)[0].decode("utf-8", "replace")
        elif self._kind == "pax":
            for record in _pax_records(data):
                key, _, value = record.partition("=")
                if key == "path":
                    self._next_name = value
        self._kind = ""
        self._data = bytearray()


def _pax_records(data: bytes) -> list[str]:
    """``LEN key=value\\n`` records of a PAX extended header."""
    records: list[str] = []
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            break
        if length <= 0:
            break
        records.append(data[space + 1 : pos + length].rstrip(b"\n").decode("utf-8", "replace"))
        pos += length
    return records


def passwd_entry(text: bytes, name: str) -> tuple[int, int] | None:
    """The uid and primary gid of ``name`` in an ``/etc/passwd``, or ``None``."""
    for line in text.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == name:
            try:
                return int(fields[2]), int(fields[3])
            except ValueError:
                return None
    return None


def group_entry(text: bytes, name: str) -> int | None:
    """The gid of group ``name`` in an ``/etc/group``, or ``None``."""
    for line in text.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name:
            try:
                return int(fields[2])
            except ValueError:
                return None
    return None
