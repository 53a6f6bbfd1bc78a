"""The morning reduction: the night that just ended, reduced by itself at a set time.

``[reduction] morning_at = "08:00"`` names a local time at the site (its time zone,
else local mean time at its longitude, else UTC, as for the night boundary). At
that time the night that ended is reduced: due masters built, then every science
frame reduced, by :func:`~nightlog.coordinator.night.finish_night` on the
configured workers or Dask scheduler. Because reductions are idempotent, a run
that finds the night done costs seconds, and a run that was interrupted is
finished by the next one.

Two ways to start it:

- ``nightlog watch`` calls :func:`next_morning_run` after each pass and, when the
  time has come, :func:`run_morning` (its own loop owns ``last_run``);
- a systemd timer or a cron line runs ``nightlog reduce`` (``docs/morning.md``).

:func:`next_morning_run` is pure (no clock, no catalogue), so the schedule is
tested without waiting for mornings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import BuildOutcome
from nightlog.coordinator.night import finish_night
from nightlog.coordinator.reduce import ReduceOutcome
from nightlog.errors import InvalidValueError
from nightlog.header.model import Site
from nightlog.header.night import night_of
from nightlog.notify.events import queue_morning

__all__ = ["CATCH_UP", "MorningRun", "announce_morning", "morning_night", "next_morning_run",
           "run_morning"]

_DAY = dt.timedelta(days=1)
_HALF_DAY = dt.timedelta(hours=12)

CATCH_UP = dt.timedelta(hours=12)
"""How late a missed morning run is still made up (a daemon started at 09:00 runs the
08:00 reduction at once; one started in the evening waits for the next morning)."""


def _aware(instant: dt.datetime, what: str) -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidValueError(f"{what} {instant.isoformat()} has no time zone")
    return instant.astimezone(dt.UTC)


def _local_date(instant: dt.datetime, site: Site) -> dt.date:
    # The night starting at local noon D + 12 h is named D: shifting by 12 h names
    # the local calendar date of ``instant``.
    return night_of(instant + _HALF_DAY, site)


def _instant(day: dt.date, at: dt.time, site: Site) -> dt.datetime:
    """The UTC instant of local wall time ``at`` on local date ``day`` at ``site``."""
    wall = dt.datetime.combine(day, at)
    if site.timezone is not None:
        return wall.replace(tzinfo=ZoneInfo(site.timezone)).astimezone(dt.UTC)
    lon = site.longitude_deg
    if lon is not None:
        lon = lon - 360.0 if lon > 180.0 else lon
        return (wall - dt.timedelta(hours=lon / 15.0)).replace(tzinfo=dt.UTC)
    return wall.replace(tzinfo=dt.UTC)


def morning_night(run_time: dt.datetime, site: Site) -> dt.date:
    """The night a morning run at ``run_time`` reduces: the one that began the local
    day before."""
    return _local_date(_aware(run_time, "run time"), site) - _DAY


def next_morning_run(now: dt.datetime, at: dt.time, site: Site,
                     last_run: dt.datetime | None = None, *,
                     catch_up: dt.timedelta = CATCH_UP) -> dt.datetime:
    """When the morning reduction runs next (UTC); at or before ``now`` means now.

    Parameters
    ----------
    now : datetime.datetime
        The current instant (timezone-aware).
    at : datetime.time
        Local wall time of the run at the site.
    site : Site
        Time zone or longitude that makes ``at`` local.
    last_run : datetime.datetime, optional
        When the last morning run started; ``None``: not known (a fresh daemon).
    catch_up : datetime.timedelta
        With no ``last_run``, a time passed less than this long ago is still due.

    Returns
    -------
    datetime.datetime
        The latest scheduled time at or before ``now`` when no run has covered it
        (``last_run`` before it, or unknown and within ``catch_up``), else the
        next scheduled time after ``now``.
    """
    now = _aware(now, "now")
    today = _local_date(now, site)
    slot = _instant(today, at, site)
    previous, following = ((slot, _instant(today + _DAY, at, site)) if slot <= now
                           else (_instant(today - _DAY, at, site), slot))
    if last_run is None:
        missed = now - previous <= catch_up
    else:
        missed = _aware(last_run, "last run") < previous
    return previous if missed else following


@dataclass(slots=True)
class MorningRun:
    """What a morning run did: the night, the masters built, each frame's outcome."""

    night: dt.date
    builds: list[BuildOutcome] = field(default_factory=list)
    outcomes: list[ReduceOutcome] = field(default_factory=list)


def run_morning(engine: Engine, ctx: JobContext, *, now: dt.datetime | None = None,
                night: dt.date | None = None, workers: int | None = None,
                scheduler: str | None = None, build: bool = True,
                progress: Callable[[ReduceOutcome], None] | None = None) -> MorningRun:
    """Reduce the night that ended: build its due masters, then reduce its science
    frames on the configured workers (or Dask scheduler); idempotent.

    Parameters
    ----------
    engine, ctx
        The catalogue and the job context (``ctx.site`` names the night;
        ``ctx.reduce_workers``, ``ctx.reduce_scheduler`` and ``ctx.reduce_retries``
        are the defaults).
    now : datetime.datetime, optional
        The run's time (default: the clock); the night is :func:`morning_night`.
    night : datetime.date, optional
        Reduce this night instead.
    workers, scheduler
        Override the context's defaults.
    build : bool
        Build the night's due masters first.
    progress : callable, optional
        Called with each frame's outcome.

    Raises
    ------
    ReduceInterrupted
        On Ctrl-C (a :class:`KeyboardInterrupt`); the next run finishes the night.
    """
    if night is None:
        night = morning_night(now or dt.datetime.now(dt.UTC), ctx.site)
    done = finish_night(engine, ctx, night=night, build=build, workers=workers,
                        scheduler=scheduler, progress=progress)
    return MorningRun(night=night, builds=done.builds, outcomes=done.outcomes)


def announce_morning(engine: Engine, ctx: JobContext, run: MorningRun) -> int:
    """Queue the morning's notifications (``no-master`` per missing calibration of the
    night's set-ups, then ``morning-summary``) in one transaction; the notifier sends
    them. Returns the number of missing calibrations."""
    outcomes: dict[str, int] = {}
    for o in run.outcomes:
        outcomes[str(o.status)] = outcomes.get(str(o.status), 0) + 1
    built = sum(1 for b in run.builds if b.status == "built")
    with make_sessionmaker(engine)() as session, session.begin():
        return queue_morning(session, ctx, run.night, outcomes, built)
