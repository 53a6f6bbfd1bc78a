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
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["HEADING_UNITS", "OutputFormat", "emit", "emit_outcomes", "plain", "printable",
           "table_of"]


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


def _json_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """``json.dumps(list(rows), indent=1)`` one row at a time."""
    first = True
    for row in rows:
        text = json.dumps(row, default=_json_default, ensure_ascii=False, indent=1)
        yield ("[\n " if first else ",\n ") + text.replace("\n", "\n ")
        first = False
    yield "[]\n" if first else "\n]\n"


def emit(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fmt: OutputFormat, *,
         title: str | None = None, console: Console | None = None,
         root: Path | None = None) -> None:
    """Print ``rows`` in ``fmt``; tables show ``columns`` (:func:`table_of`, paths
    relative to ``root``), JSON and CSV every key, exactly.

    JSON and CSV are written as the rows come (an iterator of a long listing is
    never held whole); a table needs them all to size its columns.
    """
    if fmt is OutputFormat.json:
        for text in _json_lines(rows):
            sys.stdout.write(text)
        return
    if fmt is OutputFormat.csv:
        writer: csv.DictWriter[str] | None = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(sys.stdout, fieldnames=list(row.keys()),
                                        lineterminator="\n")
                writer.writeheader()
            writer.writerow({k: (_json_default(v) if isinstance(v, dt.date) else v)
                             for k, v in row.items()})
        if writer is None:
            csv.writer(sys.stdout, lineterminator="\n").writerow(list(columns))
        return
    console = console or Console()
    console.print(table_of(list(rows), columns, title=title, root=root, width=console.width))


#: Units shown in the heading of a table column of that name.
HEADING_UNITS = {"exptime": "s", "set_temp": "°C", "ccd_temp": "°C", "seconds": "s",
                 "size": "bytes", "age_seconds": "s", "fwhm": "px", "fwhm_as": "″",
                 "sky_e": "e-"}

_NUMBER = re.compile(r"[-+]?[0-9][0-9.:e+-]*( [a-z/%-]+)?|")
_ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(\+00:00|Z)?$")


def _cell(column: str, value: Any, root: Path | None) -> str:
    """What a table shows of ``value``: a path under ``root`` relative to it, an
    ISO time in UTC as ``YYYY-MM-DD HH:MM:SS``, anything else :func:`printable`."""
    text = printable(value)
    if column == "path" and root is not None and text.startswith(str(root) + os.sep):
        return text[len(str(root)) + 1:]
    match = _ISO_TIME.match(text)
    if match is not None and match.group(4):
        return f"{match.group(1)} {match.group(2)}"
    return text


def _widths(columns: Sequence[str], cells: list[list[str]], fixed: list[bool],
            room: int) -> list[int]:
    """Column widths within ``room``.

    Fixed columns (times, numbers) keep their values whole. The other columns share
    what the fixed ones leave, the narrow ones whole first, the wide ones the rest
    equally (each at least 6). Only when that is not enough are the headings of fixed
    columns cut, down to their values' width.
    """
    natural = [max([len(col), *(len(r[i]) for r in cells)]) for i, col in enumerate(columns)]
    if sum(natural) <= room:
        return natural
    out = list(natural)
    spare = room - sum(w for w, f in zip(natural, fixed, strict=True) if f)
    open_ = sorted((i for i, f in enumerate(fixed) if not f), key=lambda i: natural[i])
    while open_:
        share = max(spare // len(open_), 6)
        if natural[open_[0]] <= share:
            spare -= natural[open_[0]]
            open_.pop(0)
            continue
        for i in open_:
            out[i] = share
        break
    content = [max([4, *(len(r[i]) for r in cells)]) for i in range(len(columns))]
    for i in sorted((i for i, f in enumerate(fixed) if f), key=lambda i: content[i] - out[i]):
        excess = sum(out) - room
        if excess <= 0:
            break
        out[i] = max(content[i], out[i] - excess)
    return out


def table_of(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *,
             title: str | None = None, root: Path | None = None,
             width: int = 80) -> Table:
    """``rows`` as a table that reads in ``width`` columns (the terminal's).

    Cells never wrap: dates, times and numbers keep their width, and what does not
    fit is cut with an ellipsis: names at their end, paths at their start, so the
    file's name stays (the full values are in JSON and CSV). Paths under ``root``
    are shown relative to it, times in UTC without the offset, and headings carry
    their unit (``exptime [s]``).
    """
    headings = [f"{c} [{HEADING_UNITS[c]}]" if c in HEADING_UNITS else c for c in columns]
    cells = [[_cell(col, row.get(col), root) for col in columns] for row in rows]
    fixed = [all(_ISO_TIME.match(r[i]) or _NUMBER.fullmatch(r[i]) for r in cells)
             for i in range(len(columns))]
    widths = _widths(headings, cells, fixed, width - 2 * max(len(columns) - 1, 0))
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  collapse_padding=True)
    for heading, size, is_fixed in zip(headings, widths, fixed, strict=True):
        table.add_column(Text(heading), no_wrap=True, overflow="ellipsis", width=size,
                         justify="right" if is_fixed and size < 19 else "left")
    for i, col in enumerate(columns):
        if col == "path":  # the file's name matters most: cut the folders first
            for row in cells:
                if len(row[i]) > widths[i]:
                    row[i] = "…" + row[i][len(row[i]) - widths[i] + 1:]
    for row in cells:
        table.add_row(*(Text(v) for v in row))
    return table
