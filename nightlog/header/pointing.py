"""Where a frame looked and how finely: its plate scale and its airmass.

Plate scale (arcseconds per pixel), in this order:

1. the instrument profile's ``pixel_scale_arcsec`` (the camera's known value);
2. the header: ``PIXSCALE``, ``PIXSCAL1``/``PIXSCAL2``, ``SECPIX``,
   ``SECPIX1``/``SECPIX2`` (the mean of the two axes), then the WCS: the CD
   matrix (``√|det CD|``, in degrees) or ``CDELT1``/``CDELT2`` (degrees);
3. none: the FWHM is then given in pixels only, and the quality notes say so.

Airmass, in this order:

1. the header's ``AIRMASS``, else ``SECZ`` (a number from 1 to 40);
2. computed at mid-exposure from the site's latitude and longitude and the
   pointing (``RA``/``OBJCTRA`` and ``DEC``/``OBJCTDEC``; text is sexagesimal,
   hours for RA; a number is degrees): astropy's ``AltAz`` frame with the
   pressure set to zero (the geometric altitude, no refraction), then Hardie's
   (1962) polynomial in ``sec z``, the airmass IRAF's ``setairmass`` gives;
3. none, with the reason (no site, no pointing, the target below the horizon).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Mapping
from typing import Any

from nightlog.errors import InvalidValueError
from nightlog.header.values import parse_sexagesimal

__all__ = ["airmass_of", "hardie_airmass", "pixel_scale_of"]

_SCALE_KEYS = (("PIXSCALE",), ("PIXSCAL1", "PIXSCAL2"), ("SECPIX",), ("SECPIX1", "SECPIX2"))
_RA_KEYS = ("RA", "OBJCTRA")
_DEC_KEYS = ("DEC", "OBJCTDEC")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def pixel_scale_of(header: Mapping[str, Any], profile_scale: float | None = None,
                   profile: str = "") -> tuple[float | None, str]:
    """The plate scale (arcsec/pixel) of a frame and where it came from.

    Parameters
    ----------
    header : mapping
        The frame's header (``astropy.io.fits.Header`` or a dict of cards).
    profile_scale : float, optional
        The instrument profile's ``pixel_scale_arcsec``; it wins.
    profile : str
        The profile's name, for the source.

    Returns
    -------
    tuple
        ``(arcsec per pixel, source)``, or ``(None, why not)``.
    """
    if profile_scale is not None:
        return float(profile_scale), f"profile {profile} pixel_scale_arcsec".replace("  ", " ")
    for keys in _SCALE_KEYS:
        values = [_number(header.get(k)) for k in keys if k in header]
        values = [abs(v) for v in values if v is not None and v != 0]
        if values:
            return sum(values) / len(values), "header " + "/".join(
                k for k in keys if k in header)
    cd = [_number(header.get(k)) for k in ("CD1_1", "CD1_2", "CD2_1", "CD2_2")]
    if cd[0] is not None and cd[3] is not None:
        det = cd[0] * cd[3] - (cd[1] or 0.0) * (cd[2] or 0.0)
        if det != 0:
            return math.sqrt(abs(det)) * 3600.0, "header CD matrix"
    deltas = [_number(header.get(k)) for k in ("CDELT1", "CDELT2")]
    deltas = [abs(d) for d in deltas if d is not None and d != 0]
    if deltas:
        return sum(deltas) / len(deltas) * 3600.0, "header CDELT1/CDELT2"
    return None, "no plate scale: give pixel_scale_arcsec in the instrument profile"


def hardie_airmass(sec_z: float) -> float:
    """Hardie's (1962) airmass from ``sec z`` (the geometric zenith distance)."""
    s = sec_z - 1.0
    return sec_z - 0.0018167 * s - 0.002875 * s * s - 0.0008083 * s * s * s


def _angle(header: Mapping[str, Any], keys: tuple[str, ...], hours: bool) -> float | None:
    for key in keys:
        if key not in header:
            continue
        value = header.get(key)
        if isinstance(value, str):
            try:
                angle = parse_sexagesimal(key, value)
            except InvalidValueError:
                continue
            return angle * 15.0 if hours else angle
        number = _number(value)
        if number is not None:
            return number
    return None


def airmass_of(header: Mapping[str, Any], *, latitude_deg: float | None = None,
               longitude_deg: float | None = None, mid_time: dt.datetime | None = None
               ) -> tuple[float | None, str]:
    """The airmass of a frame and where it came from.

    Parameters
    ----------
    header : mapping
        The frame's header.
    latitude_deg, longitude_deg : float, optional
        The site (degrees north, degrees east), for computing it.
    mid_time : datetime, optional
        Mid-exposure (UTC), for computing it.

    Returns
    -------
    tuple
        ``(airmass, source)``, or ``(None, why not)``.
    """
    for key in ("AIRMASS", "SECZ"):
        value = _number(header.get(key)) if key in header else None
        if value is not None and 1.0 <= value <= 40.0:
            return value, f"header {key}"
    if latitude_deg is None or longitude_deg is None:
        return None, ("no AIRMASS in the header and no site latitude and longitude "
                      "to compute it")
    ra = _angle(header, _RA_KEYS, hours=True)
    dec = _angle(header, _DEC_KEYS, hours=False)
    if ra is None or dec is None or mid_time is None:
        return None, "no AIRMASS in the header and no RA/DEC to compute it"
    # astropy's coordinates are heavy to import: only when an airmass is computed.
    from astropy import units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    place = EarthLocation(lat=latitude_deg * u.deg, lon=longitude_deg * u.deg)
    when = Time(mid_time.astimezone(dt.UTC).replace(tzinfo=None), scale="utc")
    with iers.conf.set_temp("auto_download", False), warnings.catch_warnings():
        # Beyond the bundled Earth-orientation tables astropy warns and extrapolates;
        # a second of UT1 moves the altitude by arcseconds, nothing an airmass sees.
        warnings.simplefilter("ignore")
        altaz = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").transform_to(
            AltAz(obstime=when, location=place, pressure=0 * u.hPa))
    altitude = float(altaz.alt.deg)
    if altitude <= 3.0:
        return None, f"the pointing is {altitude:.1f}° above the horizon: no airmass"
    sec_z = 1.0 / math.sin(math.radians(altitude))
    return hardie_airmass(sec_z), "computed from the site, RA/DEC and mid-exposure time"
