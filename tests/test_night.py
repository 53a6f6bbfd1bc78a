"""The observing night: local noon to local noon, named by the date it starts."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import ConfigurationError, InvalidValueError
from nightlog.header.model import Site
from nightlog.header.night import night_of, night_start

UTC = dt.UTC
PALOMAR_TZ = Site(timezone="America/Los_Angeles")
PALOMAR_LON = Site(longitude_deg=-116.8647)

sites = st.sampled_from([
    Site(),
    PALOMAR_TZ,
    PALOMAR_LON,
    Site(timezone="America/Chicago"),
    Site(timezone="Pacific/Auckland"),  # daylight saving in the southern summer
    Site(timezone="Asia/Kolkata"),  # half-hour offset
    Site(longitude_deg=170.0),
    Site(longitude_deg=350.0),  # 0..360 east is accepted as -10
    Site(longitude_deg=-96.4533, timezone="America/Chicago"),
])
instants = st.datetimes(min_value=dt.datetime(1960, 1, 1), max_value=dt.datetime(2150, 1, 1),
                        timezones=st.just(UTC))


@pytest.mark.parametrize("site", [PALOMAR_TZ, PALOMAR_LON], ids=["timezone", "longitude"])
def test_palomar_bias_and_science_share_a_night(site: Site) -> None:
    bias = dt.datetime(2016, 1, 15, 23, 53, 30, tzinfo=UTC)
    science = dt.datetime(2016, 1, 16, 9, 47, 21, tzinfo=UTC)
    assert night_of(bias, site) == dt.date(2016, 1, 15)
    assert night_of(science, site) == dt.date(2016, 1, 15)


def test_utc_fallback_runs_noon_to_noon_utc() -> None:
    assert night_of(dt.datetime(2016, 1, 16, 11, 59, tzinfo=UTC), Site()) == dt.date(2016, 1, 15)
    assert night_of(dt.datetime(2016, 1, 16, 12, 0, tzinfo=UTC), Site()) == dt.date(2016, 1, 16)


def test_timezone_beats_longitude() -> None:
    # 19:20 UT is 12:20 MST (Denver, in winter) but 11:52 local mean time at -112.
    site = Site(longitude_deg=-112.0, timezone="America/Denver")
    instant = dt.datetime(2020, 1, 10, 19, 20, tzinfo=UTC)
    assert night_of(instant, site) == dt.date(2020, 1, 10)
    assert night_of(instant, Site(longitude_deg=-112.0)) == dt.date(2020, 1, 9)


def test_other_offsets_give_the_same_instant() -> None:
    utc = dt.datetime(2016, 1, 16, 9, 47, tzinfo=UTC)
    in_tokyo = utc.astimezone(ZoneInfo("Asia/Tokyo"))
    assert night_of(in_tokyo, PALOMAR_TZ) == night_of(utc, PALOMAR_TZ)


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="no time zone"):
        night_of(dt.datetime(2016, 1, 16, 9, 47), PALOMAR_TZ)


def test_unknown_timezone_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Mars/Olympus_Mons"):
        night_of(dt.datetime(2016, 1, 16, tzinfo=UTC), Site(timezone="Mars/Olympus_Mons"))


@settings(max_examples=200, deadline=None)
@given(sites, instants, st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)))
def test_night_is_monotone_in_time(site: Site, t: dt.datetime, step: dt.timedelta) -> None:
    assert night_of(t, site) <= night_of(t + step, site)


@settings(max_examples=200, deadline=None)
@given(sites, instants)
def test_an_instant_lies_inside_its_night(site: Site, t: dt.datetime) -> None:
    night = night_of(t, site)
    assert night_start(night, site) <= t < night_start(night + dt.timedelta(days=1), site)


@settings(max_examples=200, deadline=None)
@given(sites, st.dates(min_value=dt.date(1960, 1, 1), max_value=dt.date(2150, 1, 1)))
def test_a_night_spans_24_hours_of_local_time(site: Site, night: dt.date) -> None:
    start = night_start(night, site)
    end = night_start(night + dt.timedelta(days=1), site)
    if site.timezone is None:
        assert end - start == dt.timedelta(hours=24)
    else:
        zone = ZoneInfo(site.timezone)
        local_start = start.astimezone(zone).replace(tzinfo=None)
        local_end = end.astimezone(zone).replace(tzinfo=None)
        assert local_end - local_start == dt.timedelta(hours=24)
        assert local_start.time() == dt.time(12, 0)
    assert night_of(start, site) == night
    assert night_of(end - dt.timedelta(microseconds=1), site) == night


@settings(max_examples=200, deadline=None)
@given(sites, st.dates(min_value=dt.date(1960, 1, 1), max_value=dt.date(2150, 1, 1)))
def test_local_1159_and_1201_are_different_nights(site: Site, day: dt.date) -> None:
    noon = night_start(day, site)
    before = night_of(noon - dt.timedelta(minutes=1), site)
    after = night_of(noon + dt.timedelta(minutes=1), site)
    assert before == day - dt.timedelta(days=1)
    assert after == day
