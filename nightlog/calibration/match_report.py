"""Why a frame gets its masters: the explanation ``nightlog match`` shows.

The catalogue finds the frame and its candidate masters, the frame's instrument
profile and the calibration policy judge them
(:func:`~nightlog.calibration.matching.match_frame`); the result here is plain
values, read after the session is closed and printed or serialised as they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from nightlog.calibration.detector_numbers import detector_numbers
from nightlog.calibration.matching import KindMatch, match_frame
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue.frames import find_frame
from nightlog.catalogue.models import Frame
from nightlog.catalogue.records import master_flags
from nightlog.header.profiles import InstrumentProfile

__all__ = ["MatchContext", "MatchReport", "explain_match"]


class MatchContext(Protocol):
    """What matching needs besides the catalogue: each frame's profile and the policy
    (the coordinator's :class:`~nightlog.coordinator.context.JobContext` is one)."""

    @property
    def policy(self) -> CalibrationPolicy: ...

    def profile_of(self, frame: Frame) -> InstrumentProfile: ...


@dataclass(frozen=True, slots=True)
class MatchReport:
    """The masters chosen for one frame, and every candidate's rules.

    Attributes
    ----------
    frame_id, frame_kind, frame_path
        The frame matched.
    matches : list of dict
        One per calibration kind the frame needs (none for a calibration frame
        that needs none): ``kind``, ``chosen`` (a master id or ``None``),
        ``flags`` (the chosen master's: ``multi-night``, ``provisional``),
        ``reason`` (why none was chosen), ``how`` (for a dark: scaled linearly,
        of the exact exposure, or interpolated between ``chosen`` and ``second``,
        the longer one), ``temperature`` (a dark of another set temperature
        scaled to the frame's: ``master``, ``from_set_temp``, ``to_set_temp``,
        ``factor``, ``factor_err`` and the ``fit``; else ``None``) and
        ``candidates``, each with ``master``, ``night``, ``version``, ``usable``,
        ``hours_away`` and ``rules`` (each ``rule``, ``passed``, ``detail``),
        nearest first.
    detector : dict
        The gain and read noise the frame is reduced with, each ``value``,
        ``source`` (profile, header keyword, measured on master N, or default) and
        ``master`` (see :mod:`~nightlog.calibration.detector_numbers`).
    """

    frame_id: int
    frame_kind: str
    frame_path: str
    matches: list[dict[str, Any]] = field(default_factory=list)
    detector: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``nightlog match --format json``."""
        return {"frame": self.frame_id, "matches": self.matches, "detector": self.detector}


def _kind_record(kind: str, m: KindMatch) -> dict[str, Any]:
    return {
        "kind": kind,
        "chosen": None if m.chosen is None else m.chosen.id,
        "flags": "" if m.chosen is None else master_flags(m.chosen),
        "reason": m.reason,
        "second": None if m.second is None else m.second.id,
        "how": m.how,
        "temperature": None if m.temperature is None else m.temperature.as_dict(),
        "candidates": [{"master": c.master.id, "night": c.master.night.isoformat(),
                        "version": c.master.version, "usable": c.usable,
                        "flags": master_flags(c.master),
                        "hours_away": round(c.distance.total_seconds() / 3600, 3),
                        "rules": [{"rule": r.rule, "passed": r.passed, "detail": r.detail}
                                  for r in c.rules]}
                       for c in m.candidates],
    }


def explain_match(session: Session, ctx: MatchContext, frame_ref: str, *,
                  at: dt.datetime | None = None, live: bool = False) -> MatchReport:
    """Match the frame ``frame_ref`` names and say why each candidate passed or failed.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    ctx : MatchContext
        Profiles and calibration policy (a job context).
    frame_ref : str
        A frame id, or the path of a frame's file.
    at : datetime.datetime, optional
        Match as if at this time instead of the frame's own.
    live : bool
        Live mode: only masters whose inputs all precede the frame.

    Returns
    -------
    MatchReport
        The choice and the verdicts, as plain values.

    Raises
    ------
    NotFoundError
        No frame has this id or path.
    """
    frame = find_frame(session, frame_ref)
    profile = ctx.profile_of(frame)
    matches = match_frame(session, frame, profile, ctx.policy, at=at, live=live,
                          explain=True)
    bias = matches["bias"].chosen if "bias" in matches else None
    flat = matches["flat"].chosen if "flat" in matches else None
    numbers = detector_numbers(frame, profile, bias, flat)
    return MatchReport(frame_id=frame.id, frame_kind=frame.kind, frame_path=frame.path,
                       matches=[_kind_record(kind, m) for kind, m in matches.items()],
                       detector={k: v.as_dict() for k, v in numbers.items()})
