"""The catalogue's listings as plain records: what ``nightlog frames``, ``calib list``
and the Python API's :class:`~nightlog.archive.Archive` show, from one query each.

Functions take the caller's session and only read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.masters import MasterFilter, master_select
from nightlog.catalogue.models import Frame, Master, Product
from nightlog.catalogue.quality import quality_of
from nightlog.catalogue.queries import FrameFilter, frame_select
from nightlog.catalogue.records import (
    FRAME_FIELDS,
    MASTER_FIELDS,
    master_record,
    record_of_values,
)
from nightlog.states import ProductStatus

__all__ = [
    "QUALITY_COLUMNS",
    "ProductFilter",
    "frame_rows",
    "iter_frame_records",
    "iter_master_records",
    "master_rows",
    "product_record",
    "product_rows",
]


#: The quality figures ``nightlog frames --show-quality`` adds to each record.
QUALITY_COLUMNS: tuple[str, ...] = (
    "fwhm_arcsec", "fwhm_px", "ellipticity", "sky_e", "sky", "n_sources",
    "saturated_fraction", "cosmic_ray_pixels", "airmass", "verdict", "reasons")


def iter_frame_records(session: Session, crit: FrameFilter, *, with_quality: bool = False,
                       chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """Records of the frames matching ``crit``, one at a time, in observation order
    (or the newest first, ``crit.newest_first``).

    Only the record's columns are read (no stored header, no catalogue objects),
    ``chunk`` rows at a time, so a listing of ten years holds one chunk in memory.

    Parameters
    ----------
    session : Session
        The caller's session (only read; the records are read while it is open).
    crit : FrameFilter
        The criteria of ``nightlog frames``.
    with_quality : bool
        Add the current product's quality figures (:data:`QUALITY_COLUMNS`; empty
        for a frame without a quality record), looked up a chunk at a time.
    chunk : int
        Rows fetched at a time.

    Yields
    ------
    dict
        One :func:`~nightlog.catalogue.records.frame_record` per frame.
    """
    stmt = frame_select(crit, *(getattr(Frame, attr) for _, attr in FRAME_FIELDS))
    result = session.connection().execute(stmt.execution_options(yield_per=chunk))
    for part in result.partitions(chunk):
        rows = [record_of_values(values) for values in part]
        if with_quality:
            quality = quality_of(session, [row["id"] for row in rows])
            for row in rows:
                record = quality.get(row["id"])
                values = {} if record is None else record.as_dict()
                for column in QUALITY_COLUMNS:
                    value = values.get(column)
                    row[column] = "; ".join(value) if isinstance(value, list) else value
        yield from rows


def frame_rows(session: Session, crit: FrameFilter, *, with_quality: bool = False
               ) -> list[dict[str, Any]]:
    """Records of the frames matching ``crit``, in observation order (or the newest
    first): :func:`iter_frame_records` as a list.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    crit : FrameFilter
        The criteria of ``nightlog frames``.
    with_quality : bool
        Add the current product's quality figures (:data:`QUALITY_COLUMNS`; empty
        for a frame without a quality record).

    Returns
    -------
    list of dict
        One :func:`~nightlog.catalogue.records.frame_record` per frame.
    """
    return list(iter_frame_records(session, crit, with_quality=with_quality))


def master_rows(session: Session, crit: MasterFilter) -> list[dict[str, Any]]:
    """Records of the masters matching ``crit``, oldest night first (or the newest):
    :func:`iter_master_records` as a list.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    crit : MasterFilter
        The criteria of ``nightlog calib list``.

    Returns
    -------
    list of dict
        One :func:`~nightlog.catalogue.records.master_record` per master.
    """
    return list(iter_master_records(session, crit))


def iter_master_records(session: Session, crit: MasterFilter, *, chunk: int = 1000
                        ) -> Iterator[dict[str, Any]]:
    """Records of the masters matching ``crit``, one at a time, the oldest night first
    (or the newest, ``crit.newest_first``), a page after ``crit.after_id``.

    Only the record's columns are read (:data:`~nightlog.catalogue.records.MASTER_FIELDS`:
    no catalogue objects), ``chunk`` rows at a time, so a listing of ten years of
    masters holds one chunk in memory.

    Parameters
    ----------
    session : Session
        The caller's session (only read; the records are read while it is open).
    crit : MasterFilter
        The criteria of ``nightlog calib list``.
    chunk : int
        Rows fetched at a time.

    Yields
    ------
    dict
        One :func:`~nightlog.catalogue.records.master_record` per master.
    """
    stmt = master_select(crit, *(getattr(Master, name) for name in MASTER_FIELDS))
    result = session.connection().execute(stmt.execution_options(yield_per=chunk))
    for part in result.partitions(chunk):
        yield from (master_record(row) for row in part)


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """Which products to list; ``None`` means any.

    ``kind`` is ``final`` or ``quicklook``; ``night`` is the night of the raw frame;
    replaced products are left out unless ``include_replaced``.
    """

    night: dt.date | None = None
    kind: str | None = None
    frame_id: int | None = None
    filter: str | None = None
    include_replaced: bool = False
    limit: int | None = None


def product_record(product: Product, frame: Frame) -> dict[str, Any]:
    """The record of a product and the raw frame it was reduced from.

    Parameters
    ----------
    product : Product
        A reduced product.
    frame : Frame
        Its raw frame.

    Returns
    -------
    dict
        Identity, file, status, the frame's night, filter, exposure, object and CCD
        (a mosaic's), and the calibration steps skipped.
    """
    return {
        "id": product.id, "frame_id": product.frame_id, "kind": product.kind,
        "status": product.status, "night": frame.night.isoformat(),
        "obs_time": frame.obs_time.isoformat(), "filter": frame.filter,
        "exptime": frame.exptime, "object": frame.object_name,
        "instrument": frame.instrument, "ccd": frame.ccd,  # a mosaic's CCD, as its frame's
        "missing_steps": ",".join(product.missing_steps or ()),
        "replaced_by": product.replaced_by_id, "path": product.path,
        "sha256": product.sha256, "size": product.size,
        "created_at": product.created_at.isoformat(),
        "software_version": product.software_version,
    }


def product_rows(session: Session, crit: ProductFilter) -> list[dict[str, Any]]:
    """Records of the products matching ``crit``, in the raw frames' observation order.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    crit : ProductFilter
        The criteria.

    Returns
    -------
    list of dict
        One :func:`product_record` per product.
    """
    stmt = select(Product, Frame).join(Frame, Frame.id == Product.frame_id)
    if not crit.include_replaced:
        stmt = stmt.where(Product.status == ProductStatus.CURRENT)
    if crit.night is not None:
        stmt = stmt.where(Frame.night == crit.night)
    if crit.kind is not None:
        stmt = stmt.where(Product.kind == crit.kind)
    if crit.frame_id is not None:
        stmt = stmt.where(Product.frame_id == crit.frame_id)
    if crit.filter is not None:
        stmt = stmt.where(Frame.filter == crit.filter)
    stmt = stmt.order_by(Frame.obs_time, Frame.id, Product.id)
    if crit.limit is not None:
        stmt = stmt.limit(crit.limit)
    return [product_record(p, f) for p, f in session.execute(stmt)]
