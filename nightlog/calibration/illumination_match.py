"""Choosing a science frame's night-sky illumination model, and saying why.

A profile with ``illumination = "night-sky"`` corrects each science frame's flat
with an illumination model made of the night's own science frames of its set-up
and filter (:mod:`nightlog.coordinator.illumination`). Such a model is a master
of kind ``illumination``; a frame takes one when it passes the rules of a flat
(:func:`~nightlog.calibration.matching.evaluate`: group, window, quality,
current, valid, fence, and in live mode earlier) and two of its own:

``night``
    the model is of the frame's night (it describes that night's sky);
``flat``
    the model was made of frames divided by the same master flat as this frame
    (it corrects that flat's illumination, not another's).

Of the models passing every rule the newest version wins. With none, the reason
says whether the night has too few frames for one (``illumination_min_frames``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightlog.calibration.matching import Candidate, KindMatch, RuleResult, evaluate
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue.fences import fences_for
from nightlog.catalogue.models import Frame, Master
from nightlog.header.profiles import InstrumentProfile
from nightlog.states import FrameStatus

__all__ = ["ILLUMINATION_KIND", "match_illumination", "science_frames_like"]

#: The ``masters.kind`` of a night-sky illumination model.
ILLUMINATION_KIND = "illumination"


def science_frames_like(session: Session, frame: Frame) -> int:
    """Science frames of ``frame``'s night, profile, set-up and filter (usable, latest)."""
    filt = Frame.filter.is_(None) if frame.filter is None else Frame.filter == frame.filter
    return int(session.scalar(
        select(func.count(Frame.id)).where(
            Frame.kind == "science", Frame.night == frame.night, Frame.profile == frame.profile,
            Frame.setup_key == frame.setup_key, filt, Frame.window.is_(None),
            Frame.is_latest.is_(True), Frame.status == FrameStatus.OK)) or 0)


def _absent(session: Session, frame: Frame, profile: InstrumentProfile) -> str:
    n = science_frames_like(session, frame)
    need = profile.illumination_min_frames
    if n < need:
        return (f"no night-sky illumination model: {n} science frame(s) of this night's "
                f"set-up and filter, {need} needed (illumination_min_frames of profile "
                f"{profile.name!r}); the flat's own illumination is kept")
    return (f"no night-sky illumination model of night {frame.night} for this set-up and "
            f"filter yet ({n} science frames): nightlog reduce builds it")


def match_illumination(session: Session, frame: Frame, profile: InstrumentProfile,
                       policy: CalibrationPolicy, *, flat: Master | None,
                       at: dt.datetime | None = None, live: bool = False) -> KindMatch:
    """Choose the night-sky illumination model of ``frame`` (divided by ``flat``)."""
    when = at or frame.obs_time
    stmt = select(Master).where(Master.kind == ILLUMINATION_KIND,
                                Master.profile == profile.name, Master.night == frame.night)
    if frame.instrument is not None:
        stmt = stmt.where(Master.instrument == frame.instrument)
    fences = fences_for(session, frame.instrument)
    candidates: list[Candidate] = []
    for master in session.scalars(stmt.order_by(Master.id)):
        base = evaluate(frame, master, "flat", profile, policy, at=when, live=live,
                        fences=fences)
        made_with = (master.stats or {}).get("flat_id")
        want = None if flat is None else flat.id
        rules = (*base.rules,
                 RuleResult("night", master.night == frame.night,
                            f"model of {master.night}, frame of {frame.night}"),
                 RuleResult("flat", want is not None and made_with == want,
                            f"model made with flat master {made_with}, frame divided by "
                            + ("no flat" if want is None else f"flat master {want}")))
        candidates.append(Candidate(master=master, rules=rules, distance=base.distance))
    usable = sorted((c for c in candidates if c.usable),
                    key=lambda c: (-c.master.version, -c.master.id))
    candidates.sort(key=lambda c: (not c.usable, c.distance, c.master.id))
    chosen = usable[0].master if usable else None
    note = "" if chosen is not None or candidates else _absent(session, frame, profile)
    return KindMatch(kind=ILLUMINATION_KIND, chosen=chosen, candidates=tuple(candidates),
                     note=note)
