"""Logging: plain text or one JSON object a line, with the request and task at hand.

``request_id`` is set by the API's request-id middleware, ``task_id`` by the worker for each task
it runs; both are context variables, so every log line written on their behalf carries them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")

request_id_var: ContextVar[str | None] = ContextVar("reelgate_request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("reelgate_task_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ids where known, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("request_id", request_id_var), ("task_id", task_id_var)):
            value = getattr(record, name, None) or var.get()
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing ``log_format`` (text or json) to ``stream`` (default stderr)."""
    if log_format not in LOG_FORMATS:
        choices = ", ".join(LOG_FORMATS)
        raise ValueError(f"log format {log_format!r} (REELGATE_LOG_FORMAT) is not one of {choices}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    return handler


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """The root logger writes ``log_format``; uvicorn's loggers go through it too."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "reelgate", False):  # ours from an earlier call; others stay
            root.removeHandler(old)
    handler = log_handler(log_format)
    handler.reelgate = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
