"""The nights summed per month or year: ``nightlog nights --by month|year``.

The database sums the night tally (:mod:`nightlog.catalogue.night_tally`) per
period, kind, filter and exact exposure time, and counts the nights of each; ten
years come back as a few hundred rows. Exposure times a shutter's jitter spreads
are then one group over the whole period
(:func:`~nightlog.catalogue.exposure_groups.exposure_groups`), and the nights of
such a group, which its exact times cannot add up without counting a night twice,
are counted by the database again for that group alone. Functions take the
caller's session and only read.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, cast, extract, func, select
from sqlalchemy.orm import Session

from nightlog.catalogue.exposure_groups import exposure_groups, group_median
from nightlog.catalogue.models import NightTally
from nightlog.catalogue.night_tally import group_sums

__all__ = ["Period", "PeriodCount", "period_counts"]


class Period(enum.StrEnum):
    """What one row of a summary sums: the nights of a month or of a year."""

    month = "month"
    year = "year"


@dataclass(frozen=True, slots=True)
class PeriodCount:
    """Frames of one month or year (``period``: ``YYYY-MM`` or ``YYYY``), kind, filter
    and exposure time (seconds: the median of the group's frames, to 0.1 s; the
    shortest and longest in ``exptime_min`` and ``exptime_max``), over ``nights``
    nights."""

    period: str
    kind: str
    filter: str | None
    exptime: float | None
    count: int
    nights: int
    exptime_min: float | None = None
    exptime_max: float | None = None


_Key = tuple[str, str, str | None]


def _bounds(period: str) -> tuple[dt.date, dt.date]:
    """The first and last night of ``YYYY`` or ``YYYY-MM``."""
    if len(period) == 4:
        return dt.date(int(period), 1, 1), dt.date(int(period), 12, 31)
    first = dt.date(int(period[:4]), int(period[5:]), 1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def _nights_of(session: Session, key: _Key, times: list[float],
               since: dt.date | None, until: dt.date | None) -> int:
    """The nights of ``key``'s period holding a frame of any of exposure ``times``."""
    period, kind, filt = key
    first, last = _bounds(period)
    same_filter = NightTally.filter.is_(None) if filt is None else NightTally.filter == filt
    groups = (group_sums(max(first, since or first), min(last, until or last))
              .where(NightTally.kind == kind, same_filter, NightTally.exptime.in_(times))
              .subquery())
    return int(session.scalar(select(func.count(func.distinct(groups.c.night)))) or 0)


def period_counts(session: Session, by: Period | str, *, since: dt.date | None = None,
                  until: dt.date | None = None, exptime_tolerance: float = 0.01
                  ) -> list[PeriodCount]:
    """The latest frames of each month or year, kind, filter and exposure time.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    by : Period or str
        ``month`` or ``year``.
    since, until : datetime.date, optional
        The first and last night counted (both included; ``None``: open).
    exptime_tolerance : float
        Exposure times within this (relative; at least 0.05 s) of the shortest of
        their group, over the period, count as one.

    Returns
    -------
    list of PeriodCount
        The oldest period first; within one, by kind, filter and exposure time.

    Raises
    ------
    ValueError
        ``by`` is neither ``month`` nor ``year``.
    """
    by = Period(by)
    nights = group_sums(since, until).subquery()
    year = cast(extract("year", nights.c.night), Integer)
    parts: list[Any] = [year]
    if by is Period.month:
        parts.append(cast(extract("month", nights.c.night), Integer))
    stmt = (select(*parts, nights.c.kind, nights.c.filter, nights.c.exptime,
                   func.sum(nights.c.frames), func.count())
            .group_by(*parts, nights.c.kind, nights.c.filter, nights.c.exptime))
    exact: dict[_Key, list[tuple[float, int, int]]] = {}
    out: list[PeriodCount] = []
    for row in session.execute(stmt):
        period = f"{row[0]:04d}" if by is Period.year else f"{row[0]:04d}-{row[1]:02d}"
        kind, filt, exptime, frames, n_nights = row[len(parts):]
        if exptime is None:
            out.append(PeriodCount(period, kind, filt, None, int(frames), int(n_nights)))
        else:
            exact.setdefault((period, kind, filt), []).append(
                (float(exptime), int(frames), int(n_nights)))
    for key, times in exact.items():
        spans = {value: n for value, _, n in times}
        for group in exposure_groups([(value, frames) for value, frames, _ in times],
                                     exptime_tolerance):
            values = [value for value, _ in group]
            n_nights = (spans[values[0]] if len(values) == 1
                        else _nights_of(session, key, values, since, until))
            out.append(PeriodCount(*key, group_median(group), sum(n for _, n in group),
                                   n_nights, values[0], values[-1]))
    out.sort(key=lambda c: (c.period, c.kind, c.filter or "", c.exptime or 0.0))
    return out
