"""Judging a new master against its group's history: the alarms it raises.

The rule is :mod:`.health`'s; this reads what it needs from the catalogue (the
group's current masters before the new one, the fences of its instrument) and
returns the figures outside their band. The caller records them.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from nightlog.calibration.health import HealthSettings, health_figures
from nightlog.catalogue.alarms import NewAlarm
from nightlog.catalogue.fences import fences_for
from nightlog.catalogue.history import group_history
from nightlog.catalogue.models import Master

__all__ = ["judge_master"]


def judge_master(session: Session, master: Master, settings: HealthSettings
                 ) -> list[NewAlarm]:
    """The figures of ``master`` outside the normal band of the masters before it.

    Only the window's worth of masters is read (``settings.window`` plus a few
    not counted: bad ones), so a catalogue of years costs one short query.
    """
    session.flush()
    history = group_history(session, master.group_key, master.mid_time,
                            limit=2 * settings.window + 1)
    if all(m.id != master.id for m in history):
        history.append(master)
    figures = health_figures(history, fences_for(session, master.instrument), settings)
    return [NewAlarm(metric=f.metric, amplifier=f.amplifier, value=f.value,
                     uncertainty=f.uncertainty, median=f.band.median, low=f.band.low,
                     high=f.band.high, n_points=f.band.n_points)
            for f in figures.get(master.id, []) if f.alarm and f.band is not None]
