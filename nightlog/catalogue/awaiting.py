"""The calibration frames still waiting for a master, and the nights that hold them.

``calib build`` (and the daemon) starts from the nights with calibration frames
that no master lists among its inputs yet. Asked of the frames, that walks every
calibration frame of the archive (half a million after ten years) and probes the
masters' inputs for each; the ``awaiting_masters`` table holds those frames alone:
:func:`await_masters` adds a row for each calibration frame as it is recorded
(:func:`nightlog.catalogue.frames.add_frames`), :func:`mastered` removes the rows of
the frames a master considered, used or rejected
(:func:`nightlog.catalogue.masters.add_master`), and :func:`rebuild_awaiting` fills
the table from the frames and the masters' inputs (what migration 0016 does once,
and what a bulk load of frames or inputs must do after it).

A frame's kind and night never change and masters are never deleted, so a frame
leaves the table for good. Whether a waiting frame is still the latest at its path
and usable is read from the frame when the nights are asked for.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import AwaitingMaster, Frame, MasterInput
from nightlog.states import FrameStatus

__all__ = ["CALIBRATION_KINDS", "await_masters", "awaiting_nights", "mastered",
           "rebuild_awaiting"]

#: The kinds of frame a master is built of: they wait for one from the moment they are
#: recorded.
CALIBRATION_KINDS = ("bias", "dark", "flat")
#: Frame ids per ``DELETE ... IN``.
_CHUNK = 500


def await_masters(session: Session, frames: Sequence[Frame]) -> None:
    """Record that the calibration frames among ``frames`` (just added) wait for a
    master (flushes, so that they have ids)."""
    waiting = [f for f in frames if f.kind in CALIBRATION_KINDS]
    if not waiting:
        return
    session.flush()
    session.execute(insert(AwaitingMaster),
                    [{"frame_id": f.id, "night": f.night, "kind": f.kind} for f in waiting])


def mastered(session: Session, frame_ids: Iterable[int]) -> None:
    """Record that a master considered the frames ``frame_ids``: they wait no longer."""
    ids = sorted(set(frame_ids))
    for i in range(0, len(ids), _CHUNK):
        session.execute(delete(AwaitingMaster)
                        .where(AwaitingMaster.frame_id.in_(ids[i:i + _CHUNK]))
                        .execution_options(synchronize_session=False))


def awaiting_nights(session: Session) -> list[dt.date]:
    """The nights holding latest, usable calibration frames that no master lists
    among its inputs, in time order.

    The waiting frames are walked in the order of their night index, each frame
    looked up by id; the masters' inputs are asked again of each (``NOT EXISTS``: a
    probe of the index of ``master_inputs.frame_id``), a guard that costs one probe
    per waiting frame. The frame is asked in an ``EXISTS``, not joined: with the
    frames in a join, SQLite (which nightlog never analyses) walks the calibration
    frames in their index and looks each up among the waiting ones.
    """
    frame = select(Frame.id).where(Frame.id == AwaitingMaster.frame_id,
                                   Frame.kind.in_(CALIBRATION_KINDS), Frame.is_latest.is_(True),
                                   Frame.status == FrameStatus.OK)
    considered = select(MasterInput.frame_id).where(
        MasterInput.frame_id == AwaitingMaster.frame_id)
    rows = session.execute(select(AwaitingMaster.night)
                           .where(frame.exists(), ~considered.exists()).distinct())
    return sorted(r[0] for r in rows)


def rebuild_awaiting(session: Session) -> int:
    """Refill the table from the calibration frames no master lists among its
    inputs; return how many wait."""
    session.flush()
    session.execute(delete(AwaitingMaster).execution_options(synchronize_session=False))
    considered = select(MasterInput.frame_id).where(MasterInput.frame_id == Frame.id)
    waiting = select(Frame.id, Frame.night, Frame.kind).where(
        Frame.kind.in_(CALIBRATION_KINDS), ~considered.exists())
    session.execute(insert(AwaitingMaster).from_select(["frame_id", "night", "kind"], waiting))
    return int(session.scalar(select(func.count()).select_from(AwaitingMaster)) or 0)
