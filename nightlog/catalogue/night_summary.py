"""The facts of one observing night, for its report: what came in, what was made.

Frame counts per kind and filter, the masters built for the night with the frames
they left out, each science frame with its newest quick-look and final products
and the masters those used, and the frames whose reduction produced nothing (files
in quarantine have no night: see :mod:`nightlog.catalogue.quarantine`). Only
reads; nothing here opens a file. Functions take the caller's session and never
commit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightlog.catalogue.masters import inputs_of
from nightlog.catalogue.models import Frame, Master, MasterInput, Product, ProductMaster
from nightlog.states import FrameStatus, ProductKind, ProductStatus

__all__ = [
    "KindFilterCount",
    "MasterFacts",
    "NightFacts",
    "ProductFacts",
    "ReductionGap",
    "ScienceFacts",
    "calibration_times",
    "newest_products",
    "night_facts",
    "night_failures",
]

_ROLE_ORDER = {"bias": 0, "dark": 1, "flat": 2}


@dataclass(frozen=True, slots=True)
class KindFilterCount:
    """Latest frames of one kind and filter in a night, and their total exposure."""

    kind: str
    filter: str | None
    frames: int
    exposure_s: float


@dataclass(frozen=True, slots=True)
class MasterFacts:
    """A master of the night and the frames considered for it but rejected."""

    master: Master
    rejected: tuple[tuple[MasterInput, Frame], ...]


@dataclass(frozen=True, slots=True)
class ProductFacts:
    """A product and the masters it used, as ``(role, master)`` in the order bias, dark, flat."""

    product: Product
    masters: tuple[tuple[str, Master], ...]


@dataclass(frozen=True, slots=True)
class ScienceFacts:
    """A science frame with its newest quick-look and final products (if any)."""

    frame: Frame
    quicklook: ProductFacts | None
    final: ProductFacts | None


@dataclass(frozen=True, slots=True)
class ReductionGap:
    """A frame of the night whose reduction left no usable product, and why."""

    frame: Frame
    reason: str


@dataclass(frozen=True, slots=True)
class NightFacts:
    """Everything the catalogue knows of a night that its report shows."""

    night: dt.date
    counts: tuple[KindFilterCount, ...]
    masters: tuple[MasterFacts, ...]
    science: tuple[ScienceFacts, ...]
    failures: tuple[ReductionGap, ...]


def _counts(session: Session, night: dt.date) -> tuple[KindFilterCount, ...]:
    rows = session.execute(
        select(Frame.kind, Frame.filter, func.count(Frame.id), func.sum(Frame.exptime))
        .where(Frame.night == night, Frame.is_latest.is_(True))
        .group_by(Frame.kind, Frame.filter)
    )
    found = [KindFilterCount(kind, filt, int(n), float(total or 0.0))
             for kind, filt, n, total in rows]
    return tuple(sorted(found, key=lambda c: (c.kind, c.filter or "")))


def _masters(session: Session, night: dt.date) -> tuple[MasterFacts, ...]:
    masters = session.scalars(
        select(Master).where(Master.night == night)
        .order_by(Master.kind, Master.filter, Master.group_key, Master.version))
    ordered = sorted(masters, key=lambda m: (_ROLE_ORDER.get(m.kind, 9), m.filter or "",
                                             m.group_key, m.version))
    return tuple(MasterFacts(m, tuple((mi, f) for mi, f in inputs_of(session, m)
                                      if not mi.used))
                 for m in ordered)


def newest_products(session: Session, frame_ids: list[int]
                    ) -> dict[int, dict[str, ProductFacts]]:
    """Per frame and product kind, the newest product (a current one first) and the
    masters it used."""
    newest: dict[int, dict[str, Product]] = defaultdict(dict)
    for i in range(0, len(frame_ids), 500):
        rows = session.scalars(
            select(Product).where(Product.frame_id.in_(frame_ids[i : i + 500]))
            .order_by(Product.id))
        for p in rows:
            held = newest[p.frame_id].get(p.kind)
            if (held is None or p.status == ProductStatus.CURRENT
                    or held.status != ProductStatus.CURRENT):
                newest[p.frame_id][p.kind] = p
    wanted = [p.id for by_kind in newest.values() for p in by_kind.values()]
    used: dict[int, list[tuple[str, Master]]] = defaultdict(list)
    for i in range(0, len(wanted), 500):
        for link, master in session.execute(
                select(ProductMaster, Master).join(Master, Master.id == ProductMaster.master_id)
                .where(ProductMaster.product_id.in_(wanted[i : i + 500]))):
            used[link.product_id].append((link.role, master))
    return {
        frame_id: {kind: ProductFacts(p, tuple(sorted(
            used.get(p.id, ()), key=lambda r: (_ROLE_ORDER.get(r[0], 9), r[0]))))
            for kind, p in by_kind.items()}
        for frame_id, by_kind in newest.items()
    }


def night_failures(session: Session, night: dt.date) -> list[ReductionGap]:
    """Science frames of ``night`` that have no current product, with the reason known.

    A frame flagged bad gives its flag's reason. Any other frame without a current
    product failed, was stopped by the calibration policy, or was never reduced;
    the catalogue records no outcome for those, so the reason says so.
    """
    frames = session.scalars(
        select(Frame).where(Frame.night == night, Frame.kind == "science",
                            Frame.is_latest.is_(True))
        .where(~select(Product.id).where(Product.frame_id == Frame.id,
                                         Product.status == ProductStatus.CURRENT).exists())
        .order_by(Frame.obs_time, Frame.id))
    return [ReductionGap(f, f"frame flagged {f.status}: {f.status_reason or 'no reason given'}"
                         if f.status != FrameStatus.OK else
                         "no product: the reduction failed, was stopped or has not run")
            for f in frames]


def night_facts(session: Session, night: dt.date) -> NightFacts:
    """The facts of ``night`` (latest frame versions only)."""
    science = list(session.scalars(
        select(Frame).where(Frame.night == night, Frame.kind == "science",
                            Frame.is_latest.is_(True))
        .order_by(Frame.obs_time, Frame.id)))
    products = newest_products(session, [f.id for f in science])
    return NightFacts(
        night=night,
        counts=_counts(session, night),
        masters=_masters(session, night),
        science=tuple(ScienceFacts(f, products.get(f.id, {}).get(ProductKind.QUICKLOOK),
                                   products.get(f.id, {}).get(ProductKind.FINAL)) for f in science),
        failures=tuple(night_failures(session, night)),
    )



def calibration_times(session: Session, night: dt.date) -> list[tuple[str, dt.datetime]]:
    """``(kind, observation time)`` of every calibration frame of ``night`` (latest
    versions), in time order."""
    rows = session.execute(
        select(Frame.kind, Frame.obs_time)
        .where(Frame.night == night, Frame.kind.in_(("bias", "dark", "flat")),
               Frame.is_latest.is_(True))
        .order_by(Frame.obs_time, Frame.id)).all()
    return [(str(kind), when) for kind, when in rows]
