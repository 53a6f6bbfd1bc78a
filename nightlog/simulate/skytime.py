"""Time and sky geometry for the simulated nights: Julian dates, sidereal time, the Sun.

Low-precision formulas (Astronomical Almanac; Meeus) are enough here: they
reproduce the reference headers' sidereal times to 0.01 s and place sunset
within a minute, and they need no downloaded Earth-orientation tables (astropy's
``Time.sidereal_time`` may try to fetch IERS data, which a simulator must not do).
"""

from __future__ import annotations

import datetime as dt
import math

__all__ = [
    "altitude_azimuth",
    "format_sexagesimal",
    "gmst_hours",
    "heliocentric_correction_days",
    "julian_date",
    "local_sidereal_hours",
    "precess_ra_from_j2000",
    "sun_altitude",
    "sun_crossing",
    "tt_minus_utc_seconds",
]

_J2000 = 2451545.0
_UNIX_EPOCH_JD = 2440587.5
# Leap seconds (TAI - UTC) from these dates on; enough for nights after 2006.
_LEAP_SECONDS = ((dt.date(2006, 1, 1), 33), (dt.date(2009, 1, 1), 34),
                 (dt.date(2012, 7, 1), 35), (dt.date(2015, 7, 1), 36),
                 (dt.date(2017, 1, 1), 37))
_AU_LIGHT_DAYS = 499.004784 / 86400.0


def julian_date(when: dt.datetime) -> float:
    """Julian date (UTC) of a timezone-aware or naive-UTC datetime."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return _UNIX_EPOCH_JD + when.timestamp() / 86400.0


def gmst_hours(jd: float) -> float:
    """Greenwich mean sidereal time in hours, in ``[0, 24)``."""
    return (18.697374558 + 24.06570982441908 * (jd - _J2000)) % 24.0


def local_sidereal_hours(jd: float, longitude_deg: float) -> float:
    """Local mean sidereal time in hours for an east longitude in degrees."""
    return (gmst_hours(jd) + longitude_deg / 15.0) % 24.0


def tt_minus_utc_seconds(day: dt.date) -> float:
    """TT − UTC in seconds on ``day`` (32.184 s plus the leap seconds)."""
    leap = 32
    for start, value in _LEAP_SECONDS:
        if day >= start:
            leap = value
    return 32.184 + leap


def format_sexagesimal(value: float, *, sep: str = ":", decimals: int = 2,
                       sign: bool = False, wrap24: bool = False) -> str:
    """``12.5`` → ``'12:30:00.00'``.

    Parameters
    ----------
    value : float
        Hours or degrees.
    sep : str
        Separator between fields (``':'`` or ``' '``).
    decimals : int
        Decimals of the seconds field.
    sign : bool
        Always write a sign (``'+31 39 39.6'``); otherwise only ``'-'`` when negative.
    wrap24 : bool
        Reduce the value into ``[0, 24)`` first (right ascension, sidereal time).
    """
    if wrap24:
        value %= 24.0
    negative = value < 0
    unit = 10**decimals
    total = round(abs(value) * 3600 * unit)  # whole units of the last decimal
    if wrap24:
        total %= 24 * 3600 * unit
    whole, frac = divmod(total, unit)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    sec = f"{seconds:02d}" + (f".{frac:0{decimals}d}" if decimals else "")
    head = "-" if negative else ("+" if sign else "")
    return f"{head}{hours:02d}{sep}{minutes:02d}{sep}{sec}"


def precess_ra_from_j2000(ra_deg: float, dec_deg: float, jd: float) -> tuple[float, float]:
    """Approximate mean place of date of a J2000 position (annual-rate formula).

    Good to a few arcseconds over decades, which is all a header needs.

    Returns
    -------
    tuple of float
        ``(ra_deg, dec_deg)`` of date.
    """
    years = (jd - _J2000) / 365.25
    ra = math.radians(ra_deg)
    dec = math.radians(dec_deg)
    d_ra_s = (3.075 + 1.336 * math.sin(ra) * math.tan(dec)) * years  # seconds of time
    d_dec_as = 20.04 * math.cos(ra) * years  # arcseconds
    return (ra_deg + d_ra_s * 15.0 / 3600.0) % 360.0, dec_deg + d_dec_as / 3600.0


def _sun_ra_dec(jd: float) -> tuple[float, float, float]:
    """Sun's right ascension, declination (radians) and distance (AU)."""
    n = jd - _J2000
    mean_long = math.radians((280.460 + 0.9856474 * n) % 360.0)
    anomaly = math.radians((357.528 + 0.9856003 * n) % 360.0)
    ecl_long = mean_long + math.radians(1.915) * math.sin(anomaly) \
        + math.radians(0.020) * math.sin(2 * anomaly)
    obliquity = math.radians(23.439 - 4e-7 * n)
    ra = math.atan2(math.cos(obliquity) * math.sin(ecl_long), math.cos(ecl_long))
    dec = math.asin(math.sin(obliquity) * math.sin(ecl_long))
    distance = 1.00014 - 0.01671 * math.cos(anomaly) - 0.00014 * math.cos(2 * anomaly)
    return ra, dec, distance


