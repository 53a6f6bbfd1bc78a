"""The events sent to webhooks, and the outbox rows they become.

Every event is queued in the catalogue (:mod:`nightlog.catalogue.outbox`) by the
transaction that noticed it, so it is sent once, after that transaction
committed, and survives a daemon restart. A payload is plain JSON and has a
one-line ``text`` (chat webhooks show it as the message).

============================  =======================================================
event                         when, and its payload besides ``text``
============================  =======================================================
``alarm``                     a master's figure left its normal band: ``alarm``
                              (:func:`~nightlog.catalogue.alarms.alarm_record`)
``quarantined``               a file was quarantined (first time): ``path``,
                              ``error``, ``reason``
``no-master``                 a set-up of the night has no usable master of a kind
                              (the morning run's coverage plan): ``night``,
                              ``setup``, ``kind``, ``reason``
``morning-summary``           the morning run finished: ``night``, ``reduced``,
                              ``failed``, ``masters_built``, ``alarms``, ``missing``
``daemon-stopped``            a watch daemon stopped: ``name``, ``host``, ``pid``,
                              ``counts``
``daemon-failing``            a watch daemon cannot reach the catalogue, or died of
                              an error: ``name``, ``host``, ``pid``, ``reason``
============================  =======================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from nightlog.catalogue.alarms import alarm_record, list_alarms
from nightlog.catalogue.models import Alarm
from nightlog.catalogue.outbox import queue_notification

if TYPE_CHECKING:
    from nightlog.calibration.coverage import PlanContext

__all__ = ["alarm_text", "queue_alarm", "queue_event", "queue_morning"]


def queue_event(session: Session, event: str, text: str, payload: Mapping[str, Any]) -> None:
    """Queue ``event`` in the caller's transaction (sent once it commits)."""
    queue_notification(session, event, {"text": text, **payload})


def alarm_text(a: Mapping[str, Any]) -> str:
    """One line saying what departed, by how much, and what was normal."""
    amp = f" (amplifier {a['amplifier']})" if a.get("amplifier") else ""
    flt = f", filter {a['filter']}" if a.get("filter") else ""
    err = f" ± {a['uncertainty']:.3g}" if a.get("uncertainty") is not None else ""
    return (f"{a['metric']}{amp} of {a['kind']} master {a['master']} (night {a['night']}"
            f"{flt}, {a['instrument'] or 'instrument ?'}) is {a['value']:.4g}{err}; normal "
            f"{a['low']:.4g} to {a['high']:.4g} (median {a['median']:.4g} of "
            f"{a['n_points']} masters)")


def queue_alarm(session: Session, alarm: Alarm) -> None:
    """Queue the ``alarm`` event of a new alarm row."""
    record = alarm_record(alarm)
    queue_event(session, "alarm", "nightlog alarm: " + alarm_text(record), {"alarm": record})


def queue_morning(session: Session, ctx: PlanContext, night: dt.date,
                  outcomes: Mapping[str, int], masters_built: int) -> int:
    """Queue the morning's events: one ``no-master`` per set-up and kind the night's
    coverage plan finds missing, then the ``morning-summary``. Returns the number of
    set-ups without a master."""
    # The coverage plan (and the numerical stack under it) is imported by the morning
    # run only: an alarm's text, shown by 'nightlog status', needs neither.
    from nightlog.calibration.coverage import coverage_plan

    plan = coverage_plan(session, ctx, night)
    for row in plan.missing:
        queue_event(session, "no-master",
                    f"nightlog: no usable {row.kind} master for {row.instrument} "
                    f"{row.filter or ''} {row.exptime or 0:.4g} s on night {night}: "
                    f"{row.detail}",
                    {"night": night.isoformat(), "setup": row.setup, "kind": row.kind,
                     "filter": row.filter, "exptime": row.exptime, "reason": row.detail})
    alarms = [alarm_record(a) for a in list_alarms(session, night=night)]
    done = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "no frames"
    queue_event(session, "morning-summary",
                f"nightlog: night {night} reduced ({done}); {masters_built} master(s) built; "
                f"{len(alarms)} open alarm(s); {len(plan.missing)} calibration(s) missing",
                {"night": night.isoformat(), "outcomes": dict(outcomes),
                 "masters_built": masters_built, "alarms": alarms,
                 "missing": [r.as_dict() for r in plan.missing], "todo": plan.todo})
    return len(plan.missing)
