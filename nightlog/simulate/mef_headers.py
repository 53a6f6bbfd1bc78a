"""The headers of the MEF camera: an empty primary HDU and one image extension per amplifier.

The keywords are those BANZAI reads from LCO files (``lco.py``, ``data.py``:
SITEID, INSTRUME, CCDSUM, GAIN, RDNOISE, SATURATE, DETSEC, DATASEC, BIASSEC)
with the comments ``_munge_data_cube`` gives them, plus OBSTYPE in LCO's
values (``BIAS``, ``DARK``, ``SKYFLAT``, ``EXPOSE``; the reference notes that no
raw file confirms it) and the usual time and pointing cards. The extensions
are named ``EXTNAME = 'SCI'``, ``EXTVER = 1..4`` (the Gemini convention of
section 1b, ``SCI,1..n``; BANZAI's own munged extensions carry no name).
Crosstalk coefficients are not written: BANZAI keeps defaults for old data,
and the simulated ones are in the truth. Cards use the standard fixed format.
"""

from __future__ import annotations

import numpy as np

from nightlog.simulate.cameras import CameraModel
from nightlog.simulate.cards import image_extension_cards, raw_card, value_card
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.sinistro import AMPLIFIERS, FULL_WELL_E, MefLayout
from nightlog.simulate.skytime import format_sexagesimal, julian_date

__all__ = ["OBSTYPES", "extension_cards", "primary_cards"]

OBSTYPES = {"bias": "BIAS", "dark": "DARK", "flat": "SKYFLAT", "science": "EXPOSE"}


def _card(key: str, value: str | int | bool, comment: str | None) -> str:
    return value_card(key, value, comment, layout="acp")


def _num(key: str, text: str, comment: str | None) -> str:
    return raw_card(key, text, comment, layout="acp")


def primary_cards(camera: CameraModel, frame: PlannedFrame, day_obs: str) -> list[str]:
    """The primary header (``NAXIS = 0``) of ``frame``, as 80-character card images.

    ``day_obs`` is LCO's ``DAY-OBS``, ``YYYYMMDD`` of the night's start.
    """
    start = frame.start
    stamp = start.strftime("%Y-%m-%dT%H:%M:%S") + ".000"
    cards = [
        _card("SIMPLE", True, "file does conform to FITS standard"),
        _card("BITPIX", 16, "number of bits per data pixel"),
        _card("NAXIS", 0, "number of data axes"),
        _card("EXTEND", True, "FITS dataset may contain extensions"),
        _card("ORIGIN", "LCOGT", "Organization responsible for the data"),
        _card("SITEID", "lsc", "ID code of the Observatory site"),
        _card("TELESCOP", "1m0-05", "Telescope used"),
        _card("INSTRUME", "fa15", "Instrument used"),
        _card("OBSTYPE", OBSTYPES[frame.kind], "Observation type"),
        _card("OBJECT", frame.object_name, "Object name"),
        _card("DATE-OBS", stamp, "[UTC] Start date and time of observation"),
        _card("DAY-OBS", day_obs, "[UTC] Date at start of local night"),
        _num("MJD-OBS", f"{julian_date(start) - 2400000.5:.8f}", "[UTC days] Start date/time"),
        _num("EXPTIME", f"{frame.exptime:.3f}", "[s] Exposure length"),
        _num("DARKTIME", f"{frame.darktime:.3f}", "[s] Dark current time"),
    ]
    if frame.filter is not None:
        cards.append(_card("FILTER", frame.filter, "Filter used"))
    if frame.kind == "science":
        ra = format_sexagesimal(camera.target.ra_deg / 15.0, wrap24=True, decimals=3)
        dec = format_sexagesimal(camera.target.dec_deg, decimals=2, sign=True)
        cards += [_card("RA", ra, "[HH:MM:SS.sss] RA where telescope is pointing"),
                  _card("DEC", dec, "[sDD:MM:SS.ss] Dec where telescope is pointing"),
                  _num("AIRMASS", f"{frame.airmass:.7f}", "Effective mean airmass")]
    cards += [
        _card("CCDSUM", "1 1", "CCD on-chip summing/binning"),
        _num("LATITUDE", f"{camera.latitude_deg:.7f}", "[deg North] Telescope Latitude"),
        _num("LONGITUD", f"{camera.longitude_deg:.7f}", "[deg East] Telescope Longitude"),
        _num("HEIGHT", f"{camera.altitude_m:.1f}", "[m] Altitude above sea level"),
    ]
    return cards


def extension_cards(layout: MefLayout, amp_index: int) -> list[str]:
    """The header of amplifier ``amp_index`` (0-3): its sections, gain, noise, saturation."""
    amp = AMPLIFIERS[amp_index]
    where = layout.amps[amp_index]
    ny, nx = layout.amp_shape
    gain = round(amp.gain, 3)
    return [
        *image_extension_cards(nx, ny, layout="acp"),
        _card("EXTNAME", "SCI", "Extension name"),
        _card("EXTVER", amp.extver, "Extension version: the amplifier"),
        _card("CCDSUM", "1 1", "CCD on-chip summing/binning"),
        _card("BIASSEC", where.biassec, "[binned pixel] Overscan Region"),
        _card("DATASEC", where.datasec, "[binned pixel] Data section"),
        _card("DETSEC", where.detsec, "[unbinned pixel] Detector section"),
        _num("GAIN", f"{gain:.3f}", "[electrons/count] Pixel gain"),
        _num("RDNOISE", f"{amp.read_noise_e:.2f}", "[electrons/pixel] Read noise"),
        _num("SATURATE", f"{float(np.floor(FULL_WELL_E / gain)):.1f}",
             "[ADU] Saturation level used"),
    ]
