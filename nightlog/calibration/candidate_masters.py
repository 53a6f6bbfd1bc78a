"""The statements that read the masters which can calibrate a frame.

Matching a frame (:mod:`nightlog.calibration.matching`) reads, for each kind it
needs, the masters nearest its time on each side, a page at a time, and those
certified over its time. Each statement is built once per shape (which conditions
apply: an instrument, a filter, live mode) with bound parameters, and the values
of one frame are passed at execution: building SQLAlchemy's statement afresh was
half of a match's time on a catalogue of years (the database's own work is a few
index lookups).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import Select, bindparam, select

from nightlog.calibration.grouping import group_fields
from nightlog.catalogue.models import Frame, Master
from nightlog.header.profiles import InstrumentProfile
from nightlog.states import MasterQuality

__all__ = ["PAGE", "Shape", "certified_masters", "scope_of", "side_masters", "window_params"]

#: Masters read at a time on each side of a frame's time.
PAGE = 4

#: Which conditions of the scope apply: the frame has an instrument; the flat's
#: filter is compared (``None``: not compared; ``"null"``: the frame has none);
#: live mode (the master complete at the frame's time).
Shape = tuple[bool, str | None, bool]


def scope_of(frame: Frame, kind: str, profile: InstrumentProfile,
             live: bool) -> tuple[Shape, dict[str, Any]]:
    """The shape of the conditions every usable ``kind`` master of ``frame`` meets,
    and their values.

    Necessary, not sufficient: the rules of
    :func:`~nightlog.calibration.matching.evaluate` still decide. They let the
    database skip masters that are bad, superseded, of another instrument or
    filter, or (live) not yet complete at the frame's time.
    """
    params: dict[str, Any] = {"kind": kind, "profile": profile.name,
                              "instrument": frame.instrument, "filter": frame.filter,
                              "obs_time": frame.obs_time}
    filter_mode = None
    if kind == "flat" and "filter" in group_fields(profile, "flat"):
        filter_mode = "null" if frame.filter is None else "equal"
    return (frame.instrument is not None, filter_mode, live), params


def _scope(shape: Shape) -> list[Any]:
    has_instrument, filter_mode, live = shape
    conds = [Master.kind == bindparam("kind"), Master.profile == bindparam("profile"),
             Master.quality == MasterQuality.GOOD, Master.superseded_by_id.is_(None)]
    if has_instrument:
        conds.append(Master.instrument == bindparam("instrument"))
    if filter_mode == "null":
        conds.append(Master.filter.is_(None))
    elif filter_mode == "equal":
        conds.append(Master.filter == bindparam("filter"))
    if live:
        conds.append(Master.last_obs <= bindparam("obs_time"))
    return conds


@functools.cache
def side_masters(shape: Shape, before: bool) -> Select[tuple[Master]]:
    """Uncertified masters of the scope on one side of ``when`` within the window
    (``lo`` to ``when``, or after ``when`` to ``hi``), nearest first, a page from
    ``offset``."""
    if before:
        conds = [Master.mid_time <= bindparam("when"), Master.mid_time >= bindparam("lo")]
        order = (Master.mid_time.desc(), Master.id)
    else:
        conds = [Master.mid_time > bindparam("when"), Master.mid_time <= bindparam("hi")]
        order = (Master.mid_time.asc(), Master.id)
    return (select(Master).where(*_scope(shape), *conds, Master.valid_from.is_(None),
                                 Master.valid_until.is_(None))
            .order_by(*order).offset(bindparam("offset")).limit(PAGE))


@functools.cache
def certified_masters(shape: Shape) -> Select[tuple[Master]]:
    """Masters of the scope certified over ``when`` (``certify_master`` always sets
    both ends of a certified range)."""
    return select(Master).where(*_scope(shape), Master.valid_from <= bindparam("when"),
                                Master.valid_until > bindparam("when"))


def window_params(when: dt.datetime, window: dt.timedelta) -> dict[str, Any]:
    """The values of a side's time bounds."""
    return {"when": when, "lo": when - window, "hi": when + window}
