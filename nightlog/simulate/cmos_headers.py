"""The headers of the CMOS camera: N.I.N.A.'s card set, card for card.

The keywords, their order, comments and notations are those of the verbatim
N.I.N.A. 1.10 header of section 2a of ``shared/reference/mef_cmos_headers.md``:
strings as short as they are (``'LIGHT'``, not padded to 8), numbers ending in
column 30, ``" / "`` before the comment, doubles in C#'s notation (``30.0``,
``-10.0``, ``1.00224268436432``). BAYERPAT/XBAYROFF/YBAYROFF only for a colour
sensor (the ``cmos-colour`` camera), READOUTM only when a readout mode is named
(N.I.N.A.'s FITSHeader.cs).

Not in the verbatim header and written here by choice: ``FILTER`` (the camera has
a filter wheel) and ``OBJECT`` on lights, before ``USBLIMIT``; and, on the one
subarray frame only, ``XORGSUBF``/``YORGSUBF`` after ``YBINNING`` with MaxIm DL's
comment (N.I.N.A. writes no origin; MaxIm and APT do, in binned pixels from 0).
"""

from __future__ import annotations

import datetime as dt

from nightlog.simulate.cards import raw_card
from nightlog.simulate.night_plans import NINA_TYPES
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.zwo import CmosModel

__all__ = ["cs_double", "nina_cards"]


def cs_double(value: float) -> str:
    """A double as N.I.N.A. writes it: ``30.0``, ``-10.0``, ``4.63``, ``1.00224268436432``."""
    if value == int(value) and abs(value) < 1e15:
        return f"{value:.1f}"
    return f"{value:.15g}".upper()


def _card(key: str, value: str | int | bool | float, comment: str) -> str:
    if isinstance(value, bool):
        return raw_card(key, "T" if value else "F", comment, layout="acp")
    if isinstance(value, int):
        return raw_card(key, str(value), comment, layout="acp")
    if isinstance(value, float):
        return raw_card(key, cs_double(value), comment, layout="acp")
    return raw_card(key, "'" + value.replace("'", "''") + "'", comment, layout="acp",
                    is_string=True)


def nina_cards(cmos: CmosModel, frame: PlannedFrame, shape: tuple[int, int],
               start: dt.datetime, utc_offset_hours: int, ccd_temp: float) -> list[str]:
    """The header cards (without ``END``) of one CMOS frame.

    Parameters
    ----------
    cmos : CmosModel
    frame : PlannedFrame
        Its ``setting`` gives GAIN, OFFSET and EGAIN; its ``window`` the subarray origin.
    shape : tuple of int
        ``(NAXIS2, NAXIS1)`` of the data written.
    start : datetime.datetime
        Exposure start, UTC, to the millisecond (``DATE-OBS``).
    utc_offset_hours : int
        The capture computer's time zone (``DATE-LOC``).
    ccd_temp : float
        The sensor temperature reading, °C (written to 0.1 °C).

    Returns
    -------
    list of str
    """
    assert frame.setting is not None
    setting = cmos.settings[frame.setting]
    local = start + dt.timedelta(hours=utc_offset_hours)
    cards = [
        _card("SIMPLE", True, "C# FITS"),
        _card("BITPIX", 16, ""),
        _card("NAXIS", 2, "Dimensionality"),
        _card("NAXIS1", shape[1], ""),
        _card("NAXIS2", shape[0], ""),
        _card("BZERO", 32768, ""),
        _card("EXTEND", True, "Extensions are permitted"),
        _card("IMAGETYP", NINA_TYPES[frame.kind], "Type of exposure"),
        _card("EXPOSURE", float(frame.exptime), "[s] Exposure duration"),
        _card("EXPTIME", float(frame.exptime), "[s] Exposure duration"),
        _card("DATE-LOC", local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
              "Time of observation (local)"),
        _card("DATE-OBS", start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
              "Time of observation (UTC)"),
        _card("XBINNING", 1, "X axis binning factor"),
        _card("YBINNING", 1, "Y axis binning factor"),
    ]
    if frame.window is not None:
        cards += [_card("XORGSUBF", frame.window[0], "Subframe X position in binned pixels"),
                  _card("YORGSUBF", frame.window[1], "Subframe Y position in binned pixels")]
    if cmos.readout_mode is not None:
        cards.append(_card("READOUTM", cmos.readout_mode, "Sensor readout mode"))
    cards += [
        _card("GAIN", setting.gain, "Sensor gain"),
        _card("OFFSET", setting.offset, "Sensor gain offset"),
        _card("EGAIN", setting.egain, "[e-/ADU] Electrons per A/D unit"),
        _card("XPIXSZ", cmos.pixel_um, "[um] Pixel X axis size"),
        _card("YPIXSZ", cmos.pixel_um, "[um] Pixel Y axis size"),
        _card("INSTRUME", cmos.instrument, "Imaging instrument name"),
        _card("SET-TEMP", cmos.set_temp_c, "[degC] CCD temperature setpoint"),
        _card("CCD-TEMP", round(ccd_temp, 1) + 0.0, "[degC] CCD temperature"),
    ]
    if cmos.bayer is not None:
        # A subarray keeps the pattern's phase: its origin is even.
        cards += [_card("BAYERPAT", cmos.bayer, "Sensor Bayer pattern"),
                  _card("XBAYROFF", 0, "Bayer pattern X axis offset"),
                  _card("YBAYROFF", 0, "Bayer pattern Y axis offset")]
    if frame.filter is not None:
        cards.append(_card("FILTER", frame.filter, "Active filter name"))
    if frame.kind == "science":
        cards.append(_card("OBJECT", frame.object_name, "Name of the object of interest"))
    cards += [
        _card("USBLIMIT", cmos.usb_limit, "Camera-specific USB setting"),
        _card("ROWORDER", "TOP-DOWN", "FITS Image Orientation"),
        _card("SWCREATE", cmos.swcreate, "Software that created this file"),
    ]
    return cards
