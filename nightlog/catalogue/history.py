"""The calibration history: the masters of one kind, in time order.

This is the query behind ``nightlog calib history``. By default it returns one
master per group and night, the version actually in use: superseded versions are
left out unless asked for, so a trend has one point per master that calibrated
data. Masters marked bad are kept (a trend that hides them hides the night
something went wrong); callers show their quality and leave them out of any
statistics. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Master
from nightlog.errors import CatalogueError

__all__ = ["HistoryFilter", "HistoryMaster", "TrendMaster", "group_history",
           "master_history"]


@dataclass(frozen=True, slots=True)
class HistoryMaster:
    """A master as a history reads it: the columns its trends, bands, fences and
    table use, read as plain values (no catalogue row: ten years of masters are
    thousands of them). Its file, build parameters and times are not read."""

    id: int
    kind: str
    profile: str
    instrument: str | None
    setup_key: str
    group_key: str
    group: dict[str, Any]
    filter: str | None
    is_rate: bool
    night: dt.date
    version: int
    mid_time: dt.datetime
    n_frames: int
    stats: dict[str, Any]
    quality: str
    quality_reason: str | None
    superseded_by_id: int | None


#: What the trend and health code reads: a catalogue row or a history record.
TrendMaster = Master | HistoryMaster

_COLUMNS = tuple(getattr(Master, f.name) for f in fields(HistoryMaster))


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which masters a history covers; ``None`` means any.

    ``since`` and ``until`` are observing nights, both included.
    """

    #: 'bias', 'dark' or 'flat'.
    kind: str
    instrument: str | None = None
    filter: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    include_superseded: bool = False


def master_history(session: Session, crit: HistoryFilter) -> list[HistoryMaster]:
    """Masters matching ``crit``, ordered by mid time (then id), as history records.

    Raises
    ------
    CatalogueError
        The night range is empty (``until`` before ``since``).
    """
    if crit.since is not None and crit.until is not None and crit.until < crit.since:
        raise CatalogueError(f"empty night range: {crit.since} to {crit.until}")
    stmt = select(*_COLUMNS).where(Master.kind == crit.kind)
    if not crit.include_superseded:
        stmt = stmt.where(Master.superseded_by_id.is_(None))
    if crit.instrument is not None:
        stmt = stmt.where(Master.instrument == crit.instrument)
    if crit.filter is not None:
        stmt = stmt.where(Master.filter == crit.filter)
    if crit.since is not None:
        stmt = stmt.where(Master.night >= crit.since)
    if crit.until is not None:
        stmt = stmt.where(Master.night <= crit.until)
    return [HistoryMaster(*row) for row in session.execute(
        stmt.order_by(Master.mid_time, Master.id))]


def group_history(session: Session, group_key: str, until: dt.datetime, *,
                  limit: int) -> list[Master]:
    """The last ``limit`` current masters of one group with mid time up to ``until``
    (quality not filtered), oldest first: the history a new master is judged against."""
    stmt = (select(Master).where(Master.group_key == group_key,
                                 Master.superseded_by_id.is_(None),
                                 Master.mid_time <= until)
            .order_by(Master.mid_time.desc(), Master.id.desc()).limit(limit))
    return list(reversed(list(session.scalars(stmt))))
