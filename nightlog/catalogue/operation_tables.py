"""The catalogue's tables of nightlog at work: the watch daemons and the notification outbox.

``daemons``
    Each run of a watch daemon: heartbeat, last action, backlog and counts.
``notifications``
    The outbox of events sent to the configured webhooks.

Part of the schema indexed by :mod:`nightlog.catalogue.models`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nightlog.catalogue.table_base import Base
from nightlog.catalogue.types import UTCDateTime
from nightlog.states import NoticeState

__all__ = ["Daemon", "Notification"]


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
