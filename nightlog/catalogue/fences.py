"""Hardware-change fences: an instant after which the detector is not the same.

Staff add one when a camera is serviced, a controller or the filter wheel is
changed (``nightlog calib fence --at TIME --reason ...``). A fence applies to
every instrument, or to one (``instrument``), or to one set-up of it
(``setup_key``). No master is matched across a fence
(:mod:`nightlog.calibration.matching`) and the normal bands of the detector's
figures restart at one (:mod:`nightlog.calibration.health`). Functions take the
caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Fence
from nightlog.errors import CatalogueError

__all__ = ["add_fence", "fence_applies", "fences_between", "fences_for", "list_fences"]


def add_fence(session: Session, at: dt.datetime, reason: str, *,
              instrument: str | None = None, setup_key: str | None = None,
              now: dt.datetime | None = None) -> Fence:
    """Record a fence at ``at`` (timezone-aware) with its ``reason``.

    Raises
    ------
    CatalogueError
        ``at`` without a time zone, or an empty reason.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise CatalogueError(f"a fence's time needs a time zone: {at.isoformat()}")
    if not reason.strip():
        raise CatalogueError("a fence needs a reason (what changed)")
    fence = Fence(at=at.astimezone(dt.UTC), reason=reason.strip(), instrument=instrument,
                  setup_key=setup_key, created_at=now or dt.datetime.now(dt.UTC))
    session.add(fence)
    session.flush()
    return fence


def list_fences(session: Session, *, instrument: str | None = None) -> list[Fence]:
    """Every fence (of ``instrument`` and of every instrument, when given), by time."""
    stmt = select(Fence).order_by(Fence.at, Fence.id)
    if instrument is not None:
        stmt = stmt.where((Fence.instrument == instrument) | Fence.instrument.is_(None))
    return list(session.scalars(stmt))


def fences_for(session: Session, instrument: str | None) -> list[Fence]:
    """The fences that can apply to frames and masters of ``instrument``, by time."""
    stmt = select(Fence).order_by(Fence.at, Fence.id)
    if instrument is not None:
        stmt = stmt.where((Fence.instrument == instrument) | Fence.instrument.is_(None))
    else:
        stmt = stmt.where(Fence.instrument.is_(None))
    return list(session.scalars(stmt))


def fence_applies(fence: Fence, instrument: str | None, setup_key: str | None) -> bool:
    """Whether ``fence`` concerns a frame or master of this instrument and set-up."""
    return ((fence.instrument is None or fence.instrument == instrument)
            and (fence.setup_key is None or fence.setup_key == setup_key))


def fences_between(fences: Sequence[Fence], start: dt.datetime, end: dt.datetime,
                   instrument: str | None, setup_key: str | None) -> list[Fence]:
    """The fences of ``fences`` that apply and lie in ``(min, max]`` of the two times."""
    lo, hi = min(start, end), max(start, end)
    return [f for f in fences if lo < f.at <= hi and fence_applies(f, instrument, setup_key)]

