"""The catalogue's tables of what was ingested: frames, the files refused, the nights' tallies.

``frames``
    One row per distinct file content (sha256) ever ingested, or per CCD of a
    mosaic file (``ccd`` names it; null for a file of one detector). A path
    rewritten with new bytes gets new rows with ``path_version`` + 1; the old rows
    stay, with ``is_latest`` false, so provenance that used them still resolves.
``quarantined_files``
    Files that could not be taken as frames, with the reason, when they were first
    and last seen, and how often. A file that later ingests cleanly is marked resolved.
``night_tallies``
    Latest frames per night, kind, filter and exposure time, kept as frames are
    recorded: what ``nightlog nights`` lists without reading every frame.

Part of the schema indexed by :mod:`nightlog.catalogue.models`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from nightlog.catalogue.table_base import Base
from nightlog.catalogue.types import HeaderText, UTCDateTime
from nightlog.states import FrameStatus

__all__ = ["Frame", "NightTally", "QuarantinedFile"]


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
