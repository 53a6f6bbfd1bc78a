"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["NUL_STAND_IN", "HeaderText", "UTCDateTime"]

#: How PostgreSQL stores a NUL character of header text (its text type refuses NUL).
NUL_STAND_IN = "\u2400"  # SYMBOL FOR NULL


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no time zones: values are stored as naive UTC and come back aware.
    Naive values given to the database are refused, so local times cannot slip in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class HeaderText(TypeDecorator[str]):
    """Text read from a FITS header, stored exactly as read on every backend.

    A broken camera can write a NUL byte inside a string value. SQLite keeps it;
    PostgreSQL's text type refuses it, so there a NUL is stored as
    :data:`NUL_STAND_IN` (U+2400) and turned back into NUL when read: the value
    comes back exactly, and equality queries work through the same translation.
    Header text cannot hold U+2400 itself (the reader decodes ASCII, every other
    byte becoming U+FFFD), so the translation is unambiguous; a value that holds
    it anyway is refused rather than altered.
    """

    impl: TypeEngine[Any] | type[TypeEngine[Any]] = Text
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__()
        # The column types of the migrations: TEXT, or VARCHAR(length).
        self.impl = Text() if length is None else String(length)

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        if NUL_STAND_IN in value:
            raise ValueError(f"header text holds U+2400, the stand-in for NUL: {value!r}")
        return value.replace("\0", NUL_STAND_IN)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value  # type: ignore[no-any-return]
        return str(value).replace(NUL_STAND_IN, "\0")
