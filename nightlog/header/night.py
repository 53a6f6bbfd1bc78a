"""The observing night a frame belongs to.

A night runs from local noon to the next local noon and is named by the date on
which it starts: at Palomar a bias at 2016-01-15 23:53 UT (15:53 PST) and a science
frame at 2016-01-16 09:47 UT (01:47 PST) both belong to night 2016-01-15.

"Local" is, in order of preference:

1. the site's IANA time zone (civil time, daylight saving included), when it has one;
2. local mean time at the site's east longitude, ``UTC + longitude / 15`` hours;
3. UTC, when the site has neither: the night then runs from 12:00 to 12:00 UTC,
   which is right for sites near longitude 180 and a fixed shift elsewhere.

Noon is far from any observing, so the choice between 1 and 2 moves no real frame
across a night boundary; it matters only for daytime calibrations near noon.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nightlog.errors import ConfigurationError, InvalidValueError
from nightlog.header.model import Site

__all__ = ["night_of", "night_start"]

_HALF_DAY = dt.timedelta(hours=12)


def _zone(site: Site) -> ZoneInfo | None:
    if site.timezone is None:
        return None
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {site.timezone!r} for the site") from exc


def _east_longitude(site: Site) -> float | None:
    lon = site.longitude_deg
    if lon is None:
        return None
    # Settings accept 0..360 east as well as -180..180; fold to -180..180.
    return lon - 360.0 if lon > 180.0 else lon


def _local_wall_time(obs_time: dt.datetime, site: Site) -> dt.datetime:
    """Naive local wall-clock time of ``obs_time`` at ``site``."""
    zone = _zone(site)
    if zone is not None:
        return obs_time.astimezone(zone).replace(tzinfo=None)
    utc = obs_time.astimezone(dt.UTC).replace(tzinfo=None)
    lon = _east_longitude(site)
    if lon is not None:
        return utc + dt.timedelta(hours=lon / 15.0)
    return utc


def night_of(obs_time: dt.datetime, site: Site) -> dt.date:
    """The night (local noon to noon) that ``obs_time`` falls in, named by its start date.

    Parameters
    ----------
    obs_time : datetime.datetime
        An instant; must be timezone-aware.
    site : Site
        Time zone and/or east longitude (degrees); the time zone wins when both are
        given, and UTC is used when neither is.

    Returns
    -------
    datetime.date
        The local date at the start of the night.

    Raises
    ------
    InvalidValueError
        ``obs_time`` is naive (its meaning would be a guess).
    ConfigurationError
        The site names an unknown time zone.
    """
    if obs_time.tzinfo is None or obs_time.utcoffset() is None:
        raise InvalidValueError(f"observation time {obs_time.isoformat()} has no time zone")
    local = _local_wall_time(obs_time, site)
    # Before local noon the frame belongs to the night that began the previous day.
    return (local - _HALF_DAY).date()


def night_start(night: dt.date, site: Site) -> dt.datetime:
    """The UTC instant at which ``night`` begins (local noon of that date).

    With a time zone, a night between two daylight-saving changes lasts 23 or 25
    real hours, but always 24 hours of local wall time.
    """
    noon = dt.datetime(night.year, night.month, night.day, 12)
    zone = _zone(site)
    if zone is not None:
        return noon.replace(tzinfo=zone).astimezone(dt.UTC)
    lon = _east_longitude(site)
    shift = dt.timedelta(hours=lon / 15.0) if lon is not None else dt.timedelta(0)
    return (noon - shift).replace(tzinfo=dt.UTC)
