"""The night report's detector-health part: the night's alarms and its coverage plan.

Read from the catalogue (:mod:`nightlog.catalogue.alarms`) and made by the same
matching as ``nightlog plan`` (:mod:`nightlog.calibration.coverage`), as plain
values for :class:`~nightlog.report.model.NightReport`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from nightlog.calibration.coverage import coverage_plan
from nightlog.catalogue.alarms import alarm_record, list_alarms
from nightlog.coordinator.context import JobContext
from nightlog.notify.events import alarm_text
from nightlog.report.model import AlarmEntry, CoverageEntry

__all__ = ["night_alarms", "night_coverage"]


def night_alarms(session: Session, night: dt.date) -> tuple[AlarmEntry, ...]:
    """Every alarm of the night's masters (acknowledged ones too, with their state)."""
    return tuple(AlarmEntry(id=a.id, master_id=a.master_id, state=a.state,
                            text=alarm_text(alarm_record(a))
                            + (f" — acknowledged: {a.note}" if a.note else ""))
                 for a in list_alarms(session, night=night, include_acknowledged=True))


def night_coverage(session: Session, ctx: JobContext, night: dt.date
                   ) -> tuple[tuple[CoverageEntry, ...], tuple[str, ...]]:
    """The night's set-ups against the masters serving them, and the dawn to-do."""
    plan = coverage_plan(session, ctx, night)
    return (tuple(CoverageEntry(instrument=r.instrument, filter=r.filter, exptime=r.exptime,
                                frames=r.n_frames, kind=r.kind, coverage=str(r.coverage),
                                master_id=r.master, detail=r.detail) for r in plan.rows),
            tuple(plan.todo))
