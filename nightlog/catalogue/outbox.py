"""The notification outbox: events kept until the webhooks have taken them.

Whoever notices an event (a master with an alarm, a file quarantined, a morning
run done) adds a row in its own transaction, which costs one insert and never
waits for the network; the notifier (:mod:`nightlog.notify`) reads the pending
rows off that path and records each webhook's answer. A row is ``sent`` when
every webhook wanting it took it, ``failed`` when the rest gave up after their
retries. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Notification
from nightlog.states import NoticeState

__all__ = ["finish_delivery", "list_notifications", "pending_notifications",
           "queue_notification"]


def queue_notification(session: Session, event: str, payload: Mapping[str, Any], *,
                       now: dt.datetime | None = None) -> Notification:
    """Add an event to the outbox (JSON ``payload``)."""
    row = Notification(event=event, payload=dict(payload), state=NoticeState.PENDING,
                       attempts=0, deliveries={}, created_at=now or dt.datetime.now(dt.UTC))
    session.add(row)
    return row


def pending_notifications(session: Session, *, limit: int = 50) -> list[Notification]:
    """The oldest pending rows."""
    return list(session.scalars(select(Notification).where(
        Notification.state == NoticeState.PENDING).order_by(Notification.id).limit(limit)))


def finish_delivery(session: Session, notice_id: int, deliveries: Mapping[str, str],
                    state: NoticeState, *, now: dt.datetime | None = None) -> None:
    """Record one delivery attempt of a row: each webhook's answer and the new state."""
    row = session.get(Notification, notice_id)
    if row is None:
        return
    row.attempts += 1
    row.deliveries = {**(row.deliveries or {}), **deliveries}
    row.state = state
    if state == NoticeState.SENT:
        row.sent_at = now or dt.datetime.now(dt.UTC)


def list_notifications(session: Session, *, event: str | None = None) -> list[Notification]:
    """Every row (of ``event``), oldest first."""
    stmt = select(Notification).order_by(Notification.id)
    if event is not None:
        stmt = stmt.where(Notification.event == event)
    return list(session.scalars(stmt))
