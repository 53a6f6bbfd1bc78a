"""The headers of the simulated frames, card for card as the real cameras write them.

LFC frames carry the 43 cards of the reference bias dump (``ccd.001.0.fits``)
in the same order and layout, including the unescaped ``FILTER  = 'i'      '``.
Aspen frames carry the raw MaxIm DL 6.18 + ACP keyword set of the reference
light (PinPoint's astrometric solution left out: no WCS is simulated) or, for
biases, darks and flats, the shorter set of the reference flats, followed by the
non-standard ``BIASSEC``/``TRIMSEC`` the reference dataset carries. Geometry
keywords follow the scaled frame.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from nightlog.simulate.cameras import CameraModel, Geometry
from nightlog.simulate.cards import acp_float, maximdl_float, raw_card, value_card
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.skytime import (
    altitude_azimuth,
    format_sexagesimal,
    heliocentric_correction_days,
    julian_date,
    local_sidereal_hours,
    precess_ra_from_j2000,
    tt_minus_utc_seconds,
)

__all__ = ["build_header", "lfc_filter_card"]

_LFC_TYPES = {"bias": "BIAS", "dark": "DARK", "flat": "FLATFIELD", "science": "OBJECT"}
_MAXIM_TYPES = {"bias": "BIAS", "dark": "DARK", "flat": "FLAT", "science": "LIGHT"}
_PARK_HA_HOURS = 4.0 / 3600.0  # the LFC's calibrations point at HA 00:00:04
_PARK_DEC_OF_DATE = 33.42  # near the zenith; J2000 33:22-33:25 in the reference
# ACP's site longitude is 2° off the true one; its ST and LONG-OBS use it.
_ACP_LONGITUDE = -98.453275
_CCD_TEMP_ZERO = -20.00049975  # readings are quantised in these steps
_CCD_TEMP_STEP = 0.00314325


def lfc_filter_card(name: str) -> str:
    """The LFC's raw ``FILTER`` card: ``FILTER  = 'g'      '            / Filter description``.

    The camera pads the value inside the quotes and leaves the apostrophe of
    ``g'`` unescaped; astropy reads the value back as ``g'``.
    """
    return raw_card("FILTER", "'" + name.ljust(8) + "'", "Filter description", layout="lfc",
                    is_string=True)


def _lfc_angle(value: float, *, hours: bool) -> str:
    """``' 23:44:32.40'`` / ``'-01:02:03.00'``: a sign column, blank when positive."""
    text = format_sexagesimal(value, wrap24=hours)
    return text if text.startswith("-") else " " + text


def _lfc_pointing(camera: CameraModel, frame: PlannedFrame, jd: float
                  ) -> tuple[float, float, float, float, float]:
    """RA (h, J2000), Dec (deg, J2000), HA (h), ST (h), airmass of an LFC frame."""
    st = local_sidereal_hours(jd, camera.longitude_deg)
    if frame.kind == "science":
        ra2000, dec2000 = camera.target.ra_deg, camera.target.dec_deg
        ra_date, _ = precess_ra_from_j2000(ra2000, dec2000, jd)
        ha = (st - ra_date / 15.0 + 12.0) % 24.0 - 12.0
        return ra2000 / 15.0, dec2000, ha, st, frame.airmass
    ra_date = (st - _PARK_HA_HOURS) * 15.0
    moved_ra, moved_dec = precess_ra_from_j2000(ra_date, _PARK_DEC_OF_DATE, jd)
    ra2000 = ra_date - ((moved_ra - ra_date + 180.0) % 360.0 - 180.0)
    dec2000 = _PARK_DEC_OF_DATE - (moved_dec - _PARK_DEC_OF_DATE)
    return (ra2000 % 360.0) / 15.0, dec2000, _PARK_HA_HOURS, st, 1.0


def _lfc_header(camera: CameraModel, geom: Geometry, frame: PlannedFrame) -> list[str]:
    jd = julian_date(frame.start)
    ra, dec, ha, st, airmass = _lfc_pointing(camera, frame, jd)
    date = frame.start.date().isoformat()
    ut = " " + frame.start.strftime("%H:%M:%S") + ".00"

    def card(key: str, value: str | int, comment: str | None) -> str:
        return value_card(key, value, comment, layout="lfc")

    def num(key: str, text: str, comment: str | None, width: int = 20) -> str:
        return raw_card(key, text, comment, layout="lfc", number_width=width)

    datasec = f"[1:{geom.nx_data},1:{geom.ny}]"
    return [
        num("SIMPLE", "T", "STANDARD FITS"),
        num("BITPIX", "16", "BITS/PIXEL"),
        num("NAXIS", "2", "NUMBER OF AXES"),
        num("NAXIS1", str(geom.nx), "NUMBER OF COLUMNS"),
        num("NAXIS2", str(geom.ny), "NUMBER OF ROWS"),
        num("BSCALE", "1.0000000E+00", "PHYSICAL = BSCALE * DATA + BZERO"),
        num("BZERO", "32768.", None),
        card("DATE", date, "UT Date of file creation (DD/MM/YY)"),
        card("ORIGIN", "California Institute of Technology", "Palomar Observatory"),
        num("LATITUDE", f"{camera.latitude_deg:.4f}", "Latitude (degrees N)"),
        num("LONGITUD", f"{camera.longitude_deg:.4f}", "Longitude (degrees E)"),
        card("TELESCOP", "Hale 5m Telescope", "Telescope used for observation"),
        num("FRATIO", "7.5000", "Focal ratio of telescope"),
        card("INSTRUME", "LFC", "Instrument used for observation"),
        card("DETECTOR", "SITe SI002 x 6", "Detector used for observation"),
        card("FRAME", frame.frame_number, "Frame number of observation"),
        card("CCDPICNO", frame.frame_number, "Frame number of observation"),
        card("OBJECT", frame.object_name, "Name of object"),
        card("IMAGETYP", _LFC_TYPES[frame.kind], "Type of observation"),
        num("EXPTIME", f"{frame.exptime:.3f}", "Integration time (seconds)"),
        num("DARKTIME", f"{frame.darktime:.3f}", "Dark current time (seconds)"),
        card("DATE-OBS", date, "UT Date of observation (DD/MM/YY)"),
        card("UT", ut, "Universal time (UTC) at exposure start"),
        num("JD", f"{jd:.6f}", "Julian date at exposure start", width=30),
        card("RA", _lfc_angle(ra, hours=True), "Right Ascension"),
        card("DEC", _lfc_angle(dec, hours=False), "Declination"),
        num("EQUINOX", "2000.000", "Equinox of RA and DEC"),
        num("EPOCH", "2000.000", "Equinox of RA and DEC"),
        card("HA", _lfc_angle(ha, hours=False), "Hour angle at start"),
        card("ST", _lfc_angle(st, hours=True), "Sidereal time at start"),
        num("AIRMASS", f"{airmass:.3f}", "Airmass at start"),
        lfc_filter_card(frame.filter or ""),
        num("GAIN", f"{camera.header_gain or camera.gain:.3f}", "Nominal gain (e-/ADU)"),
        num("SECPIX1", "0.182", "Arcseconds per pixel in fast dir"),
        num("SECPIX2", "0.182", "Arcseconds per pixel in slow dir"),
        card("CCDBIN1", 1, "On-chip column binning (fast dir)"),
        card("CCDBIN2", 1, "On-chip row binning (slow dir)"),
        num("ROTANGLE", "0.00", "Rotation angle (deg)"),
        card("DATASEC", datasec, "Image area of frame"),
        card("CCDSEC", datasec, "Image area relative to full chip"),
        # The camera's overscan section stops one row short of the frame.
        card("BIASSEC", f"[{geom.nx_data + 1}:{geom.nx},1:{geom.ny - 1}]",
             "Overscan area of frame"),
        card("LOGINFO", " Status=0x00000000", None),
        card("CHIPID", 0, None),
    ]


def _display_levels(data: np.ndarray, nx_data: int) -> tuple[int, int]:
    """MaxIm's 'Medium' stretch: black a little under the sky, white well above it."""
    sample = data[::8, :nx_data:8].astype(np.float32)
    median = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - median)))
    return round(median - 4 * sigma), round(median + 12 * sigma)


