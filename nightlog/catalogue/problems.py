"""A night's reduction problems, counted: frames reduced without a step, held,
stopped, failed.

A frame reduced without a calibration step (the profile's ``missing =
"reduce-without"``) has a product, but not the product a user relies on: it is a
problem as much as a frame waiting for a master (``held``), refused one
(``stopped``) or whose reduction failed. ``reduce``'s summary, ``status`` and the
night report count them alike, each with its step and reason.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.holds import holds_of_night
from nightlog.catalogue.models import Frame, Product, ReduceFailure
from nightlog.states import ProductKind, ProductStatus

__all__ = ["PROBLEM_COLUMNS", "REDUCED_WITHOUT", "ReducedWithout", "problem_counts",
           "problem_rows", "reduced_without"]

#: The word of a frame reduced without a step, beside ``held``, ``stopped``, ``failed``.
REDUCED_WITHOUT = "reduced-without"


@dataclass(frozen=True, slots=True)
class ReducedWithout:
    """A science frame whose current final product lacks calibration steps.

    Attributes
    ----------
    frame_id, path, obs_time
        The raw frame.
    product_id : int
        Its current final product.
    steps : tuple of str
        The kinds it was reduced without.
    reason : str
        Why no master matched, per step (as recorded when it was reduced).
    """

    frame_id: int
    path: str
    obs_time: dt.datetime
    product_id: int
    steps: tuple[str, ...]
    reason: str


def reduced_without(session: Session, night: dt.date) -> list[ReducedWithout]:
    """The science frames of ``night`` whose current final product lacks a step."""
    rows = session.execute(
        select(Product, Frame).join(Frame, Frame.id == Product.frame_id)
        .where(Frame.night == night, Frame.kind == "science", Frame.is_latest.is_(True),
               Product.kind == ProductKind.FINAL, Product.status == ProductStatus.CURRENT)
        .order_by(Frame.obs_time, Frame.id)).all()
    found = []
    for product, frame in rows:
        steps = tuple(str(s) for s in product.missing_steps or ())
        if not steps:
            continue
        why = (product.parameters or {}).get("missing_reasons", {})
        reason = "; ".join(f"{s}: {why.get(s, 'no reason recorded')}" for s in steps)
        found.append(ReducedWithout(frame.id, frame.path, frame.obs_time, product.id, steps,
                                    reason))
    return found


#: The fields of :func:`problem_rows` (``nightlog frames --problems``).
PROBLEM_COLUMNS = ("id", "night", "ut", "filter", "state", "steps", "reason")


def problem_rows(session: Session, night: dt.date) -> list[dict[str, Any]]:
    """One record per science frame of ``night`` with a reduction problem, in
    observation order: its ``state`` (``reduced-without``, ``held``, ``stopped`` or
    ``failed``), the ``steps`` missing and the ``reason``."""
    rows: list[tuple[dt.datetime, dict[str, Any]]] = []

    def add(frame_id: int, obs_time: dt.datetime, filt: str | None, state: str,
            steps: tuple[str, ...], reason: str) -> None:
        rows.append((obs_time, {"id": frame_id, "night": night, "ut": obs_time.strftime("%H:%M:%S"),
                                "filter": filt, "state": state, "steps": ",".join(steps),
                                "reason": reason}))

    filters = dict(session.execute(select(Frame.id, Frame.filter).where(
        Frame.night == night, Frame.kind == "science")).all())
    for w in reduced_without(session, night):
        add(w.frame_id, w.obs_time, filters.get(w.frame_id), REDUCED_WITHOUT, w.steps, w.reason)
    for h in holds_of_night(session, night):
        add(h.frame_id, h.obs_time, h.filter, str(h.state), h.steps, h.reason)
    for failure, frame in session.execute(
            select(ReduceFailure, Frame).join(Frame, Frame.id == ReduceFailure.frame_id)
            .where(Frame.night == night, ReduceFailure.resolved_at.is_(None))).all():
        add(frame.id, frame.obs_time, frame.filter, "failed", (),
            f"{failure.error}: {failure.reason}")
    return [r for _, r in sorted(rows, key=lambda t: (t[0], t[1]["id"]))]


def problem_counts(session: Session, night: dt.date) -> dict[str, int]:
    """Science frames of ``night`` with a reduction problem, by kind of problem:
    ``reduced-without``, ``held``, ``stopped``, ``failed`` (unresolved); a kind
    with none is absent."""
    counts: Counter[str] = Counter()
    counts[REDUCED_WITHOUT] = len(reduced_without(session, night))
    for hold in holds_of_night(session, night):
        counts[str(hold.state)] += 1
    counts["failed"] = len(session.scalars(
        select(ReduceFailure.id).join(Frame, Frame.id == ReduceFailure.frame_id)
        .where(Frame.night == night, ReduceFailure.resolved_at.is_(None))).all())
    return {k: v for k, v in sorted(counts.items()) if v}
