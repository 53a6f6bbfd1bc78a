"""The statements that read the masters which can calibrate a frame.

Matching a frame (:mod:`nightlog.calibration.matching`) reads, for each kind it
needs, the masters nearest its time on each side, a page at a time, and those
certified over its time. Each statement is built once per shape (which conditions
apply: an instrument, a filter, live mode) with bound parameters, and the values
of one frame are passed at execution: building SQLAlchemy's statement afresh was
half of a match's time on a catalogue of years (the database's own work is a few
index lookups). The first page of each side and the certified masters of every
kind a frame needs are read in one statement (:func:`first_candidates`): on
PostgreSQL a match was nine round trips, most of its time.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from nightlog.calibration.grouping import group_fields
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue.models import Frame, Master
from nightlog.header.profiles import InstrumentProfile
from nightlog.states import MasterQuality

__all__ = ["AFTER", "BEFORE", "CERTIFIED", "PAGE", "FirstPages", "Shape",
           "certified_masters", "first_candidates", "first_pages", "scope_of",
           "scope_params", "side_masters", "tagged_params", "window_params"]

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


def _scope(shape: Shape, tag: str = "") -> list[Any]:
    has_instrument, filter_mode, live = shape
    conds = [Master.kind == bindparam(f"kind{tag}"),
             Master.profile == bindparam(f"profile{tag}"),
             Master.quality == MasterQuality.GOOD, Master.superseded_by_id.is_(None)]
    if has_instrument:
        conds.append(Master.instrument == bindparam(f"instrument{tag}"))
    if filter_mode == "null":
        conds.append(Master.filter.is_(None))
    elif filter_mode == "equal":
        conds.append(Master.filter == bindparam(f"filter{tag}"))
    if live:
        conds.append(Master.last_obs <= bindparam(f"obs_time{tag}"))
    return conds


def _side(shape: Shape, before: bool, tag: str = "") -> Select[tuple[Master]]:
    if before:
        conds = [Master.mid_time <= bindparam(f"when{tag}"),
                 Master.mid_time >= bindparam(f"lo{tag}")]
        order = (Master.mid_time.desc(), Master.id)
    else:
        conds = [Master.mid_time > bindparam(f"when{tag}"),
                 Master.mid_time <= bindparam(f"hi{tag}")]
        order = (Master.mid_time.asc(), Master.id)
    return (select(Master).where(*_scope(shape, tag), *conds, Master.valid_from.is_(None),
                                 Master.valid_until.is_(None))
            .order_by(*order))


def _certified(shape: Shape, tag: str = "") -> Select[tuple[Master]]:
    return select(Master).where(*_scope(shape, tag),
                                Master.valid_from <= bindparam(f"when{tag}"),
                                Master.valid_until > bindparam(f"when{tag}"))


@functools.cache
def side_masters(shape: Shape, before: bool) -> Select[tuple[Master]]:
    """Uncertified masters of the scope on one side of ``when`` within the window
    (``lo`` to ``when``, or after ``when`` to ``hi``), nearest first, a page from
    ``offset``."""
    return _side(shape, before).offset(bindparam("offset")).limit(PAGE)


@functools.cache
def certified_masters(shape: Shape) -> Select[tuple[Master]]:
    """Masters of the scope certified over ``when`` (``certify_master`` always sets
    both ends of a certified range)."""
    return _certified(shape)


#: The parts of :func:`first_candidates` of each kind: the first page before the
#: frame's time, the first page after it, the certified masters.
BEFORE, AFTER, CERTIFIED = 0, 1, 2


@functools.cache
def first_candidates(shapes: tuple[Shape, ...]) -> Select[Any]:
    """For the ``i``-th scope of ``shapes``: the first page of :func:`side_masters`
    on each side and its :func:`certified_masters`, all in one statement (matching a
    frame's bias, dark and flat is one round trip to the database, not nine). Each
    row is a master and its part,
    ``3 * i +`` :data:`BEFORE`, :data:`AFTER` or :data:`CERTIFIED`; the values of
    the ``i``-th scope are named with the suffix ``_i`` (:func:`tagged_params`).
    The rows come in no order: a side's page is sorted by the caller."""
    parts = []
    for i, shape in enumerate(shapes):
        tag = f"_{i}"
        for part, stmt in ((BEFORE, _side(shape, True, tag).limit(PAGE)),
                           (AFTER, _side(shape, False, tag).limit(PAGE)),
                           (CERTIFIED, _certified(shape, tag))):
            sub = stmt.add_columns(literal(3 * i + part).label("part")).subquery()
            parts.append(select(sub))
    united = union_all(*parts).subquery()
    return select(aliased(Master, united), united.c.part)


def tagged_params(scopes: list[dict[str, Any]]) -> dict[str, Any]:
    """The values of :func:`first_candidates`' scopes, each named with its suffix."""
    return {f"{name}_{i}": value for i, params in enumerate(scopes)
            for name, value in params.items()}


def window_params(when: dt.datetime, window: dt.timedelta) -> dict[str, Any]:
    """The values of a side's time bounds."""
    return {"when": when, "lo": when - window, "hi": when + window}


#: Of one kind: the first page before the frame's time and after it (nearest
#: first), and the masters certified over it.
FirstPages = tuple[list[Master], list[Master], list[Master]]


def scope_params(frame: Frame, kind: str, profile: InstrumentProfile,
                  policy: CalibrationPolicy, when: dt.datetime, live: bool
                  ) -> tuple[Shape, dict[str, Any]]:
    """:func:`scope_of` of ``kind`` with the bounds of its validity window."""
    window = dt.timedelta(days=policy.validity_days.get(kind, 30.0))
    shape, params = scope_of(frame, kind, profile, live)
    return shape, params | window_params(when, window)


def first_pages(session: Session, frame: Frame, kinds: Sequence[str],
                 profile: InstrumentProfile, policy: CalibrationPolicy,
                 when: dt.datetime, live: bool) -> dict[str, FirstPages]:
    """The first statements of matching every kind of ``kinds`` among the nearest
    masters, as one (:func:`first_candidates`): of each kind, the first page on each
    side in the order of :func:`side_masters`, and the certified masters."""
    scopes = [scope_params(frame, kind, profile, policy, when, live) for kind in kinds]
    stmt = first_candidates(tuple(shape for shape, _ in scopes))
    parts: list[list[Master]] = [[] for _ in range(3 * len(kinds))]
    for master, part in session.execute(stmt, tagged_params([p for _, p in scopes])):
        parts[part].append(master)
    out = {}
    for i, kind in enumerate(kinds):
        before, after, certified = parts[3 * i : 3 * i + 3]
        before.sort(key=_by_id)
        before.sort(key=_by_mid_time, reverse=True)  # stable: ties by id
        after.sort(key=_by_id)
        after.sort(key=_by_mid_time)
        out[kind] = (before, after, certified)
    return out


def _by_id(m: Master) -> int:
    return m.id


def _by_mid_time(m: Master) -> dt.datetime:
    return m.mid_time