def _maximdl_header(camera: CameraModel, geom: Geometry, frame: PlannedFrame,
                    data: np.ndarray, rng: np.random.Generator) -> list[str]:
    jd = julian_date(frame.start)
    light = frame.kind == "science"
    set_temp = -20.0 if camera.set_temp_c is None else camera.set_temp_c
    ccd_temp = _CCD_TEMP_ZERO + (set_temp + 20.0) + _CCD_TEMP_STEP * int(rng.integers(-12, 8))
    hms = frame.start.strftime("%H:%M:%S")

    def mx(key: str, value: str | int, comment: str | None) -> str:
        return value_card(key, value, comment, layout="maximdl")

    def mxf(key: str, value: float, comment: str | None) -> str:
        return raw_card(key, maximdl_float(value), comment, layout="maximdl")

    def acp(key: str, value: str | int, comment: str | None) -> str:
        return value_card(key, value, comment, layout="acp")

    def acpf(key: str, text: str, comment: str | None) -> str:
        return raw_card(key, text, comment, layout="acp")

    cards = [
        raw_card("SIMPLE", "T", None, layout="maximdl"),
        mx("BITPIX", 16, "8 unsigned int, 16 & 32 int, -32 & -64 real"),
        mx("NAXIS", 2, "number of axes"),
        acp("NAXIS1", geom.nx, "fastest changing axis"),
        acp("NAXIS2", geom.ny, "next to fastest changing axis"),
        mxf("BSCALE", 1.0, "physical = BZERO + BSCALE*array_value"),
        mxf("BZERO", 32768.0, "physical = BZERO + BSCALE*array_value"),
        mx("DATE-OBS", frame.start.strftime("%Y-%m-%dT%H:%M:%S"),
           "YYYY-MM-DDThh:mm:ss observation start, UT"),
        acpf("EXPTIME", acp_float(frame.exptime), "[sec] Duration of exposure"),
        acpf("EXPOSURE", acp_float(frame.exptime), "[sec] Duration of exposure"),
        mxf("SET-TEMP", set_temp, "CCD temperature setpoint in C"),
        mxf("CCD-TEMP", ccd_temp, "CCD temperature at start of exposure in C"),
        mxf("XPIXSZ", 9.0, "Pixel Width in microns (after binning)"),
        mxf("YPIXSZ", 9.0, "Pixel Height in microns (after binning)"),
        acp("XBINNING", 1, "Binning level along the X-axis"),
        acp("YBINNING", 1, "Binning level along the Y-axis"),
        mx("XORGSUBF", 0, "Subframe X position in binned pixels"),
        mx("YORGSUBF", 0, "Subframe Y position in binned pixels"),
        mx("READOUTM", "Monochrome", "Readout mode of image"),
    ]
    if frame.filter is not None:
        cards.append(acp("FILTER", frame.filter, "Filter name"))
    cards.append(mx("IMAGETYP", _MAXIM_TYPES[frame.kind], "Type of image"))
    if light:
        cards.append(acpf("FOCALLEN", "3292.9", "Focal length of telescope in mm"))
    else:
        cards.append(mxf("FOCALLEN", 3200.0, "Focal length of telescope in mm"))
    cards += [
        mxf("APTDIA", 400.0, "Aperture diameter of telescope in mm"),
        mxf("APTAREA", 125663.70964050293, "Aperture area of telescope in mm^2"),
        mx("SWCREATE", "MaxIm DL Version 6.18 190601 00KPP", "Name of software"),
        mx("SWSERIAL", "00KPP-F3HN8-9JMTJ-1CE5W-A4AX5-F3", "Software serial number"),
        mx("SITELAT", "46 52 00", "Latitude of the imaging location"),
        mx("SITELONG", "-96 27 12", "Longitude of the imaging location"),
        mxf("JD", jd, "Julian Date at start of exposure"),
    ]
    if light:
        cards += _light_cards(camera, geom, frame, data, jd)
    else:
        cards += [
            acp("TELESCOP", "", "Telescope name"),
            acp("INSTRUME", "AspenCG16", "Detector instrument name"),
            acp("OBSERVER", "", "Observer name"),
            mx("NOTES", "", None),
            mx("FLIPSTAT", "", None),
            mx("SWOWNER", "Matt Craig", "Licensed owner of software"),
            *_time_cards(frame.start, hms),
        ]
    # Added when the reference dataset was prepared; not valid FITS sections.
    cards += [acp("BIASSEC", f"[{geom.nx_data}:{geom.nx}]", None),
              acp("TRIMSEC", f"[1:{geom.nx_data}, :]", None)]
    return cards


