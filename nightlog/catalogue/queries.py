"""Questions users ask of the catalogue: which frames, which nights.

Functions take the caller's session and only read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame

__all__ = ["FrameFilter", "NightCount", "find_frames", "night_counts"]


@dataclass(frozen=True, slots=True)
class FrameFilter:
    """Criteria of ``nightlog frames``; ``None`` means any."""

    night: dt.date | None = None
    kind: str | None = None
    filter: str | None = None
    instrument: str | None = None
    exptime_min: float | None = None
    exptime_max: float | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    include_old_versions: bool = False
    limit: int | None = None


def find_frames(session: Session, crit: FrameFilter) -> list[Frame]:
    """Frames matching ``crit``, in observation order."""
    stmt = select(Frame)
    if not crit.include_old_versions:
        stmt = stmt.where(Frame.is_latest.is_(True))
    if crit.night is not None:
        stmt = stmt.where(Frame.night == crit.night)
    if crit.kind is not None:
        stmt = stmt.where(Frame.kind == crit.kind)
    if crit.filter is not None:
        stmt = stmt.where(Frame.filter == crit.filter)
    if crit.instrument is not None:
        stmt = stmt.where(Frame.instrument == crit.instrument)
    if crit.exptime_min is not None:
        stmt = stmt.where(Frame.exptime >= crit.exptime_min)
    if crit.exptime_max is not None:
        stmt = stmt.where(Frame.exptime <= crit.exptime_max)
    if crit.since is not None:
        stmt = stmt.where(Frame.obs_time >= crit.since)
    if crit.until is not None:
        stmt = stmt.where(Frame.obs_time < crit.until)
    stmt = stmt.order_by(Frame.obs_time, Frame.id)
    if crit.limit is not None:
        stmt = stmt.limit(crit.limit)
    return list(session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class NightCount:
    """Number of frames of one night, kind, filter and exposure time."""

    night: dt.date
    kind: str
    filter: str | None
    exptime: float | None
    count: int


def night_counts(session: Session, *, since: dt.date | None = None,
                 until: dt.date | None = None) -> list[NightCount]:
    """Counts per night, kind, filter and exposure time (latest versions only)."""
    stmt = (
        select(Frame.night, Frame.kind, Frame.filter, Frame.exptime, func.count(Frame.id))
        .where(Frame.is_latest.is_(True))
        .group_by(Frame.night, Frame.kind, Frame.filter, Frame.exptime)
        .order_by(Frame.night, Frame.kind, Frame.filter, Frame.exptime)
    )
    if since is not None:
        stmt = stmt.where(Frame.night >= since)
    if until is not None:
        stmt = stmt.where(Frame.night <= until)
    return [NightCount(n, k, f, e, c) for n, k, f, e, c in session.execute(stmt)]
