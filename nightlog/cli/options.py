"""Option parsers shared by several commands (dates, times)."""

from __future__ import annotations

import datetime as dt

import typer

__all__ = ["parse_date", "parse_time"]


def parse_date(value: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` to a date (``None`` passes through)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {value!r}") from None


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO date or date-time, UTC unless it names its offset."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO time (YYYY-MM-DD[THH:MM[:SS]]): {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
