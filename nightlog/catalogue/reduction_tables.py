"""The catalogue's tables of what became of each science frame's reduction.

A science frame is reduced into products (made with masters, whose quality is
measured), or its reduction failed, or it is held for want of a master.

``products`` and ``product_masters``
    Reduced frames: the raw frame, each master used (by role), parameters, software
    version and checksums; a product replaced by a better one is kept.
``frame_quality``
    The quality figures of each product of a science frame (sky, sources, FWHM,
    ellipticity, saturation, cosmic rays, airmass, masters used) and the quality
    rules' verdict on them.
``reduce_failures``
    Science frames whose reduction failed after its retries, with the reason; a
    later successful reduction marks the row resolved.
``frame_holds``
    Science frames not reduced for want of a master (held until one arrives, or
    stopped by the profile's policy); resolved when the frame is reduced.

Part of the schema indexed by :mod:`nightlog.catalogue.models`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from nightlog.catalogue.table_base import Base
from nightlog.catalogue.types import UTCDateTime
from nightlog.states import ProductStatus, QualityVerdict

__all__ = ["FrameHold", "FrameQualityRow", "Product", "ProductMaster", "ReduceFailure"]


class Product(Base):
    """A reduced frame and how it was made."""

    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_frame_status", "frame_id", "status"),
        # At most one current product per frame, whatever runs record at once.
        Index("uq_products_current_frame", "frame_id", unique=True,
              sqlite_where=text("status = 'current'"),
              postgresql_where=text("status = 'current'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id"))
    kind: Mapped[str] = mapped_column(String(16))  # 'quicklook' or 'final'
    status: Mapped[str] = mapped_column(String(16), default=ProductStatus.CURRENT)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    # Recording a product looks its path up (a file written twice is one product).
    path: Mapped[str] = mapped_column(Text, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    inputs_key: Mapped[str] = mapped_column(String(64), index=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    missing_steps: Mapped[list[Any]] = mapped_column(JSON)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    software_version: Mapped[str] = mapped_column(String(32))


class ProductMaster(Base):
    """A master used by a product, in a role (bias, dark, flat)."""

    __tablename__ = "product_masters"

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"),
                                            primary_key=True)
    master_id: Mapped[int] = mapped_column(ForeignKey("masters.id"), primary_key=True,
                                           index=True)
    role: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))


class FrameQualityRow(Base):
    """The quality figures of one product of a science frame, and the rules' verdict.

    One row per product (a quick-look's row stays with it when the final product
    replaces it); the frame's quality is its current product's. Figures that could
    not be measured are ``NULL`` and ``notes`` says why; ``error`` is set when the
    measurement failed altogether.
    """

    __tablename__ = "frame_quality"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), unique=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # the product's kind
    unit: Mapped[str | None] = mapped_column(String(16))  # of sky and sky_noise
    sky: Mapped[float | None] = mapped_column(Float)
    sky_noise: Mapped[float | None] = mapped_column(Float)
    sky_e: Mapped[float | None] = mapped_column(Float)
    sky_noise_e: Mapped[float | None] = mapped_column(Float)
    n_sources: Mapped[int | None] = mapped_column(Integer)
    n_psf_stars: Mapped[int | None] = mapped_column(Integer)
    fwhm_px: Mapped[float | None] = mapped_column(Float)
    fwhm_scatter_px: Mapped[float | None] = mapped_column(Float)
    fwhm_arcsec: Mapped[float | None] = mapped_column(Float)
    ellipticity: Mapped[float | None] = mapped_column(Float)
    saturated_fraction: Mapped[float | None] = mapped_column(Float)
    cosmic_ray_pixels: Mapped[int | None] = mapped_column(Integer)
    airmass: Mapped[float | None] = mapped_column(Float)
    airmass_source: Mapped[str | None] = mapped_column(Text)
    pixel_scale_arcsec: Mapped[float | None] = mapped_column(Float)
    pixel_scale_source: Mapped[str | None] = mapped_column(Text)
    masters: Mapped[list[Any]] = mapped_column(JSON)  # [[role, master id], ...]
    notes: Mapped[list[Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)
    measured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    verdict: Mapped[str] = mapped_column(String(16), default=QualityVerdict.UNJUDGED)
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    judged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"FrameQualityRow(product_id={self.product_id}, verdict={self.verdict!r})"


class ReduceFailure(Base):
    """A science frame whose reduction failed after its retries, and why.

    One row per frame: a frame that fails again updates it (``times_failed`` + 1,
    the latest error and reason); a frame reduced later keeps the row with
    ``resolved_at`` set, so the night report can say what went wrong and was fixed.
    """

    __tablename__ = "reduce_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # product kind attempted
    attempts: Mapped[int] = mapped_column(Integer)  # tries in the run that gave up
    error: Mapped[str] = mapped_column(String(64))  # exception name
    reason: Mapped[str] = mapped_column(Text)
    inputs_key: Mapped[str | None] = mapped_column(String(64))
    first_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    times_failed: Mapped[int] = mapped_column(Integer, default=1)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    software_version: Mapped[str] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"ReduceFailure(frame_id={self.frame_id}, error={self.error!r})"


class FrameHold(Base):
    """A science frame not reduced for want of a master (the profile's ``missing``).

    ``state`` is ``held`` (waiting: reduced when a master arrives) or ``stopped``
    (the policy ``fail``); ``steps`` are the missing kinds and ``reason`` why. One
    row per frame; ``resolved_at`` is set when the frame is reduced.
    """

    __tablename__ = "frame_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    steps: Mapped[list[Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"FrameHold(frame_id={self.frame_id}, state={self.state!r})"
