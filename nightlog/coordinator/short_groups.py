"""Groups with fewer frames than their master needs, and what the policy does with them.

A group of one night short of the profile's ``min_frames`` is, in this order
(:mod:`nightlog.calibration.missing`):

1. completed with the same group's frames of the neighbouring nights within the
   profile's ``fallback_nights`` (every such night's frames): a *multi-night*
   master, which the worker checks stable (each night's own combination agrees
   with the whole within its noise) before it is written;
2. else, with at least ``provisional_min_frames`` frames, built as it is: a
   *provisional* master, whose larger uncertainty the products carry;
3. else left without a master, and said: :class:`ShortGroup` (its count, what it
   needs, what the neighbouring nights hold), listed by ``calib build``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import GroupSpec, group_of
from nightlog.calibration.missing import fallback_nights, provisional_minimum
from nightlog.catalogue.models import Frame
from nightlog.coordinator.context import JobContext
from nightlog.states import FrameStatus

__all__ = ["GroupChoice", "ShortGroup", "choose_short"]


@dataclass(frozen=True, slots=True)
class ShortGroup:
    """A group of a night with too few frames for a master, and what is missing.

    Attributes
    ----------
    group : GroupSpec
        The group.
    night : datetime.date
        Its night.
    count, needed : int
        Its usable frames, and the profile's ``min_frames``.
    missing : str
        In words: what is missing, and what the policy tried.
    """

    group: GroupSpec
    night: dt.date
    count: int
    needed: int
    missing: str

    @property
    def kind(self) -> str:
        return self.group.kind


@dataclass(frozen=True, slots=True)
class GroupChoice:
    """The frames a short group's master is built of, and its flags."""

    frames: tuple[Frame, ...]
    nights: tuple[dt.date, ...]
    multi_night: bool = False
    provisional: bool = False


def _neighbours(session: Session, ctx: JobContext, spec: GroupSpec, night: dt.date,
                span: int) -> dict[dt.date, list[Frame]]:
    """The frames of ``spec``'s group on the nights within ``span`` of ``night``."""
    lo, hi = night - dt.timedelta(days=span), night + dt.timedelta(days=span)
    found: dict[dt.date, list[Frame]] = {}
    for frame in session.scalars(
            select(Frame).where(Frame.night >= lo, Frame.night <= hi, Frame.night != night,
                                Frame.kind == spec.kind, Frame.is_latest.is_(True),
                                Frame.status == FrameStatus.OK)
            .order_by(Frame.obs_time, Frame.id)):
        if group_of(frame, spec.kind, ctx.profile_of(frame)).key == spec.key:
            found.setdefault(frame.night, []).append(frame)
    return found


def choose_short(session: Session, ctx: JobContext, spec: GroupSpec, night: dt.date,
                 members: list[Frame]) -> GroupChoice | ShortGroup:
    """What the profile's policy makes of a group ``members`` too small for a master."""
    profile = ctx.registry.get(spec.profile)
    needed = profile.min_frames.get(spec.kind, 5)
    span = fallback_nights(profile, spec.kind)
    tried: list[str] = []
    if span > 0:
        others = _neighbours(session, ctx, spec, night, span)
        total = len(members) + sum(len(v) for v in others.values())
        if others and total >= needed:
            frames = sorted([*members, *(f for v in others.values() for f in v)],
                            key=lambda f: (f.obs_time, f.id))
            return GroupChoice(tuple(frames), tuple(sorted({night, *others})),
                               multi_night=True)
        tried.append(f"{total} with the nights within {span} (fallback_nights)")
    else:
        tried.append("no fallback_nights")
    provisional = provisional_minimum(profile, spec.kind)
    if provisional is not None and len(members) >= provisional:
        return GroupChoice(tuple(members), (night,), provisional=True)
    tried.append("no provisional_min_frames" if provisional is None
                 else f"provisional_min_frames {provisional}")
    which = spec.as_dict().get("filter") if spec.kind == "flat" else None
    return ShortGroup(spec, night, len(members), needed,
                      ("" if which is None else f"filter {which}: ")
                      + f"{needed - len(members)} more {spec.kind} frame(s): "
                      f"{len(members)} of {needed} ({'; '.join(tried)})")
