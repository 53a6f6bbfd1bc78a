"""SQLAlchemy 2 typed models of the catalogue.

Tables (later issues add masters, products and provenance, which point at
``frames.id``):

``frames``
    One row per distinct file content (sha256) ever ingested, or per CCD of a
    mosaic file (``ccd`` names it; null for a file of one detector). A path
    rewritten with new bytes gets new rows with ``path_version`` + 1; the old rows
    stay, with ``is_latest`` false, so provenance that used them still resolves.
``quarantined_files``
    Files that could not be taken as frames, with the reason, when they were first
    and last seen, and how often. A file that later ingests cleanly is marked resolved.
``masters`` and ``master_inputs``
    Master calibrations: one row per built version of a group's master, with the
    file, its statistics, quality, validity and every frame considered as input
    (used or rejected, with the reason).
``products`` and ``product_masters``
    Reduced frames: the raw frame, each master used (by role), parameters, software
    version and checksums; a product replaced by a better one is kept.
``daemons``
    Each run of a watch daemon: heartbeat, last action, backlog and counts.
``reduce_failures``
    Science frames whose reduction failed after its retries, with the reason; a
    later successful reduction marks the row resolved.
``fences``
    Hardware changes (camera serviced, filter wheel changed): no master is matched
    across one, and detector-health bands restart there.
``alarms``
    A master figure outside the normal band of its history, per amplifier where
    the camera has several.
``notifications``
    The outbox of events sent to the configured webhooks.
``frame_quality``
    The quality figures of each product of a science frame (sky, sources, FWHM,
    ellipticity, saturation, cosmic rays, airmass, masters used) and the quality
    rules' verdict on them.
``night_tallies``
    Latest frames per night, kind, filter and exposure time, kept as frames are
    recorded: what ``nightlog nights`` lists without reading every frame.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nightlog.catalogue.types import HeaderText, UTCDateTime
from nightlog.states import (
    AlarmState,
    FrameStatus,
    MasterQuality,
    NoticeState,
    ProductStatus,
    QualityVerdict,
)

__all__ = ["Alarm", "Base", "Daemon", "Fence", "Frame", "FrameHold", "FrameQualityRow", "Master",
           "MasterInput", "Notification", "Product", "ProductMaster", "QuarantinedFile",
           "ReduceFailure"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Frame(Base):
    """A raw frame: one file content, where it is, and what its header means."""

    __tablename__ = "frames"
    __table_args__ = (
        # One row per file version, or per CCD of a mosaic file's version: unique
        # (path, version) and sha256 among the rows without a CCD, unique with their
        # CCD among the others (a null never equals another, hence two indexes each).
        Index("ux_frames_path_version", "path", "path_version", unique=True,
              sqlite_where=text("ccd IS NULL"), postgresql_where=text("ccd IS NULL")),
        Index("ux_frames_path_version_ccd", "path", "path_version", "ccd", unique=True),
        Index("ux_frames_sha256", "sha256", unique=True,
              sqlite_where=text("ccd IS NULL"), postgresql_where=text("ccd IS NULL")),
        Index("ux_frames_sha256_ccd", "sha256", "ccd", unique=True),
        Index("ix_frames_night_kind", "night", "kind"),
        Index("ix_frames_setup_kind_obs", "setup_key", "kind", "obs_time"),
        # ``frames --kind --since`` and the calibration frames of a time range.
        Index("ix_frames_kind_obs_time", "kind", "obs_time"),
        # The daemon's catch-up: the science frames ingested since it last ran.
        Index("ix_frames_kind_ingested_at", "kind", "ingested_at"),
        # ``calib build``'s nights with new calibration frames, read from the index
        # alone (the rows, with their stored headers, are kilobytes each).
        Index("ix_frames_kind_status_latest_night", "kind", "status", "is_latest", "night"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Where and what the file is.
    # Looked up through ``ux_frames_path_version_ccd``, whose first column it is.
    path: Mapped[str] = mapped_column(Text)
    path_version: Mapped[int] = mapped_column(Integer, default=1)
    is_latest: Mapped[bool] = mapped_column(Boolean, default=True)
    sha256: Mapped[str] = mapped_column(String(64))
    # The CCD of a mosaic file this row is (the profile's ``ccd`` keyword, such as
    # CCDNAME); None for a file of one detector.
    ccd: Mapped[str | None] = mapped_column(HeaderText(80))
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    hdu: Mapped[int] = mapped_column(Integer, default=0)
    # Normalised header.
    profile: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    raw_type: Mapped[str | None] = mapped_column(HeaderText())
    exptime: Mapped[float | None] = mapped_column(Float)
    filter: Mapped[str | None] = mapped_column(HeaderText(80), index=True)
    obs_time: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    night: Mapped[dt.date] = mapped_column(Date)  # ix_frames_night_kind serves it
    instrument: Mapped[str | None] = mapped_column(HeaderText(80), index=True)
    detector: Mapped[str | None] = mapped_column(HeaderText(80))
    binning: Mapped[str] = mapped_column(String(16))
    readout_mode: Mapped[str | None] = mapped_column(HeaderText(80))
    # A CMOS camera's gain and offset settings (not e-/ADU), and a colour sensor's
    # Bayer pattern (migration 0008).
    gain_setting: Mapped[float | None] = mapped_column(Float)
    offset: Mapped[float | None] = mapped_column(Float)
    bayer_pattern: Mapped[str | None] = mapped_column(HeaderText(16))
    object_name: Mapped[str | None] = mapped_column(HeaderText())
    gain: Mapped[float | None] = mapped_column(Float)
    read_noise: Mapped[float | None] = mapped_column(Float)
    ccd_temp: Mapped[float | None] = mapped_column(Float)
    set_temp: Mapped[float | None] = mapped_column(Float)
    saturation: Mapped[float | None] = mapped_column(Float)
    naxis1: Mapped[int] = mapped_column(Integer)
    naxis2: Mapped[int] = mapped_column(Integer)
    datasec: Mapped[str | None] = mapped_column(HeaderText(80))
    trimsec: Mapped[str | None] = mapped_column(HeaderText(80))
    biassec: Mapped[str | None] = mapped_column(HeaderText(80))
    ccdsec: Mapped[str | None] = mapped_column(HeaderText(80))
    setup_key: Mapped[str] = mapped_column(HeaderText())  # ix_frames_setup_kind_obs serves it
    # A subarray frame: the section of the full readout (at its binning) it covers.
    window: Mapped[str | None] = mapped_column(String(80))
    # The full original header: a list of [keyword, value, comment] in file order.
    header: Mapped[list[Any]] = mapped_column(JSON)
    # A multi-amplifier (MEF) frame: its amplifiers, as AmplifierLayout.as_json();
    # None for a single-image frame.
    amplifiers: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Bookkeeping.
    status: Mapped[str] = mapped_column(String(16), default=FrameStatus.OK)
    status_reason: Mapped[str | None] = mapped_column(Text)
    ingested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    software_version: Mapped[str] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"Frame(id={self.id}, kind={self.kind!r}, path={self.path!r})"


class QuarantinedFile(Base):
    """A file that could not be ingested, and why."""

    __tablename__ = "quarantined_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    reason: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"QuarantinedFile(path={self.path!r}, error={self.error!r})"


class Master(Base):
    """A master calibration file and what it was made from."""

    __tablename__ = "masters"
    __table_args__ = (
        UniqueConstraint("group_key", "night", "version", name="uq_masters_group_night_version"),
        Index("ix_masters_kind_group_mid", "kind", "group_key", "mid_time"),
        Index("ix_masters_kind_instrument_mid", "kind", "instrument", "mid_time"),
        Index("ix_masters_kind_instrument_valid", "kind", "instrument", "valid_from"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    profile: Mapped[str] = mapped_column(String(64))
    instrument: Mapped[str | None] = mapped_column(HeaderText(80))
    setup_key: Mapped[str] = mapped_column(HeaderText())
    group_key: Mapped[str] = mapped_column(HeaderText(), index=True)
    group: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Made of subarray frames: their window (it then serves that window only).
    window: Mapped[str | None] = mapped_column(String(80))
    filter: Mapped[str | None] = mapped_column(HeaderText(80))
    set_temp: Mapped[float | None] = mapped_column(Float)
    exptime: Mapped[float | None] = mapped_column(Float)
    is_rate: Mapped[bool] = mapped_column(Boolean, default=False)
    # Combined from frames of several nights (the profile's fallback_nights), or
    # from fewer than min_frames (provisional_min_frames).
    multi_night: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    night: Mapped[dt.date] = mapped_column(Date, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    first_obs: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_obs: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    mid_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    n_frames: Mapped[int] = mapped_column(Integer)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality: Mapped[str] = mapped_column(String(16), default=MasterQuality.GOOD)
    quality_reason: Mapped[str | None] = mapped_column(Text)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("masters.id"))
    valid_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    certified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    software_version: Mapped[str] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"Master(id={self.id}, kind={self.kind!r}, night={self.night}, v{self.version})"


class MasterInput(Base):
    """A frame considered for a master: used, or rejected with the reason."""

    __tablename__ = "master_inputs"

    master_id: Mapped[int] = mapped_column(ForeignKey("masters.id", ondelete="CASCADE"),
                                           primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id"), primary_key=True,
                                          index=True)
    used: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))


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


class Daemon(Base):
    """One run of a ``nightlog watch`` daemon: its heartbeat and what it last did.

    A row is added when a daemon starts and updated at each heartbeat; a clean stop
    sets ``stopped_at``. A row whose heartbeat is older than a few intervals and was
    never stopped belongs to a daemon that died (``kill -9``, power cut).
    """

    __tablename__ = "daemons"
    __table_args__ = (Index("ix_daemons_heartbeat_at", "heartbeat_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    directories: Mapped[list[Any]] = mapped_column(JSON)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    interval_s: Mapped[float] = mapped_column(Float)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_action: Mapped[str | None] = mapped_column(Text)
    last_action_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    backlog: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    software_version: Mapped[str] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"Daemon(id={self.id}, name={self.name!r}, pid={self.pid})"


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


class Fence(Base):
    """A hardware change at an instant: masters are not matched across it.

    ``instrument`` and ``setup_key`` narrow it (``None``: every instrument, every
    set-up of the instrument).
    """

    __tablename__ = "fences"
    __table_args__ = (Index("ix_fences_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    instrument: Mapped[str | None] = mapped_column(HeaderText(80))
    setup_key: Mapped[str | None] = mapped_column(HeaderText())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"Fence(id={self.id}, at={self.at}, reason={self.reason!r})"


class Alarm(Base):
    """A master's figure outside the normal band of the masters before it."""

    __tablename__ = "alarms"
    __table_args__ = (
        UniqueConstraint("master_id", "metric", "amplifier", name="uq_alarms_master_metric"),
        Index("ix_alarms_state_night", "state", "night"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    master_id: Mapped[int] = mapped_column(ForeignKey("masters.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    instrument: Mapped[str | None] = mapped_column(HeaderText(80))
    filter: Mapped[str | None] = mapped_column(HeaderText(80))
    group_key: Mapped[str] = mapped_column(HeaderText())
    night: Mapped[dt.date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(64))
    # '' for the whole detector (a unique constraint treats NULLs as distinct).
    amplifier: Mapped[str] = mapped_column(String(32), default="")
    value: Mapped[float] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    median: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    n_points: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=AlarmState.OPEN)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"Alarm(id={self.id}, master_id={self.master_id}, metric={self.metric!r})"


class Notification(Base):
    """An event waiting to be sent (or sent) to the webhooks that want it.

    ``deliveries`` maps each webhook URL to ``"sent"`` or the last error; the row
    is ``sent`` once every webhook took it, ``failed`` once the others gave up.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=NoticeState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    deliveries: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"Notification(id={self.id}, event={self.event!r}, state={self.state!r})"


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


class NightTally(Base):
    """How many latest frames one night holds of one kind, filter and exposure time.

    Kept by :mod:`nightlog.catalogue.night_tally` as frames are added or stop being
    the latest at their path; two writers may each add a row of the same group
    (no lock is taken to prevent it), so a group's count is the sum of its rows.
    """

    __tablename__ = "night_tallies"
    # The whole group key (migration 0015): the listings read the groups in night
    # order from it, and a writer finds its group's row through it.
    __table_args__ = (Index("ix_night_tallies_group", "night", "kind", "filter", "exptime"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    filter: Mapped[str | None] = mapped_column(HeaderText(80))
    exptime: Mapped[float | None] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return (f"NightTally(night={self.night}, kind={self.kind!r}, filter={self.filter!r}, "
                f"exptime={self.exptime}, frames={self.frames})")
