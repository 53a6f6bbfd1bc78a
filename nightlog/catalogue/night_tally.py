"""The tally of latest frames per night, kind, filter and exposure time.

``nightlog nights`` reads it instead of grouping every frame of the archive (a
million rows after ten years): :func:`tally_frame` is called wherever a frame
becomes or stops being the latest at its path (:mod:`nightlog.catalogue.frames`),
and :func:`rebuild_tallies` recounts the tally from the frames (what migration
0014 does once, and what a bulk load of frames must do after it).

A group's count is the sum of its rows: a writer adds to the group's row, or adds
a row when it finds none, so two writers starting the same group at once leave two
rows and no count is lost. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Insert,
    Select,
    String,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame, NightTally
from nightlog.catalogue.types import NUL_STAND_IN

__all__ = [
    "TallyRow",
    "group_sums",
    "header_filter",
    "newest_tallied_nights",
    "rebuild_tallies",
    "tally_frame",
    "tally_group_rows",
    "tally_groups",
    "tally_rows",
]

#: Tally rows fetched at a time by the listings.
_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class TallyRow:
    """Latest frames of one night, kind, filter and exact exposure time (seconds)."""

    night: dt.date
    kind: str
    filter: str | None
    exptime: float | None
    frames: int


@functools.cache
def _statements() -> tuple[Update, Insert]:
    # Built once: ingestion adds to the tally for every frame it records.
    table = NightTally.__table__
    key = {c: bindparam(f"key_{c}", type_=table.c[c].type)
           for c in ("night", "kind", "filter", "exptime")}
    delta = bindparam("delta", type_=table.c.frames.type)
    same = (table.c.night == key["night"], table.c.kind == key["kind"],
            table.c.filter.is_not_distinct_from(key["filter"]),
            table.c.exptime.is_not_distinct_from(key["exptime"]))
    # The first row of the group, by id: every writer adds to the same one.
    first = select(func.min(table.c.id)).where(*same).scalar_subquery()
    return (update(table).where(table.c.id == first).values(frames=table.c.frames + delta),
            insert(table).values(**key, frames=delta))


def tally_frame(session: Session, frame: Frame, delta: int) -> None:
    """Add ``delta`` (+1: ``frame`` became the latest at its path; -1: it stopped
    being it) to the tally of its night, kind, filter and exposure time."""
    add, start = _statements()
    params = {"key_night": frame.night, "key_kind": frame.kind, "key_filter": frame.filter,
              "key_exptime": frame.exptime, "delta": delta}
    if session.execute(add, params).rowcount == 0:
        session.execute(start, params)


def group_sums(since: dt.date | None, until: dt.date | None, *,
               columns: Sequence[Any] | None = None) -> Select[Any]:
    """The frames of each night, kind, filter and exposure time from ``since`` to
    ``until`` (both included; ``None``: open), groups with no latest frame left out
    (``columns``: what to select of the group's night, kind, filter and exposure
    time instead of the columns themselves)."""
    total = func.sum(NightTally.frames)
    picked = columns or (NightTally.night, NightTally.kind, NightTally.filter,
                         NightTally.exptime)
    stmt = (select(*picked, total.label("frames"))
            .group_by(NightTally.night, NightTally.kind, NightTally.filter,
                      NightTally.exptime)
            .having(total > 0))
    if since is not None:
        stmt = stmt.where(NightTally.night >= since)
    if until is not None:
        stmt = stmt.where(NightTally.night <= until)
    return stmt


def tally_groups(session: Session, *, since: dt.date | None = None,
                 until: dt.date | None = None, newest_first: bool = False
                 ) -> Iterator[tuple[dt.date, str, str | None, float | None, int]]:
    """``(night, kind, filter, exptime, frames)`` of each group of each night from
    ``since`` to ``until`` (both included; ``None``: open), groups with no latest
    frame left out, the oldest night first (``newest_first``: the newest), in no
    particular order within a night (backends sort nulls apart).

    Plain tuples, fetched in chunks as they are read: ten years of nights are some
    twenty thousand groups, and the index of the tally's groups gives them in order
    without a sort.
    """
    session.flush()  # frames added in this session are counted
    stmt = group_sums(since, until)
    columns = (NightTally.night, NightTally.kind, NightTally.filter, NightTally.exptime)
    stmt = stmt.order_by(*(c.desc() for c in columns) if newest_first else columns)
    result = session.connection().execute(stmt.execution_options(yield_per=_CHUNK))
    for part in result.partitions():
        yield from part  # rows unpack as tuples; both backends sum integers to int


def _iso_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def tally_group_rows(session: Session, *, since: dt.date | None = None,
                     until: dt.date | None = None, newest_first: bool = False
                     ) -> tuple[Iterator[tuple[Any, str, str | None, float | None, int]],
                                Callable[[Any], dt.date]]:
    """:func:`tally_groups` with each night as the backend stores it (SQLite: ISO
    text), and the function that makes it a date: a listing of ten years converts
    each of its nights once instead of each of its twenty thousand groups (on
    SQLite, a date and a header text read per row are most of such a listing's
    time in this process)."""
    session.flush()  # frames added in this session are counted
    columns: tuple[Any, ...] = (NightTally.night, NightTally.kind, NightTally.filter,
                                NightTally.exptime)
    # No conversion per row of the filter's header text: SQLite keeps it as is, and
    # on PostgreSQL the caller gives each group's filter back its NUL characters
    # (:func:`header_filter`) as it starts the group, not the database layer per row.
    picked: tuple[Any, ...] = (NightTally.night, NightTally.kind,
                               type_coerce(NightTally.filter, String), NightTally.exptime)
    if session.get_bind().dialect.name == "sqlite":
        # SQLite keeps the night as ISO text: made a date once per night, by the caller.
        picked = (type_coerce(NightTally.night, String), *picked[1:])
    stmt = group_sums(since, until, columns=picked)
    stmt = stmt.order_by(*(c.desc() for c in columns) if newest_first else columns)
    result = session.connection().execute(stmt.execution_options(yield_per=_CHUNK))
    return itertools.chain.from_iterable(result.partitions()), _iso_date


def header_filter(stored: str | None) -> str | None:
    """A filter name of :func:`tally_group_rows` as the header gave it (PostgreSQL
    keeps a NUL character as a stand-in; see :class:`~nightlog.catalogue.types.HeaderText`)."""
    if stored is None or NUL_STAND_IN not in stored:
        return stored
    return stored.replace(NUL_STAND_IN, "\0")


def tally_rows(session: Session, *, since: dt.date | None = None,
               until: dt.date | None = None) -> list[TallyRow]:
    """:func:`tally_groups` as :class:`TallyRow` records."""
    return [TallyRow(*group) for group in tally_groups(session, since=since, until=until)]


def newest_tallied_nights(session: Session, n: int) -> list[dt.date]:
    """The ``n`` newest nights the tally holds frames of, newest first."""
    total = func.sum(NightTally.frames)
    return list(session.scalars(
        select(NightTally.night).group_by(NightTally.night).having(total > 0)
        .order_by(NightTally.night.desc()).limit(n)))


def rebuild_tallies(session: Session) -> int:
    """Recount the tally from the latest frames; return the number of groups."""
    session.flush()
    session.execute(delete(NightTally))
    counted = (select(Frame.night, Frame.kind, Frame.filter, Frame.exptime,
                      func.count(Frame.id))
               .where(Frame.is_latest.is_(True))
               .group_by(Frame.night, Frame.kind, Frame.filter, Frame.exptime))
    session.execute(insert(NightTally).from_select(
        ["night", "kind", "filter", "exptime", "frames"], counted))
    return int(session.scalar(select(func.count()).select_from(NightTally)) or 0)
