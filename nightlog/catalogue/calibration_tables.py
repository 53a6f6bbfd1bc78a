"""The catalogue's tables of calibration: masters, their inputs, hardware fences, alarms.

``masters`` and ``master_inputs``
    Master calibrations: one row per built version of a group's master, with the
    file, its statistics, quality, validity and every frame considered as input
    (used or rejected, with the reason).
``awaiting_masters``
    The calibration frames no master lists among its inputs yet: what ``calib
    build`` looks at first, instead of every calibration frame of the archive.
``fences``
    Hardware changes (camera serviced, filter wheel changed): no master is matched
    across one, and detector-health bands restart there.
``alarms``
    A master figure outside the normal band of its history, per amplifier where
    the camera has several.

Part of the schema indexed by :mod:`nightlog.catalogue.models`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from nightlog.catalogue.table_base import Base
from nightlog.catalogue.types import HeaderText, UTCDateTime
from nightlog.states import AlarmState, MasterQuality

__all__ = ["Alarm", "AwaitingMaster", "Fence", "Master", "MasterInput"]


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


class AwaitingMaster(Base):
    """A calibration frame (bias, dark or flat) that no master lists among its inputs.

    Kept by :mod:`nightlog.catalogue.awaiting`: a row is added with the frame and
    removed by the first master that considers the frame (used or rejected). A
    frame's kind and night never change; whether it is the latest at its path and
    usable is read from the frame.
    """

    __tablename__ = "awaiting_masters"

    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id"), primary_key=True,
                                          autoincrement=False)
    night: Mapped[dt.date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(16))

    def __repr__(self) -> str:
        return f"AwaitingMaster(frame_id={self.frame_id}, night={self.night}, kind={self.kind!r})"


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
