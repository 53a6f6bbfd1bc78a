"""The set-ups of a night: one frame standing for each, and set-ups announced ahead.

A set-up here is what decides which masters a science frame needs: its
instrument set-up (``setup_key``), filter and exposure time. ``nightlog plan``
matches one frame of each against the masters. Functions take the caller's
session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame, MasterInput
from nightlog.errors import NotFoundError
from nightlog.states import FrameStatus

__all__ = ["ANNOUNCED_FIELDS", "NightSetup", "announced_frame", "input_exptimes",
           "setups_of_night"]

#: Fields of a frame an announced set-up may change.
ANNOUNCED_FIELDS = ("filter", "exptime", "binning", "readout_mode", "set_temp", "object_name")


@dataclass(frozen=True, slots=True)
class NightSetup:
    """One set-up: a frame that stands for it and how many frames it has."""

    frame: Frame
    n_frames: int
    announced: bool = False


def setups_of_night(session: Session, night: dt.date, *, kind: str = "science"
                    ) -> list[NightSetup]:
    """The set-ups of the ``kind`` frames of ``night`` (first frame of each stands for it)."""
    frames = session.scalars(select(Frame).where(
        Frame.night == night, Frame.kind == kind, Frame.is_latest.is_(True),
        Frame.status == FrameStatus.OK).order_by(Frame.obs_time, Frame.id))
    first: dict[tuple[Any, ...], Frame] = {}
    counts: dict[tuple[Any, ...], int] = {}
    for f in frames:
        key = (f.setup_key, f.filter, None if f.exptime is None else round(f.exptime, 3))
        first.setdefault(key, f)
        counts[key] = counts.get(key, 0) + 1
    return [NightSetup(frame=first[k], n_frames=counts[k]) for k in first]


def announced_frame(session: Session, entry: Mapping[str, Any], night: dt.date) -> Frame:
    """A frame (never added to the catalogue) for a set-up announced for ``night``.

    ``entry`` names a frame to start from (``like``: a frame id; else the latest
    science frame of ``instrument``, else the latest science frame) and the
    fields that differ (:data:`ANNOUNCED_FIELDS`). Its time is midnight UTC of the
    night.

    Raises
    ------
    NotFoundError
        No frame to start from.
    """
    like = entry.get("like")
    if like is not None:
        template = session.get(Frame, int(like))
        if template is None:
            raise NotFoundError(f"announced set-up: no frame {like}")
    else:
        stmt = select(Frame).where(Frame.kind == "science", Frame.is_latest.is_(True))
        if entry.get("instrument") is not None:
            stmt = stmt.where(Frame.instrument == entry["instrument"])
        template = session.scalars(stmt.order_by(Frame.obs_time.desc()).limit(1)).first()
        if template is None:
            raise NotFoundError("announced set-up: no science frame "
                                + (f"of {entry['instrument']} " if entry.get("instrument")
                                   else "") + "to start from (give like = FRAME_ID)")
    values = {c.key: getattr(template, c.key) for c in Frame.__table__.columns
              if c.key != "id"}
    values.update({k: entry[k] for k in ANNOUNCED_FIELDS if k in entry})
    values["night"] = night
    values["obs_time"] = dt.datetime.combine(night + dt.timedelta(days=1), dt.time(),
                                             tzinfo=dt.UTC)
    return Frame(**values)


def input_exptimes(session: Session, master_id: int) -> set[float]:
    """The exposure times of the frames a master was made of (rounded to 1 ms)."""
    rows = session.scalars(select(Frame.exptime).join(
        MasterInput, MasterInput.frame_id == Frame.id).where(
        MasterInput.master_id == master_id, MasterInput.used.is_(True)))
    return {round(float(t), 3) for t in rows if t is not None}


