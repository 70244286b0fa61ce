"""Structured logs: one JSON object a line.

The webhook logs through the standard ``logging`` module under the ``hardener.webhook`` logger
and puts its fields in ``extra={"fields": {...}}``; ``JsonFormatter`` renders the record as one
line with ``time``, ``level``, ``logger``, ``event`` (the message) and those fields, so that log
shippers need no parsing rules.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

__all__ = ["LOGGER_NAME", "JsonFormatter", "configure_logging", "log_event"]

LOGGER_NAME = "hardener.webhook"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send the ``hardener`` loggers to ``stream`` (stderr) as JSON lines; returns the handler.

    aiohttp's own access log is not used: the review log line carries more and costs one line.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("hardener")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    for name in ("aiohttp.server", "aiohttp.web", "asyncio"):
        other = logging.getLogger(name)
        other.handlers[:] = [handler]
        other.propagate = False
    return handler


def log_event(logger: logging.Logger, severity: int, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(severity):
        logger.log(severity, event, extra={"fields": fields})
