"""Questions users ask of the catalogue: which frames, which nights, what a night holds.

Functions take the caller's session and only read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, defer

from nightlog.catalogue.exposure_groups import exposure_groups, group_median
from nightlog.catalogue.models import Frame, Master, Product, QuarantinedFile
from nightlog.catalogue.night_tally import header_filter, tally_group_rows
from nightlog.catalogue.quality import verdict_frame_ids
from nightlog.catalogue.types import NUL_STAND_IN as _NUL
from nightlog.states import ProductStatus

__all__ = [
    "FrameFilter",
    "NightCount",
    "NightTotals",
    "find_frames",
    "frame_select",
    "iter_night_counts",
    "latest_night",
    "night_counts",
    "night_totals",
]


def latest_night(session: Session) -> dt.date | None:
    """The newest observing night that holds a frame (any version).

    Parameters
    ----------
    session : Session
        The caller's session.

    Returns
    -------
    datetime.date or None
        ``None`` when the catalogue holds no frame.
    """
    return session.scalar(select(func.max(Frame.night)))


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
    #: Only frames whose current product's quality verdict is this (``poor``, ...).
    quality: str | None = None
    #: The newest first (the order of ``nightlog frames``), not observation order.
    newest_first: bool = False
    #: A page after this frame (its id: the last of the previous page, in this order).
    after_id: int | None = None


def frame_select(crit: FrameFilter, *columns: Any) -> Select[Any]:
    """The statement of the frames matching ``crit`` (``columns``, or whole frames),
    in observation order (or the newest first), a page after ``crit.after_id``."""
    stmt = select(*columns) if columns else select(Frame)
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
    if crit.quality is not None:
        stmt = stmt.where(Frame.id.in_(verdict_frame_ids(crit.quality)))
    if crit.after_id is not None:
        # Keyset paging: the time bounds the index range, the id breaks ties.
        at = select(Frame.obs_time).where(Frame.id == crit.after_id).scalar_subquery()
        if crit.newest_first:
            stmt = stmt.where(Frame.obs_time <= at,
                              or_(Frame.obs_time < at, Frame.id < crit.after_id))
        else:
            stmt = stmt.where(Frame.obs_time >= at,
                              or_(Frame.obs_time > at, Frame.id > crit.after_id))
    if crit.newest_first:
        stmt = stmt.order_by(Frame.obs_time.desc(), Frame.id.desc())
    else:
        stmt = stmt.order_by(Frame.obs_time, Frame.id)
    if crit.limit is not None:
        stmt = stmt.limit(crit.limit)
    return stmt


def find_frames(session: Session, crit: FrameFilter) -> list[Frame]:
    """Frames matching ``crit``, in observation order (or the newest first).

    The stored header (the largest column, kilobytes a frame) is not read with the
    rows; it is loaded when a returned frame's ``header`` is first used.
    """
    stmt = frame_select(crit).options(defer(Frame.header))
    return list(session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class NightCount:
    """Number of frames of one night, kind, filter and exposure time.

    ``exptime`` is the median exposure of the group (seconds, to 0.1 s);
    ``exptime_min`` and ``exptime_max`` its extremes, as recorded.
    """

    night: dt.date
    kind: str
    filter: str | None
    exptime: float | None
    count: int
    exptime_min: float | None = None
    exptime_max: float | None = None


def _sort_key(c: NightCount) -> tuple[str, str, float]:
    return (c.kind, c.filter or "", c.exptime or 0.0)


_new = object.__new__
_SETTERS = tuple(getattr(NightCount, name).__set__ for name in (
    "night", "kind", "filter", "exptime", "count", "exptime_min", "exptime_max"))


def _count_of(night: dt.date, kind: str, filt: str | None, exptime: float | None,
              count: int, lo: float | None, hi: float | None) -> NightCount:
    """``NightCount(night, kind, filt, exptime, count, lo, hi)``, made a third as
    slowly (a frozen class's ``__init__`` sets each field through
    ``object.__setattr__``): ten years of nights are twenty thousand of them."""
    c = _new(NightCount)
    s_night, s_kind, s_filter, s_exptime, s_count, s_lo, s_hi = _SETTERS
    s_night(c, night)
    s_kind(c, kind)
    s_filter(c, filt)
    s_exptime(c, exptime)
    s_count(c, count)
    s_lo(c, lo)
    s_hi(c, hi)
    return c


def _group_counts(night: dt.date, kind: str, filt: str | None,
                  times: list[tuple[float | None, int]], tolerance: float) -> list[NightCount]:
    """The counts of one night, kind and filter of several exposure times."""
    if len(times) == 1:  # one exposure time: its own group (most groups)
        ((value, count),) = times
        return [_count_of(night, kind, filt, None, count, None, None) if value is None else
                _count_of(night, kind, filt, round(value, 1), count, value, value)]
    out = []
    known = [(float(v), n) for v, n in times if v is not None]
    if len(known) < len(times):  # frames without an exposure time: a group of their own
        out.append(NightCount(night, kind, filt, None, sum(n for v, n in times if v is None)))
    for group in exposure_groups(known, tolerance):
        out.append(NightCount(night, kind, filt, group_median(group),
                              sum(n for _, n in group), group[0][0], group[-1][0]))
    return out


_NO_NIGHT = object()


def iter_night_counts(session: Session, *, since: dt.date | None = None,
                      until: dt.date | None = None, exptime_tolerance: float = 0.01,
                      newest_first: bool = False) -> Iterator[NightCount]:
    """:func:`night_counts` one night at a time, as the tally's rows arrive (ten
    years are read without holding them): the oldest night first, or the newest.
    Within a night, by kind, filter and exposure time."""
    rows, as_date = tally_group_rows(session, since=since, until=until,
                                     newest_first=newest_first)
    night_rows: list[NightCount] = []
    stored: Any = _NO_NIGHT  # the night of ``times`` as the backend gives it
    night = dt.date.min
    kind = ""
    filt: str | None = None  # as stored (compared row by row)
    shown: str | None = None  # as the header gave it (made once per group)
    times: list[tuple[float | None, int]] = []
    for r_night, r_kind, r_filt, exptime, frames in rows:
        # The rows of one night, kind and filter come together (the tally's order).
        if r_night != stored or r_kind != kind or r_filt != filt:
            if len(times) == 1:  # one exposure time: its own group (most groups)
                ((value, count),) = times
                night_rows.append(
                    _count_of(night, kind, shown, None, count, None, None) if value is None
                    else _count_of(night, kind, shown, round(value, 1), count, value, value))
                times = []
            elif times:
                night_rows += _group_counts(night, kind, shown, times, exptime_tolerance)
                times = []
            if r_night != stored:
                if night_rows:
                    if len(night_rows) > 1:
                        night_rows.sort(key=_sort_key)
                    yield from night_rows
                    night_rows = []
                stored, night = r_night, as_date(r_night)
            kind, filt = r_kind, r_filt
            shown = r_filt if r_filt is None or _NUL not in r_filt else header_filter(r_filt)
        times.append((exptime, frames))
    if times:
        night_rows += _group_counts(night, kind, shown, times, exptime_tolerance)
    night_rows.sort(key=_sort_key)
    yield from night_rows


def night_counts(session: Session, *, since: dt.date | None = None,
                 until: dt.date | None = None, exptime_tolerance: float = 0.01,
                 newest_first: bool = False) -> list[NightCount]:
    """Counts per night, kind, filter and exposure time (latest versions only).

    Exposure times within ``exptime_tolerance`` (relative; at least 0.05 s) of the
    shortest of their group count as one
    (:func:`~nightlog.catalogue.exposure_groups.exposure_groups`), so that the 70.0 s
    and 70.1 s flats a shutter's jitter writes are one group of 70 s, while 7 s and
    70 s stay apart. The counts are read from the night tally
    (:mod:`nightlog.catalogue.night_tally`), not from the frames: ten years of
    nights are a few tens of thousands of rows, read in night order. The oldest
    night comes first (``newest_first``: the newest); within a night, by kind,
    filter and exposure time.
    """
    return list(iter_night_counts(session, since=since, until=until,
                                  exptime_tolerance=exptime_tolerance,
                                  newest_first=newest_first))


@dataclass(frozen=True, slots=True)
class NightTotals:
    """What one night holds: frames, masters and products per kind, and the files
    quarantined since its noon (what ``nightlog status`` shows)."""

    night: dt.date
    frames: dict[str, int]
    masters: dict[str, int]
    products: dict[str, int]
    quarantined_since_noon: int


def night_totals(session: Session, night: dt.date) -> NightTotals:
    """Totals of ``night`` per kind: latest frames, current masters, current products.

    Parameters
    ----------
    session : Session
        The caller's session.
    night : datetime.date
        The observing night.

    Returns
    -------
    NightTotals
        The totals, and the unresolved quarantined files last seen since noon UTC
        of ``night``.
    """
    frames = dict(session.execute(
        select(Frame.kind, func.count()).where(Frame.night == night, Frame.is_latest.is_(True))
        .group_by(Frame.kind)).all())
    masters = dict(session.execute(
        select(Master.kind, func.count()).where(Master.night == night,
                                                Master.superseded_by_id.is_(None))
        .group_by(Master.kind)).all())
    products = dict(session.execute(
        select(Product.kind, func.count()).join(Frame, Frame.id == Product.frame_id)
        .where(Frame.night == night, Product.status == ProductStatus.CURRENT)
        .group_by(Product.kind)).all())
    noon = dt.datetime.combine(night, dt.time(12), tzinfo=dt.UTC)
    quarantined = session.scalar(
        select(func.count()).select_from(QuarantinedFile)
        .where(QuarantinedFile.last_seen >= noon, QuarantinedFile.resolved_at.is_(None))) or 0
    return NightTotals(night, frames, masters, products, int(quarantined))