def altitude_azimuth(ha_hours: float, dec_deg: float, latitude_deg: float
                     ) -> tuple[float, float]:
    """Altitude and azimuth (degrees, azimuth from north through east)."""
    ha = math.radians(ha_hours * 15.0)
    dec = math.radians(dec_deg)
    lat = math.radians(latitude_deg)
    sin_alt = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    alt = math.asin(max(-1.0, min(1.0, sin_alt)))
    az = math.atan2(-math.cos(dec) * math.sin(ha),
                    math.sin(dec) * math.cos(lat) - math.cos(dec) * math.sin(lat) * math.cos(ha))
    return math.degrees(alt), math.degrees(az) % 360.0


def sun_altitude(when: dt.datetime, longitude_deg: float, latitude_deg: float) -> float:
    """Altitude of the Sun's centre in degrees (no refraction)."""
    jd = julian_date(when)
    ra, dec, _ = _sun_ra_dec(jd)
    ha_hours = local_sidereal_hours(jd, longitude_deg) - math.degrees(ra) / 15.0
    return altitude_azimuth(ha_hours, math.degrees(dec), latitude_deg)[0]


def sun_crossing(start: dt.datetime, altitude_deg: float, longitude_deg: float,
                 latitude_deg: float, *, rising: bool, hours: float = 24.0) -> dt.datetime:
    """First time after ``start`` when the Sun crosses ``altitude_deg``.

    Scans in 10-minute steps, then bisects to one second.

    Raises
    ------
    ValueError
        No such crossing within ``hours`` (polar day or night); callers at the
        two simulated sites never meet it.
    """
    step = dt.timedelta(minutes=10)

    def above(t: dt.datetime) -> bool:
        return sun_altitude(t, longitude_deg, latitude_deg) > altitude_deg

    t0 = start
    state = above(t0)
    for _ in range(int(hours * 6)):
        t1 = t0 + step
        new = above(t1)
        if new != state and new == rising:
            lo, hi = t0, t1
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if above(mid) == rising:
                    hi = mid
                else:
                    lo = mid
            return hi.replace(microsecond=0)
        t0, state = t1, new
    raise ValueError(f"the Sun does not cross {altitude_deg}° within {hours} h of {start}")


def heliocentric_correction_days(jd: float, ra_deg: float, dec_deg: float) -> float:
    """HJD − JD for a target: the light time between Earth and the Sun along its direction."""
    sun_ra, sun_dec, distance = _sun_ra_dec(jd)
    ra = math.radians(ra_deg)
    dec = math.radians(dec_deg)
    cos_angle = (math.sin(dec) * math.sin(sun_dec)
                 + math.cos(dec) * math.cos(sun_dec) * math.cos(ra - sun_ra))
    # Earth lies opposite the Sun: light from the target reaches the Sun earlier
    # when the target is away from the Sun's direction.
    return -_AU_LIGHT_DAYS * distance * cos_angle
