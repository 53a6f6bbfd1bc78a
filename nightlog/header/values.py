"""Reading single header values: text, numbers, angles and times as cameras write them.

Raw headers are written by many programs, each with its habits: strings padded with
spaces (``' 23:53:30.00'``), numbers stored as strings, angles as ``'-96 27 12'``,
dates as ``'23/08/18'``. The helpers here turn one raw value into one clean Python
value or raise a :class:`~nightlog.errors.HeaderError` subclass whose message names
the keyword and shows the value (``repr``, cut to about 60 characters).

They are pure and know nothing about instrument profiles; :mod:`nightlog.header.normalize`
decides which keyword to read and what to do when it is absent.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from nightlog.errors import InvalidValueError

__all__ = [
    "EARLIEST_YEAR",
    "LATEST_YEAR",
    "HeaderView",
    "check_plausible",
    "describe",
    "jd_to_datetime",
    "mjd_to_datetime",
    "parse_date",
    "parse_float",
    "parse_int",
    "parse_iso_datetime",
    "parse_sexagesimal",
    "parse_time_of_day",
    "text_value",
]

#: Observation dates outside these years are taken as corrupt (clocks reset to
#: 1900 or 1970 give years before; placeholder dates such as 9999-12-31 after).
EARLIEST_YEAR = 1950
LATEST_YEAR = 2200

_MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)
_JD_MJD_OFFSET = 2400000.5
_MAX_REPR = 60
_OVERFLOW = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)[EeDd][+-]?\d+\s*$")  # digits, not 'inf'


def describe(value: Any) -> str:
    """``repr(value)`` cut to about 60 characters, for error messages."""
    text = repr(value)
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    return text


class HeaderView:
    """Case-insensitive, read-only lookup over an astropy header or a plain mapping.

    Blank values (astropy's ``Undefined`` for a card without value, and strings of
    spaces) read as absent, so every caller treats "missing" and "blank" alike.
    """

    __slots__ = ("_data",)

    def __init__(self, header: Mapping[str, Any]) -> None:
        data: dict[str, Any] = {}
        for key in header:
            upper = str(key).strip().upper()
            if not upper or upper in ("COMMENT", "HISTORY") or upper in data:
                continue  # the first of repeated keywords wins, as astropy's lookup does
            data[upper] = header[key]
        self._data = data

    def get(self, keyword: str) -> Any | None:
        """The value of ``keyword``, or ``None`` when absent or blank."""
        value = self._data.get(keyword.upper())
        # astropy marks a card without a value with an ``Undefined`` instance
        # (older versions) or ``None``; compare by name to avoid importing astropy here.
        if value is None or type(value).__name__ == "Undefined":
            return None
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def first(self, keywords: tuple[str, ...]) -> tuple[str, Any] | None:
        """The first of ``keywords`` with a value, as ``(keyword, value)``."""
        for keyword in keywords:
            value = self.get(keyword)
            if value is not None:
                return keyword, value
        return None

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and self.get(keyword) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)


def text_value(value: Any) -> str | None:
    """A value as stripped text; ``None`` for blank text.

    Numbers are written back as text (``CHIPID = 0`` reads ``'0'``) because
    match rules and names compare text.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "T" if value else "F"
    text = " ".join(str(value).split())
    return text or None


