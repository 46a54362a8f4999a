"""Logs as JSON lines, one object a line on standard error, the same for every service and its HTTP
server: when, how grave, which service and logger, the message, and what the service was handling
(the complaint's id and the event's type, from the bus message's headers) and the trace it belongs to.

What is logged is ids, event types, counts and classified reasons: never a patient's data, a
complaint's text or a secret (tests search a run's logs for them).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from shared import tracing


class JsonLines(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        handling = tracing.handling_now.get()
        if handling is not None:
            line["complaint_id"] = handling.complaint_id
            line["event"] = handling.event
        trace_id = tracing.trace_id()
        if trace_id is not None:
            line["trace_id"] = trace_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(service: str, level: int = logging.INFO) -> None:
    """Every logger of the process, uvicorn's too (run it with ``log_config=None``), as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
