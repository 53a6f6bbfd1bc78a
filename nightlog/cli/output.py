"""Rendering rows for people (rich tables) and scripts (JSON, CSV).

Values that came from headers are data: in tables they are shown as plain text
(no rich markup is interpreted, control characters are made visible); JSON and
CSV carry them exactly.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import io
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["OutputFormat", "emit", "emit_outcomes", "plain", "printable"]


class OutputFormat(enum.StrEnum):
    """Output formats of listing commands."""

    table = "table"
    json = "json"
    csv = "csv"


def printable(value: Any) -> str:
    """A terminal-safe rendering of ``value`` (control characters escaped)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    text = value.isoformat() if isinstance(value, dt.date | dt.datetime) else str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def plain(value: Any) -> Any:
    """``value`` as JSON values: dataclasses as dicts, enums as their values, dates as
    ISO text, tuples as lists (what ``--format json`` and ``csv`` print)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def emit_outcomes(summary: Mapping[str, Any], outcomes: Sequence[Any], fmt: OutputFormat, *,
                  key: str = "outcomes") -> None:
    """The result of a command that does work (ingest, build, reduce) for a script.

    JSON: one object, ``summary``'s keys and ``key`` (``outcomes``: one object per
    file, group or frame); CSV: one row per outcome, nested values as JSON text.
    """
    rows = [plain(o) for o in outcomes]
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps({**plain(summary), key: rows}, ensure_ascii=False,
                                    indent=1) + "\n")
        return
    flat = [{k: (json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v)
             for k, v in row.items()} for row in rows]
    emit(flat, list(flat[0]) if flat else ["outcome"], OutputFormat.csv)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: OutputFormat, *,
         title: str | None = None, console: Console | None = None) -> None:
    """Print ``rows`` in ``fmt``; tables show ``columns``, JSON and CSV every key."""
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(list(rows), default=_json_default, ensure_ascii=False,
                                    indent=1) + "\n")
        return
    if fmt is OutputFormat.csv:
        keys = list(rows[0].keys()) if rows else list(columns)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (_json_default(v) if isinstance(v, dt.date) else v)
                             for k, v in row.items()})
        sys.stdout.write(buf.getvalue())
        return
    console = console or Console()
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(printable(row.get(col))) for col in columns))
    console.print(table)