def _time_cards(start: dt.datetime, hms: str) -> list[str]:
    return [
        value_card("DATE", start.strftime("%d/%m/%y"), "[old format] UTC date of exposure start",
                   layout="acp"),
        value_card("TIME-OBS", hms, "[old format] UTC time of exposure start", layout="acp"),
        value_card("UT", hms, "[old format] UTC time of exposure start", layout="acp"),
        value_card("TIMESYS", "UTC", "Default time system", layout="acp"),
        value_card("RADECSYS", "FK5", "Equatorial coordinate system", layout="acp"),
    ]


def _light_cards(camera: CameraModel, geom: Geometry, frame: PlannedFrame, data: np.ndarray,
                 jd: float) -> list[str]:
    target = camera.target
    mid = jd + frame.exptime / 2.0 / 86400.0
    helio = heliocentric_correction_days(jd, target.ra_deg, target.dec_deg)
    bjd = jd + helio + tt_minus_utc_seconds(frame.start.date()) / 86400.0
    st = local_sidereal_hours(jd, _ACP_LONGITUDE)
    ha = (st - target.ra_deg / 15.0 + 12.0) % 24.0 - 12.0
    alt, az = altitude_azimuth(ha, target.dec_deg, camera.latitude_deg)
    black, white = _display_levels(data, geom.nx_data)
    ra_text = format_sexagesimal(target.ra_deg / 15.0, sep=" ", wrap24=True)
    dec_text = format_sexagesimal(target.dec_deg, sep=" ", decimals=1, sign=True)
    ha_text = format_sexagesimal(ha, sep=" ")
    hms = frame.start.strftime("%H:%M:%S")
    processed = (frame.start + dt.timedelta(seconds=frame.exptime + 23)).strftime(
        "%Y-%m-%dT%H:%M:%S")

    def mx(key: str, value: str | int, comment: str | None) -> str:
        return value_card(key, value, comment, layout="maximdl")

    def acp(key: str, value: str | int, comment: str | None) -> str:
        return value_card(key, value, comment, layout="acp")

    def acpf(key: str, text: str, comment: str | None) -> str:
        return raw_card(key, text, comment, layout="acp")

    return [
        raw_card("JD-HELIO", maximdl_float(mid + helio),
                 "Heliocentric Julian Date at exposure midpoint", layout="maximdl"),
        acp("OBJECT", target.name, "Target object name"),
        acp("TELESCOP", "ACP->TCSGalilHybrid.DFM.ASCOM.Telescope", "Telescope name"),
        acp("INSTRUME", "AspenCG16", "Detector instrument name"),
        acp("OBSERVER", "Observatory Operator", "Observer name"),
        mx("NOTES", "", None),
        mx("FLIPSTAT", "", None),
        mx("CSTRETCH", "Medium", "Initial display stretch mode"),
        mx("CBLACK", black, "Initial display black level in ADUs"),
        mx("CWHITE", white, "Initial display white level in ADUs"),
        mx("PEDESTAL", 0, "Correction to add for zero-based ADU"),
        mx("SWOWNER", "Matt Craig", "Licensed owner of software"),
        acpf("JD-OBS", f"{jd:.7f}", None),
        acpf("HJD-OBS", f"{jd + helio:.7f}", None),
        acpf("BJD-OBS", f"{bjd:.7f}", None),
        acpf("OBJCTAZ", f"{az:.4f}", None),
        acpf("AZIMUTH", f"{az:.4f}", None),
        acpf("OBJCTALT", f"{alt:.4f}", None),
        acpf("ALTITUDE", f"{alt:.4f}", None),
        acp("OBJCTHA", ha_text, None),
        acp("HA", ha_text, None),
        acp("READMODE", "Monochrome", None),
        f"HISTORY File was processed by PinPoint 6.1.3 at {processed}",
        *_time_cards(frame.start, hms),
        acpf("AIRMASS", acp_float(frame.airmass), "Airmass (multiple of zenithal airmass)"),
        acp("ST", format_sexagesimal(st, sep=" ", wrap24=True),
            "Local apparent sidereal time of exp. start"),
        acpf("LAT-OBS", acp_float(camera.latitude_deg), "[deg +N WGS84] Geodetic latitude"),
        acpf("LONG-OBS", acp_float(_ACP_LONGITUDE), "[deg +E WGS84] Geodetic longitude"),
        acpf("ALT-OBS", acp_float(camera.altitude_m), "[metres] Altitude above mean sea level"),
        acp("OBSERVAT", "Paul P. Feder Observatory", "Observatory name"),
        acp("RA", ra_text, "[hms J2000] Target right ascension"),
        acp("OBJCTRA", ra_text, "[hms J2000] Target right ascension"),
        acp("DEC", dec_text, "[dms +N J2000] Target declination"),
        acp("OBJCTDEC", dec_text, "[dms +N J2000] Target declination"),
    ]


def build_header(camera: CameraModel, geom: Geometry, frame: PlannedFrame, data: np.ndarray,
                 rng: np.random.Generator) -> list[str]:
    """The header cards (without ``END``) of one frame, as 80-character card images.

    Parameters
    ----------
    camera : CameraModel
    geom : Geometry
        Scaled layout; ``NAXIS*`` and the sections follow it.
    frame : PlannedFrame
    data : numpy.ndarray
        The frame's pixels (MaxIm computes its display levels from them).
    rng : numpy.random.Generator
        Draws the CCD temperature reading.

    Returns
    -------
    list of str
    """
    if camera.header_style == "lfc":
        return _lfc_header(camera, geom, frame)
    return _maximdl_header(camera, geom, frame, data, rng)
