"""Structured logs: one JSON object a line.

The webhook logs through the standard ``logging`` module under the ``hardener.webhook`` logger
and puts its fields in ``extra={"fields": {...}}``; ``JsonFormatter`` renders the record as one
line with ``time``, ``level``, ``logger``, ``event`` (the message) and those fields, so that log
shippers need no parsing rules.

The review line, one per admission request, is the busy one, and the ``logging`` machinery
(looking up the caller, a ``LogRecord``, the formatter, a write and a flush per line) costs
more than the rest of the bookkeeping of a request. ``log_review`` therefore renders that line
itself, the same fields in the same JSON, and hands it to the ``JsonLineHandler`` that
``configure_logging`` installed, when that handler alone receives the webhook's records. The
handler writes such lines in batches: at most ``flush_interval`` (0.1 s) after the first line
of a batch, before any other record (so the order of the lines holds), and whenever it is
flushed or closed (``logging.shutdown`` at exit does both). Set up any other way (an
application's own handlers, a test capturing records), the review line is an ordinary record.

Log lines carry values that came from outside (a uid, an object's name, an error message), so
every text field is clipped to ``MAX_FIELD_CHARS``: a request carrying a 3 MB string makes a
line of a few hundred bytes, not a 3 MB one. aiohttp reports a request it cannot parse (a bad
request line or header, a corrupt compressed body) with a traceback whose message quotes the
raw bytes; ``configure_logging`` turns those records into one WARNING line that names the
error class and the peer, without the bytes (``FramingErrorFilter``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from typing import IO, Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

__all__ = [
    "LOGGER_NAME",
    "MAX_FIELD_CHARS",
    "FramingErrorFilter",
    "JsonFormatter",
    "JsonLineHandler",
    "configure_logging",
    "log_event",
    "log_review",
]

LOGGER_NAME = "hardener.webhook"

MAX_FIELD_CHARS = 512
"""The longest text a log field keeps; longer ones are cut and end with ``...``."""

_MAX_EXCEPTION_CHARS = 16 * 1024

_webhook_log = logging.getLogger(LOGGER_NAME)
_hardener_log = logging.getLogger("hardener")

# The second a timestamp was last rendered for, and its text up to the seconds.
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def _timestamp(created: float) -> str:
    """``created`` (``time.time()``) as ``2024-05-01T10:00:00.123Z``, as records are stamped."""
    global _last_second
    second = int(created)
    cached = _last_second
    if cached[0] != second:
        cached = _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((created - second) * 1000):03d}Z"


def _clipped(value: Any, limit: int = MAX_FIELD_CHARS) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 3] + "..."
    return value


def _clip_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with every text cut to ``MAX_FIELD_CHARS`` (texts in lists too)."""
    clipped = {}
    for key, value in fields.items():
        if isinstance(value, list | tuple):
            value = [_clipped(item) for item in value[:64]]
        elif not isinstance(value, str | int | float | bool) and value is not None:
            value = str(value)  # paths and the like: what ``default=str`` would write
        clipped[_clipped(key, 64)] = _clipped(value)
    return clipped


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _clipped(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(_clip_fields(fields))
        if record.exc_info:
            line["exception"] = _clipped(
                self.formatException(record.exc_info), _MAX_EXCEPTION_CHARS
            )
        return orjson.dumps(line, default=str).decode()


class FramingErrorFilter(logging.Filter):
    """aiohttp's record of a request it could not parse, as one WARNING line without payload.

    aiohttp logs a malformed request line or header, or a corrupt compressed body, at ERROR
    with the exception, and the exception's message quotes the bytes received (up to the
    header limit of 8 KiB). That is the client's fault, not the server's, and the bytes are
    the client's: the record keeps the error class and the peer and drops the rest.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError | RequestPayloadError):
            return True
        cause = exc.__cause__ if isinstance(exc, RequestPayloadError) else None
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg = "bad HTTP request"
        record.args = ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        record.fields = {
            "error": type(cause if cause is not None else exc).__name__,
            "peer": peer if isinstance(peer, str) else None,
        }
        return True


class JsonLineHandler(logging.StreamHandler[IO[str]]):
    """A ``StreamHandler`` with ``JsonFormatter`` that also takes lines rendered elsewhere.

    ``write_line`` queues a line for the stream; queued lines go out in one write at most
    ``flush_interval`` seconds later (on the running event loop; at once without one),
    before any record the handler emits, and on ``flush()`` and ``close()``.
    """

    def __init__(self, stream: IO[str] | None = None, *, flush_interval: float = 0.1) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(JsonFormatter())
        self.flush_interval = flush_interval
        # deque: appended on the event loop, drained wherever a flush happens, without a lock.
        self._lines: deque[str] = deque()
        self._flush_due_on: asyncio.AbstractEventLoop | None = None

    def write_line(self, line: str) -> None:
        """Queue ``line`` (one JSON object and its newline) for the stream."""
        self._lines.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._flush_due_on is not loop:
            self._flush_due_on = loop
            loop.call_later(self.flush_interval, self._flush_due)
        elif len(self._lines) >= 1024:
            self.flush()

    def _flush_due(self) -> None:
        self._flush_due_on = None
        self.flush()

    def flush(self) -> None:
        lines = self._lines
        if lines:
            batch = []
            self.acquire()
            try:
                try:
                    while True:
                        batch.append(lines.popleft())
                except IndexError:
                    pass
                if batch:
                    self.stream.write("".join(batch))
            finally:
                self.release()
        super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self._lines:
            self.flush()
        super().emit(record)

    def close(self) -> None:
        self.flush()
        super().close()


def configure_logging(stream: IO[str] | None = None, level: int = logging.INFO) -> JsonLineHandler:
    """Send the ``hardener`` loggers to ``stream`` (stderr) as JSON lines; returns the handler.

    aiohttp's own access log is not used: the review log line carries more and costs one line.
    """
    handler = JsonLineHandler(stream)
    for previous in _hardener_log.handlers:
        previous.flush()
    _hardener_log.handlers[:] = [handler]
    _hardener_log.setLevel(level)
    _hardener_log.propagate = False
    for name in ("aiohttp.server", "aiohttp.web", "asyncio"):
        other = logging.getLogger(name)
        other.handlers[:] = [handler]
        other.propagate = False
    server = logging.getLogger("aiohttp.server")
    for old in [f for f in server.filters if isinstance(f, FramingErrorFilter)]:
        server.removeFilter(old)
    server.addFilter(FramingErrorFilter())
    return handler


def log_event(logger: logging.Logger, severity: int, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(severity):
        logger.log(severity, event, extra={"fields": fields})


def _direct_handler() -> JsonLineHandler | None:
    """The handler review lines may go to directly: ``configure_logging``'s, when the
    webhook's INFO records would reach it and nothing else (no other handler, no filter)."""
    webhook, parent = _webhook_log, _hardener_log
    if webhook.handlers or webhook.filters or not webhook.propagate:
        return None
    if parent.propagate or parent.filters or len(parent.handlers) != 1:
        return None
    handler = parent.handlers[0]
    if handler.__class__ is not JsonLineHandler or handler.filters:
        return None
    if handler.level > logging.INFO:
        return None
    return handler


def log_review(fields: dict[str, Any]) -> None:
    """Log the line of one review (event ``review``, level info) with ``fields``."""
    if not _webhook_log.isEnabledFor(logging.INFO):
        return
    handler = _direct_handler()
    if handler is None:
        _webhook_log.info("review", extra={"fields": fields})
        return
    line = {
        "time": _timestamp(time.time()),
        "level": "info",
        "logger": LOGGER_NAME,
        "event": "review",
        **_clip_fields(fields),
    }
    handler.write_line(orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE).decode())
