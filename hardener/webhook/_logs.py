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
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from typing import IO, Any

import orjson

__all__ = [
    "LOGGER_NAME",
    "JsonFormatter",
    "JsonLineHandler",
    "configure_logging",
    "log_event",
    "log_review",
]

LOGGER_NAME = "hardener.webhook"

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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


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
        **fields,
    }
    handler.write_line(orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE).decode())
