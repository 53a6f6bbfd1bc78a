"""The morning reduction's schedule (pure: given now, the site and the last run) and
the run itself on the simulated LFC night."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from nightlog.coordinator.context import JobContext
from nightlog.daemon.morning import (
    CATCH_UP,
    morning_night,
    next_morning_run,
    run_morning,
)
from nightlog.errors import InvalidValueError
from nightlog.header.model import Site

LA = Site(timezone="America/Los_Angeles")
EIGHT = dt.time(8, 0)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]


def test_a_fresh_daemon_before_the_time_waits_for_it() -> None:
    # 02:00 PST: the night is on; the run is at 08:00 PST = 16:00 UTC.
    assert next_morning_run(utc(2016, 1, 16, 10), EIGHT, LA) == utc(2016, 1, 16, 16)


def test_a_fresh_daemon_after_the_time_runs_at_once_the_same_day_only() -> None:
    assert next_morning_run(utc(2016, 1, 16, 17), EIGHT, LA) == utc(2016, 1, 16, 16)
    # Started in the evening (20:00 PST, 12 h after the slot): the next morning.
    assert next_morning_run(utc(2016, 1, 17, 4, 0, 1), EIGHT, LA) == utc(2016, 1, 17, 16)


def test_after_a_run_the_next_is_the_next_morning() -> None:
    ran = utc(2016, 1, 16, 16, 0, 5)
    assert next_morning_run(ran, EIGHT, LA, last_run=ran) == utc(2016, 1, 17, 16)
    # A run missed for days (daemon stopped) is made up once.
    assert next_morning_run(utc(2016, 1, 20, 23), EIGHT, LA, last_run=ran) == utc(2016, 1, 20,
                                                                                  16)


def test_daylight_saving_keeps_the_local_time() -> None:
    # Spring forward on 2016-03-13: 08:00 PDT is 15:00 UTC, the day before 16:00 UTC.
    ran = utc(2016, 3, 12, 16)
    assert next_morning_run(ran, EIGHT, LA, last_run=ran) == utc(2016, 3, 13, 15)


def test_local_mean_time_from_the_longitude_and_utc_without_either() -> None:
    palomar = Site(longitude_deg=-116.86)
    # 08:00 local mean time is 08:00 + 116.86/15 h = 15:47:26.4 UTC.
    expected = utc(2016, 1, 16, 15, 47, 26, 400000)
    assert next_morning_run(utc(2016, 1, 16, 10), EIGHT, palomar) == expected
    assert next_morning_run(utc(2016, 1, 16, 1), EIGHT, Site()) == utc(2016, 1, 16, 8)


def test_the_night_reduced_is_the_one_that_began_the_day_before() -> None:
    assert morning_night(utc(2016, 1, 16, 16), LA) == dt.date(2016, 1, 15)
    # 23:30 UTC on the 16th is still the 16th in LA; 01:00 UTC the 17th too.
    assert morning_night(utc(2016, 1, 17, 1), LA) == dt.date(2016, 1, 15)


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidValueError):
        next_morning_run(dt.datetime(2016, 1, 16, 10), EIGHT, LA)


_ZONES = ["America/Los_Angeles", "Pacific/Auckland", "Europe/Madrid", "Asia/Kolkata",
          "America/Santiago", "UTC"]


@settings(max_examples=200, deadline=None)
@given(now=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1)),
       zone=st.sampled_from(_ZONES), hour=st.integers(5, 11), minute=st.integers(0, 59),
       since=st.one_of(st.none(), st.timedeltas(dt.timedelta(0), dt.timedelta(days=3))))
def test_the_schedule_against_a_walk_over_local_days(
        now: dt.datetime, zone: str, hour: int, minute: int, since: dt.timedelta | None) -> None:
    now = now.replace(tzinfo=dt.UTC)
    at = dt.time(hour, minute)
    last_run = None if since is None else now - since
    got = next_morning_run(now, at, Site(timezone=zone), last_run)
    # Reference: every scheduled instant of the local days around now, by zoneinfo.
    tz = ZoneInfo(zone)
    local_today = now.astimezone(tz).date()
    slots = sorted(dt.datetime.combine(local_today + dt.timedelta(days=d), at, tzinfo=tz)
                   .astimezone(dt.UTC) for d in range(-4, 3))
    previous = max(s for s in slots if s <= now)
    following = min(s for s in slots if s > now)
    covered = (now - previous > CATCH_UP) if last_run is None else last_run >= previous
    assert got == (following if covered else previous)


def test_run_morning_reduces_the_night_and_then_nothing(
        archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive  # masters not built yet: the morning run builds them
    morning = utc(2016, 1, 16, 16)  # ctx.site is UTC: the night of 2016-01-15
    run = run_morning(engine, ctx, now=morning, workers=1)
    assert run.night == dt.date(2016, 1, 15)
    assert sorted(b.kind for b in run.builds if b.status == "built") == ["bias", "dark",
                                                                          "flat", "flat"]
    assert run.outcomes and {o.status for o in run.outcomes} == {"reduced"}
    again = run_morning(engine, ctx, now=morning, workers=1)
    assert {o.status for o in again.outcomes} == {"up-to-date"} and again.builds == []