def parse_float(keyword: str, value: Any) -> float:
    """A finite float from a number or numeric text.

    Raises
    ------
    InvalidValueError
        Not a number (booleans included), or NaN / infinite.
    """
    if isinstance(value, bool):
        raise InvalidValueError(f"{keyword}={describe(value)}: expected a number, not a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InvalidValueError(f"{keyword}={describe(value)}: not a number") from None
    else:
        raise InvalidValueError(f"{keyword}={describe(value)}: not a number")
    if math.isinf(number) and isinstance(value, str) and _OVERFLOW.match(value):
        raise InvalidValueError(f"{keyword}={value.strip()}: too large for a number "
                                "(beyond ±1.8E308)")
    if not math.isfinite(number):
        raise InvalidValueError(f"{keyword}={describe(value)}: not a finite number")
    return number


def parse_int(keyword: str, value: Any) -> int:
    """A whole number from an int, an integral float or text such as ``'2'``."""
    number = parse_float(keyword, value)
    if not number.is_integer():
        raise InvalidValueError(f"{keyword}={describe(value)}: not a whole number")
    return int(number)


_SEXAGESIMAL_RE = re.compile(
    r"^\s*([+-])?\s*(\d+(?:\.\d*)?)(?:[\s:]+(\d+(?:\.\d*)?))?(?:[\s:]+(\d+(?:\.\d*)?))?\s*$"
)


def parse_sexagesimal(keyword: str, value: Any) -> float:
    """Degrees (or hours) from a number or ``'D M S'`` / ``'D:M:S'`` text.

    The sign applies to the whole angle (``'-96 27 12'`` is -96.4533).

    Raises
    ------
    InvalidValueError
        The text is not of that form, or minutes/seconds are 60 or more.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_float(keyword, value)
    if not isinstance(value, str):
        raise InvalidValueError(f"{keyword}={describe(value)}: not an angle")
    match = _SEXAGESIMAL_RE.match(value)
    if match is None:
        raise InvalidValueError(f"{keyword}={describe(value)}: not an angle such as '-96 27 12'")
    sign, deg, minutes, seconds = match.groups()
    m = float(minutes) if minutes else 0.0
    s = float(seconds) if seconds else 0.0
    if m >= 60 or s >= 60:
        raise InvalidValueError(f"{keyword}={describe(value)}: minutes and seconds must be < 60")
    degrees = float(deg) + m / 60.0 + s / 3600.0
    return -degrees if sign == "-" else degrees


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]00:?00)?$"
)
_DMY_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?$")


def _microseconds(fraction: str | None) -> int:
    if not fraction:
        return 0
    return round(float("0." + fraction) * 1_000_000)


def _build(keyword: str, value: Any, ymd: tuple[int, int, int],
           hms: tuple[int, int, int] = (0, 0, 0), micro: int = 0) -> dt.datetime:
    try:
        stamp = dt.datetime(*ymd, *hms, tzinfo=dt.UTC)
    except ValueError as exc:
        raise InvalidValueError(f"{keyword}={describe(value)}: {exc}") from None
    try:
        # Rounding of the fraction may reach a whole second; add rather than construct.
        return stamp + dt.timedelta(microseconds=micro)
    except OverflowError:
        raise InvalidValueError(f"{keyword}={describe(value)}: date out of range") from None


def parse_iso_datetime(keyword: str, value: Any) -> tuple[dt.datetime, bool]:
    """Parse an ISO-8601 date or date-time, taken as UTC.

    Returns
    -------
    (datetime, has_time)
        The instant (midnight when only a date is given) and whether the text held
        a time of day.

    Raises
    ------
    InvalidValueError
        Not ISO-8601, an impossible date, or an offset other than UTC.
    """
    if not isinstance(value, str):
        raise InvalidValueError(f"{keyword}={describe(value)}: not a date string")
    match = _ISO_RE.match(value.strip())
    if match is None:
        raise InvalidValueError(
            f"{keyword}={describe(value)}: not an ISO date 'YYYY-MM-DD[Thh:mm:ss]'"
        )
    y, mo, d, h, mi, s, frac, _zone = match.groups()
    has_time = h is not None
    if int(h or 0) > 23:
        raise InvalidValueError(f"{keyword}={describe(value)}: hour out of range")
    stamp = _build(keyword, value, (int(y), int(mo), int(d)),
                   (int(h or 0), int(mi or 0), int(s or 0)), micro=_microseconds(frac))
    return stamp, has_time


def parse_date(keyword: str, value: Any, formats: tuple[str, ...]) -> tuple[dt.datetime, bool]:
    """Parse a date in one of ``formats`` (``'iso'``, ``'dd/mm/yy'``), first match wins.

    ``'dd/mm/yy'`` is the old FITS form; two-digit years below 50 are 20YY and the
    others 19YY (MaxIm DL still writes ``DATE = '23/08/18'`` for 2018).
    """
    text = value.strip() if isinstance(value, str) else value
    for form in formats:
        if form == "iso" and isinstance(text, str) and _ISO_RE.match(text):
            return parse_iso_datetime(keyword, text)
        if form == "dd/mm/yy" and isinstance(text, str):
            match = _DMY_RE.match(text)
            if match:
                day, month, year = (int(g) for g in match.groups())
                if len(match.group(3)) == 2:
                    year += 2000 if year < 50 else 1900
                return _build(keyword, value, (year, month, day)), False
    names = " or ".join(repr(f) for f in formats)
    raise InvalidValueError(f"{keyword}={describe(value)}: not a date in the form {names}")


def parse_time_of_day(keyword: str, value: Any) -> dt.timedelta:
    """Time since midnight from ``'hh:mm[:ss[.fff]]'`` (spaces around ignored)."""
    if not isinstance(value, str):
        raise InvalidValueError(f"{keyword}={describe(value)}: not a time 'hh:mm:ss'")
    match = _TIME_RE.match(value.strip())
    if match is None:
        raise InvalidValueError(f"{keyword}={describe(value)}: not a time 'hh:mm:ss'")
    h, m, s, frac = match.groups()
    hours, minutes, seconds = int(h), int(m), int(s or 0)
    if hours > 23 or minutes > 59 or seconds > 60:  # 60: a leap second
        raise InvalidValueError(f"{keyword}={describe(value)}: time of day out of range")
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds,
                        microseconds=_microseconds(frac))


def mjd_to_datetime(keyword: str, value: Any) -> dt.datetime:
    """UTC instant of a Modified Julian Date (days since 1858-11-17 00:00 UTC)."""
    days = parse_float(keyword, value)
    # Bound before building a timedelta, which overflows near year 10000.
    if not -40_000 <= days <= 200_000:
        raise InvalidValueError(f"{keyword}={describe(value)}: MJD out of range")
    # Round to the microsecond: a float MJD carries ~1e-6 s resolution at best.
    return _MJD_EPOCH + dt.timedelta(microseconds=round(days * 86_400_000_000))


def jd_to_datetime(keyword: str, value: Any) -> dt.datetime:
    """UTC instant of a Julian Date."""
    return mjd_to_datetime(keyword, parse_float(keyword, value) - _JD_MJD_OFFSET)


def check_plausible(keyword: str, value: Any, stamp: dt.datetime) -> dt.datetime:
    """Refuse observation times outside ``EARLIEST_YEAR``..``LATEST_YEAR``."""
    if not EARLIEST_YEAR <= stamp.year <= LATEST_YEAR:
        raise InvalidValueError(
            f"{keyword}={describe(value)}: year {stamp.year} is outside "
            f"{EARLIEST_YEAR}..{LATEST_YEAR}, taken as a corrupt date"
        )
    return stamp
