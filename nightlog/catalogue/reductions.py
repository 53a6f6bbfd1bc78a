"""Reductions that failed: recorded with their reason, listed per night.

A frame whose reduction still fails after its retries gets one row in
``reduce_failures`` (updated if it fails again); when it is later reduced, the row
is marked resolved. The night report lists the unresolved ones with
:func:`failures_of_night`.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame, ReduceFailure

__all__ = ["FailedReduction", "failures_of_night", "record_failure", "resolve_failure"]


@dataclass(frozen=True, slots=True)
class FailedReduction:
    """A science frame of a night whose reduction failed, for reports.

    Attributes
    ----------
    frame_id, path, obs_time, object_name, filter
        The raw frame.
    kind : str
        Product kind attempted (``final`` or ``quicklook``).
    attempts : int
        Tries in the run that gave up.
    error, reason : str
        Exception name and its message.
    failed_at : datetime.datetime
        When it last failed (UTC).
    times_failed : int
        Runs that gave up on it.
    resolved_at : datetime.datetime or None
        When it was reduced after all (only with ``include_resolved``).
    """

    frame_id: int
    path: str
    obs_time: dt.datetime
    object_name: str | None
    filter: str | None
    kind: str
    attempts: int
    error: str
    reason: str
    failed_at: dt.datetime
    times_failed: int
    resolved_at: dt.datetime | None


def record_failure(session: Session, frame_id: int, *, kind: str, attempts: int, error: str,
                   reason: str, software_version: str, inputs_key: str | None = None,
                   now: dt.datetime | None = None) -> ReduceFailure:
    """Record (or update) the failure of ``frame_id``'s reduction; unresolve it."""
    now = now or dt.datetime.now(dt.UTC)
    row = session.scalars(select(ReduceFailure).where(ReduceFailure.frame_id == frame_id)
                          ).one_or_none()
    if row is None:
        row = ReduceFailure(frame_id=frame_id, first_failed_at=now, times_failed=1)
        session.add(row)
    else:
        row.times_failed += 1
    row.kind = kind
    row.attempts = attempts
    row.error = error[:64]
    row.reason = reason
    row.inputs_key = inputs_key
    row.failed_at = now
    row.resolved_at = None
    row.software_version = software_version
    session.flush()
    return row


def resolve_failure(session: Session, frame_id: int, *, now: dt.datetime | None = None
                    ) -> bool:
    """Mark the failure of ``frame_id`` resolved (it was reduced); False if none was open."""
    row = session.scalars(select(ReduceFailure).where(ReduceFailure.frame_id == frame_id,
                                                      ReduceFailure.resolved_at.is_(None))
                          ).one_or_none()
    if row is None:
        return False
    row.resolved_at = now or dt.datetime.now(dt.UTC)
    return True


def failures_of_night(session: Session, night: dt.date, *, include_resolved: bool = False
                      ) -> list[FailedReduction]:
    """Failed reductions of the science frames of ``night``, in observation order.

    Only the unresolved ones unless ``include_resolved``.
    """
    stmt = (select(ReduceFailure, Frame).join(Frame, Frame.id == ReduceFailure.frame_id)
            .where(Frame.night == night))
    if not include_resolved:
        stmt = stmt.where(ReduceFailure.resolved_at.is_(None))
    rows = session.execute(stmt.order_by(Frame.obs_time, Frame.id)).all()
    return [FailedReduction(frame_id=frame.id, path=frame.path, obs_time=frame.obs_time,
                            object_name=frame.object_name, filter=frame.filter,
                            kind=failure.kind, attempts=failure.attempts,
                            error=failure.error, reason=failure.reason,
                            failed_at=failure.failed_at, times_failed=failure.times_failed,
                            resolved_at=failure.resolved_at)
            for failure, frame in rows]
