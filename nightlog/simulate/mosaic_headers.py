"""The headers of the mosaic camera: two CCDs of two amplifiers each, one MEF file.

The keywords follow the multi-CCD conventions of ``shared/reference/
mef_cmos_headers.md`` (sections 1b and 1c), not nightlog's own: an empty primary
HDU with ``NCCDS`` and ``NAMPS`` (NOAO Mosaic), ``DETSIZE``, ``DETID`` listing the
CCDs (GMOS), ``OBSTYPE`` in Gemini's words (``BIAS``, ``DARK``, ``FLAT``,
``OBJECT``); one image extension per amplifier named ``SCI``, ``EXTVER = 1..4``
(gprepare's ``SCI,1..n``), each with ``CCDNAME`` (its CCD), ``AMPNAME``,
``DETSEC`` (unbinned pixels of the whole mosaic), ``CCDSEC`` (pixels of its own
CCD), ``DATASEC``, ``BIASSEC``, ``CCDSUM``, ``GAIN``, ``RDNOISE`` and ``SATURATE``.

The pixels are those of the MEF camera's simulation (:mod:`nightlog.simulate.sinistro`):
its lower two amplifiers are the readout of ``CCD1``, its upper two that of
``CCD2`` (read from the top edge, so their rows run downwards), the two CCDs
abutting without a gap. No site keyword: the built-in profile names the site.
"""

from __future__ import annotations

import numpy as np

from nightlog.simulate.cameras import CameraModel
from nightlog.simulate.cards import image_extension_cards, raw_card, value_card
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.sinistro import AMPLIFIERS, FULL_WELL_E, MefLayout
from nightlog.simulate.skytime import format_sexagesimal, julian_date

__all__ = ["CCD_NAMES", "INSTRUMENT", "OBSTYPES", "ccd_of", "extension_cards",
           "primary_cards"]

OBSTYPES = {"bias": "BIAS", "dark": "DARK", "flat": "FLAT", "science": "OBJECT"}
INSTRUMENT = "MOSAIC-2X2"
CCD_NAMES = ("CCD1", "CCD2")
_AMP_LETTERS = ("A", "B", "B", "A")  # amplifier 1 and 4 on the left, 2 and 3 on the right


def ccd_of(amp_index: int) -> int:
    """The CCD (0 or 1) of amplifier ``amp_index`` (0-3): the lower two read CCD1."""
    return 0 if amp_index < 2 else 1


def _card(key: str, value: str | int | bool, comment: str | None) -> str:
    return value_card(key, value, comment, layout="acp")


def _num(key: str, text: str, comment: str | None) -> str:
    return raw_card(key, text, comment, layout="acp")


def primary_cards(camera: CameraModel, frame: PlannedFrame, layout: MefLayout) -> list[str]:
    """The primary header (``NAXIS = 0``) of ``frame``, as 80-character card images."""
    start = frame.start
    n = layout.n
    cards = [
        _card("SIMPLE", True, "file does conform to FITS standard"),
        _card("BITPIX", 16, "number of bits per data pixel"),
        _card("NAXIS", 0, "number of data axes"),
        _card("EXTEND", True, "FITS dataset may contain extensions"),
        _card("OBSERVAT", "CTIO", "Observatory"),
        _card("INSTRUME", INSTRUMENT, "Instrument used to acquire data"),
        _card("DETID", ",".join(CCD_NAMES), "Detector IDs, one per CCD"),
        _card("DETSIZE", f"[1:{2 * n},1:{2 * n}]", "Mosaic detector size"),
        _card("NCCDS", len(CCD_NAMES), "Number of CCDs"),
        _card("NAMPS", len(AMPLIFIERS), "Number of amplifiers"),
        _card("OBSTYPE", OBSTYPES[frame.kind], "Observation type"),
        _card("OBJECT", frame.object_name, "Object Name"),
        _card("DATE-OBS", start.strftime("%Y-%m-%dT%H:%M:%S") + ".000",
              "UTC start of the exposure"),
        _num("MJD-OBS", f"{julian_date(start) - 2400000.5:.8f}", "MJD of the start"),
        _num("EXPTIME", f"{frame.exptime:.3f}", "Exposure time (s)"),
        _num("DARKTIME", f"{frame.darktime:.3f}", "Dark current time (s)"),
    ]
    if frame.filter is not None:
        cards.append(_card("FILTER", frame.filter, "Filter name"))
    if frame.kind == "science":
        ra = format_sexagesimal(camera.target.ra_deg / 15.0, wrap24=True, decimals=3)
        dec = format_sexagesimal(camera.target.dec_deg, decimals=2, sign=True)
        cards += [_card("RA", ra, "Right ascension of the target"),
                  _card("DEC", dec, "Declination of the target"),
                  _num("AIRMASS", f"{frame.airmass:.7f}", "Mean airmass")]
    return cards


def _ccdsec(detsec: str, ccd: int, n: int) -> str:
    """``DETSEC`` shifted to the CCD's own pixels (the CCDs are stacked in y)."""
    xs, ys = detsec.strip("[]").split(",")
    y1, y2 = (int(v) - ccd * n for v in ys.split(":"))
    return f"[{xs},{y1}:{y2}]"


def extension_cards(layout: MefLayout, amp_index: int) -> list[str]:
    """The header of amplifier ``amp_index`` (0-3): its CCD, sections and numbers."""
    amp = AMPLIFIERS[amp_index]
    where = layout.amps[amp_index]
    ny, nx = layout.amp_shape
    ccd = ccd_of(amp_index)
    gain = round(amp.gain, 3)
    return [
        *image_extension_cards(nx, ny, layout="acp"),
        _card("EXTNAME", "SCI", "Extension name"),
        _card("EXTVER", amp.extver, "Extension version"),
        _card("CCDNAME", CCD_NAMES[ccd], "CCD name"),
        _card("AMPNAME", f"{CCD_NAMES[ccd]}-{_AMP_LETTERS[amp_index]}", "Amplifier name"),
        _card("CCDSUM", "1 1", "CCD pixel summing"),
        _card("BIASSEC", where.biassec, "Bias section (binned pixels)"),
        _card("DATASEC", where.datasec, "Data section (binned pixels)"),
        _card("DETSEC", where.detsec, "Detector section (unbinned, mosaic)"),
        _card("CCDSEC", _ccdsec(where.detsec, ccd, layout.n), "CCD section (unbinned)"),
        _num("GAIN", f"{gain:.3f}", "Amplifier gain (e-/ADU)"),
        _num("RDNOISE", f"{amp.read_noise_e:.2f}", "Read noise (e-)"),
        _num("SATURATE", f"{float(np.floor(FULL_WELL_E / gain)):.1f}",
             "Saturation level (ADU)"),
    ]
