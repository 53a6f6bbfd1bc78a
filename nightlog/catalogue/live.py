"""What the live web view asks of the catalogue: has anything changed, and a night's
frames of every kind with the products and masters they got.

:func:`change_mark` is the cheap question a page asks every second or two: a few
maxima and counts that move whenever a frame, master, product, failure,
quarantined file or daemon state does, so the page is rebuilt only then.
:func:`night_frames` is the expensive one, asked only after a change. Only reads;
functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from nightlog.catalogue.daemons import is_alive, recent_daemons
from nightlog.catalogue.models import (
    Frame,
    Master,
    Product,
    QuarantinedFile,
    ReduceFailure,
)
from nightlog.catalogue.night_summary import ProductFacts, newest_products

__all__ = ["NightFrame", "change_mark", "get_frame", "night_frames"]


def change_mark(session: Session, night: dt.date | None = None, *,
                now: dt.datetime | None = None) -> str:
    """A short digest of the catalogue's state that changes whenever the page of
    ``night`` would.

    Every part is an index look-up, never a scan of frames or products, so a page can
    ask every second or two of a catalogue of years: the largest frame, product and
    master ids (any new row), the newest night, the frames of ``night`` flagged
    (through the night's index), its masters marked or superseded, the quarantine
    and the reduction failures (small tables), and the latest daemon runs.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    night : datetime.date, optional
        The night of the page (default: the newest night).
    now : datetime.datetime, optional
        The time against which a daemon's heartbeat is judged (default: now, UTC).

    Returns
    -------
    str
        16 hexadecimal digits: equal marks mean nothing the page shows has changed,
        except the ages of heartbeats (which the page counts up by itself).
    """
    latest = session.scalar(select(func.max(Frame.night)))
    the_night = night or latest
    parts: list[object] = [
        latest, the_night,
        session.scalar(select(func.max(Frame.id))),
        session.scalar(select(func.max(Product.id))),
        session.scalar(select(func.max(Master.id))),
    ]
    if the_night is not None:
        parts.extend(session.execute(
            select(Frame.kind, Frame.status, func.count())
            .where(Frame.night == the_night, Frame.is_latest.is_(True))
            .group_by(Frame.kind, Frame.status).order_by(Frame.kind, Frame.status)).all())
        parts.extend(session.execute(
            select(Master.id, Master.quality, Master.superseded_by_id)
            .where(Master.night == the_night).order_by(Master.id)).all())
    parts.extend(session.execute(
        select(func.max(QuarantinedFile.last_seen), func.count(QuarantinedFile.id),
               func.count(QuarantinedFile.resolved_at))).one())
    parts.extend(session.execute(
        select(func.max(ReduceFailure.failed_at), func.count(ReduceFailure.id),
               func.count(ReduceFailure.resolved_at))).one())
    for d in recent_daemons(session, limit=5):
        parts.extend((d.id, d.stopped_at, d.last_action_at, d.backlog, is_alive(d, now)))
    return hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class NightFrame:
    """A frame of a night with its newest product of each kind (``quicklook``,
    ``final``) and the masters each used."""

    frame: Frame
    products: dict[str, ProductFacts]


def night_frames(session: Session, night: dt.date, *, limit: int = 2000) -> list[NightFrame]:
    """The latest frames of ``night``, newest first, with their products.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    night : datetime.date
        The observing night.
    limit : int
        At most this many frames (the newest); the stored headers are not read.

    Returns
    -------
    list of NightFrame
        Newest observation first.
    """
    frames = list(session.scalars(
        select(Frame).options(defer(Frame.header))
        .where(Frame.night == night, Frame.is_latest.is_(True))
        .order_by(Frame.obs_time.desc(), Frame.id.desc()).limit(limit)))
    products = newest_products(session, [f.id for f in frames])
    return [NightFrame(f, products.get(f.id, {})) for f in frames]


def get_frame(session: Session, frame_id: int) -> Frame | None:
    """The frame with id ``frame_id`` (any version), or ``None``."""
    return session.get(Frame, frame_id)
