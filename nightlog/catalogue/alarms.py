"""Detector-health alarms: a master's figure outside the normal band of its history.

The band and the judgement are :mod:`nightlog.calibration.health`'s; this module
keeps the verdicts, one row per (master, figure, amplifier), so ``nightlog status``
and the night report list them and a webhook is sent once. Functions take the
caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Alarm, Master
from nightlog.errors import NotFoundError
from nightlog.states import AlarmState

__all__ = ["NewAlarm", "acknowledge_alarm", "alarm_record", "list_alarms", "record_alarm"]


@dataclass(frozen=True, slots=True)
class NewAlarm:
    """A figure of a master outside its band: what it was and what was normal."""

    metric: str
    value: float
    uncertainty: float | None
    median: float
    low: float
    high: float
    n_points: int
    amplifier: str = ""


def record_alarm(session: Session, master: Master, alarm: NewAlarm, *,
                 now: dt.datetime | None = None) -> tuple[Alarm, bool]:
    """Record ``alarm`` of ``master`` unless it is already; the row and whether it is new."""
    row = session.scalars(select(Alarm).where(
        Alarm.master_id == master.id, Alarm.metric == alarm.metric,
        Alarm.amplifier == alarm.amplifier)).one_or_none()
    if row is not None:
        return row, False
    row = Alarm(master_id=master.id, kind=master.kind, instrument=master.instrument,
                filter=master.filter, group_key=master.group_key, night=master.night,
                metric=alarm.metric, amplifier=alarm.amplifier, value=alarm.value,
                uncertainty=alarm.uncertainty, median=alarm.median, low=alarm.low,
                high=alarm.high, n_points=alarm.n_points, state=AlarmState.OPEN,
                created_at=now or dt.datetime.now(dt.UTC))
    session.add(row)
    session.flush()
    return row, True


def list_alarms(session: Session, *, since: dt.date | None = None,
                night: dt.date | None = None, include_acknowledged: bool = False
                ) -> list[Alarm]:
    """Alarms, newest night first; open ones only unless asked."""
    stmt = select(Alarm).order_by(Alarm.night.desc(), Alarm.id)
    if not include_acknowledged:
        stmt = stmt.where(Alarm.state == AlarmState.OPEN)
    if since is not None:
        stmt = stmt.where(Alarm.night >= since)
    if night is not None:
        stmt = stmt.where(Alarm.night == night)
    return list(session.scalars(stmt))


def acknowledge_alarm(session: Session, alarm_id: int, note: str) -> Alarm:
    """Mark an alarm acknowledged, with staff's note.

    Raises
    ------
    NotFoundError
        No alarm has this id.
    """
    row = session.get(Alarm, alarm_id)
    if row is None:
        raise NotFoundError(f"no alarm {alarm_id}")
    row.state = AlarmState.ACKNOWLEDGED
    row.note = note
    return row


def alarm_record(a: Alarm) -> dict[str, object]:
    """An alarm as plain values (JSON, tables, the webhook payload)."""
    return {"id": a.id, "master": a.master_id, "kind": a.kind, "night": a.night.isoformat(),
            "instrument": a.instrument, "filter": a.filter, "metric": a.metric,
            "amplifier": a.amplifier or None, "value": a.value, "uncertainty": a.uncertainty,
            "median": a.median, "low": a.low, "high": a.high, "n_points": a.n_points,
            "state": a.state, "note": a.note, "group_key": a.group_key}
