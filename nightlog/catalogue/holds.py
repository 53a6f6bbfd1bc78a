"""Frames not reduced for want of a master: ``held`` (waiting) or ``stopped``.

When no master of a kind matches a science frame, the profile's ``missing``
policy decides (:mod:`nightlog.calibration.missing`): ``hold`` keeps the frame
waiting, ``fail`` stops it. Either way the frame gets one row in ``frame_holds``
with the missing kinds and the reason (updated when it is looked at again); when
the frame is reduced the row is marked resolved. :func:`held_frames` is what
``reduce`` and the watch daemon pick up again once masters may have arrived.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame, FrameHold
from nightlog.states import HoldState

__all__ = ["HeldFrame", "held_frames", "holds_of_night", "record_hold", "resolve_hold"]


@dataclass(frozen=True, slots=True)
class HeldFrame:
    """A science frame of a night waiting for (or stopped for want of) a master.

    Attributes
    ----------
    frame_id, path, obs_time, object_name, filter
        The raw frame.
    state : HoldState
        ``held`` or ``stopped``.
    steps : tuple of str
        The calibration kinds missing.
    reason : str
        Why no master matched.
    since : datetime.datetime
        When it was first held (UTC).
    """

    frame_id: int
    path: str
    obs_time: dt.datetime
    object_name: str | None
    filter: str | None
    state: HoldState
    steps: tuple[str, ...]
    reason: str
    since: dt.datetime


def record_hold(session: Session, frame_id: int, *, state: HoldState, steps: Sequence[str],
                reason: str, now: dt.datetime | None = None) -> FrameHold:
    """Record (or update) that ``frame_id`` is ``state`` for want of ``steps``."""
    now = now or dt.datetime.now(dt.UTC)
    row = session.scalars(select(FrameHold).where(FrameHold.frame_id == frame_id)
                          ).one_or_none()
    if row is None:
        row = FrameHold(frame_id=frame_id, since=now)
        session.add(row)
    elif row.resolved_at is not None:
        row.since = now
    row.state = HoldState(state)
    row.steps = [str(s) for s in steps]
    row.reason = reason
    row.checked_at = now
    row.resolved_at = None
    session.flush()
    return row


def resolve_hold(session: Session, frame_id: int, *, now: dt.datetime | None = None) -> bool:
    """Mark the hold of ``frame_id`` resolved (it was reduced); False if none was open."""
    row = session.scalars(select(FrameHold).where(FrameHold.frame_id == frame_id,
                                                  FrameHold.resolved_at.is_(None))
                          ).one_or_none()
    if row is None:
        return False
    row.resolved_at = now or dt.datetime.now(dt.UTC)
    return True


def held_frames(session: Session) -> dict[dt.date, list[int]]:
    """Ids of the frames still ``held`` (not ``stopped``), by night, oldest first."""
    stmt = (select(FrameHold.frame_id, Frame.night).join(Frame, Frame.id == FrameHold.frame_id)
            .where(FrameHold.resolved_at.is_(None), FrameHold.state == HoldState.HELD,
                   Frame.is_latest.is_(True))
            .order_by(Frame.obs_time, Frame.id))
    found: dict[dt.date, list[int]] = {}
    for frame_id, night in session.execute(stmt).all():
        found.setdefault(night, []).append(frame_id)
    return found


def holds_of_night(session: Session, night: dt.date) -> list[HeldFrame]:
    """The unresolved holds of the science frames of ``night``, in observation order."""
    rows = session.execute(
        select(FrameHold, Frame).join(Frame, Frame.id == FrameHold.frame_id)
        .where(Frame.night == night, FrameHold.resolved_at.is_(None))
        .order_by(Frame.obs_time, Frame.id)).all()
    return [HeldFrame(frame_id=frame.id, path=frame.path, obs_time=frame.obs_time,
                      object_name=frame.object_name, filter=frame.filter,
                      state=HoldState(hold.state), steps=tuple(hold.steps or ()),
                      reason=hold.reason, since=hold.since)
            for hold, frame in rows]
