"""Logging of long-running commands, configured by the command, never at import.

Two formats: ``text`` (one readable line per record, for a terminal or journald)
and ``json`` (one JSON object per line with the record's structured fields, for
log shippers).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import sys
from typing import Any

from nightlog.cli.output import printable
from nightlog.redaction import redact_text

__all__ = ["LogFormat", "configure_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class LogFormat(enum.StrEnum):
    """How log records are written."""

    text = "text"
    json = "json"


class _RedactingFormatter(logging.Formatter):
    """One text line per record, any database password in it shown as ``***``, and
    control characters (from file names or header values: an escape sequence, a
    newline forging a second record) shown escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return redact_text(json.dumps(out, default=str, ensure_ascii=False))


def configure_logging(fmt: LogFormat, *, level: int = logging.INFO) -> None:
    """Send nightlog's records to standard error in ``fmt``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt is LogFormat.json:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)-7s %(message)s"))
    logger = logging.getLogger("nightlog")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
