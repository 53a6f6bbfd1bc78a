"""A small CMOS camera under N.I.N.A., written for the tests with astropy and numpy.

Not nightlog's simulator: the frames follow the real N.I.N.A. header quoted in
/work/shared/reference/mef_cmos_headers.md section 2a (IMAGETYP, EXPTIME and
EXPOSURE, DATE-OBS in UTC, X/YBINNING, GAIN and OFFSET as settings, EGAIN in
e-/ADU, SET-TEMP/CCD-TEMP, BAYERPAT, ROWORDER, SWCREATE, BITPIX 16 with BZERO
32768), and the physics the issue names:

* a 12-bit converter whose values are stored shifted to 16 bits (every value a
  multiple of 16);
* no overscan: the bias is a per-pixel offset pattern (a column pattern plus a
  fixed pattern of each pixel) on a pedestal set by OFFSET;
* a few random-telegraph pixels that jump between two levels from read to read;
* amplifier glow in the corner at row 0, column 0 that grows faster than
  linearly with exposure (``t**1.5``), beside a small linear dark current.

Everything is in electrons until the converter: ``stored = 16 * round(native)``
with ``native = pedestal + electrons / (EGAIN * 16)``, so EGAIN is the e- per
*stored* ADU, the unit of the data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from astropy.io import fits

SHAPE = (96, 128)
BITS = 12
STEP = 2 ** (16 - BITS)
EGAIN = 0.25            # e- per stored ADU (4 e- per 12-bit ADU)
READ_NOISE_E = 3.6
GLOW_E_AT_60S = 800.0   # corner glow after 60 s
GLOW_SCALE_PX = 15.0
GLOW_POWER = 1.5
DARK_E_PER_S = 0.01
RTN_PIXELS = ((20, 30), (40, 90), (70, 15), (85, 100), (10, 60), (55, 55))
RTN_JUMP_E = 60.0
T0 = dt.datetime(2021, 3, 2, 20, 19, 0, tzinfo=dt.UTC)


def glow_electrons(exptime: float) -> npt.NDArray[np.float64]:
    """The glow (e-) of an exposure: ``G (t / 60 s)**1.5 exp(-r / 15 px)``."""
    yy, xx = np.indices(SHAPE)
    r = np.hypot(yy, xx)
    return GLOW_E_AT_60S * (exptime / 60.0) ** GLOW_POWER * np.exp(-r / GLOW_SCALE_PX)


def corner() -> tuple[slice, slice]:
    """Where the glow is strong: the 8 x 8 pixels at the glowing corner."""
    return slice(0, 8), slice(0, 8)


@dataclass
class Camera:
    """The camera's fixed patterns (one seed: the same sensor for every frame)."""

    seed: int = 7
    gain_setting: int = 0
    offset: int = 30

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        columns = rng.normal(0.0, 2.0, SHAPE[1])
        self.pedestal = (1.6 * self.offset + columns[None, :]
                         + rng.normal(0.0, 1.5, SHAPE))  # native ADU
        self.rtn = np.zeros(SHAPE, dtype=bool)
        for y, x in RTN_PIXELS:
            self.rtn[y, x] = True
        self.count = 0

    def electrons(self, exptime: float, sky_e: float, rng: np.random.Generator
                  ) -> npt.NDArray[np.float64]:
        """Photo-electrons, dark current and glow with their Poisson noise, plus read
        noise and the telegraph pixels' jumps (e-)."""
        mean = sky_e + DARK_E_PER_S * exptime + glow_electrons(exptime)
        signal = rng.poisson(mean).astype(np.float64)
        signal += rng.normal(0.0, READ_NOISE_E, SHAPE)
        jumps = rng.random(SHAPE) < 0.5
        signal[self.rtn & jumps] += RTN_JUMP_E
        return signal

    def stored(self, electrons: npt.ArrayLike) -> npt.NDArray[np.uint16]:
        """The 12-bit conversion, stored in the high bits of 16."""
        native = self.pedestal + np.asarray(electrons) / (EGAIN * STEP)
        native = np.clip(np.round(native), 0, 2**BITS - 1)
        return (native * STEP).astype(np.uint16)

    def header(self, kind: str, exptime: float, when: dt.datetime, *, gain_setting: int,
               offset: int, set_temp: float, binning: int, readout: str | None
               ) -> fits.Header:
        """The N.I.N.A. header of the reference (section 2a), with these values."""
        h = fits.Header()
        h["IMAGETYP"] = (kind, "Type of exposure")
        h["EXPOSURE"] = (exptime, "[s] Exposure duration")
        h["EXPTIME"] = (exptime, "[s] Exposure duration")
        h["DATE-LOC"] = ((when + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23],
                         "Time of observation (local)")
        h["DATE-OBS"] = (when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23],
                         "Time of observation (UTC)")
        h["XBINNING"] = (binning, "X axis binning factor")
        h["YBINNING"] = (binning, "Y axis binning factor")
        h["GAIN"] = (gain_setting, "Sensor gain")
        h["OFFSET"] = (offset, "Sensor gain offset")
        h["EGAIN"] = (EGAIN, "[e-/ADU] Electrons per A/D unit")
        h["XPIXSZ"] = (3.8 * binning, "[um] Pixel X axis size")
        h["YPIXSZ"] = (3.8 * binning, "[um] Pixel Y axis size")
        h["INSTRUME"] = ("ZWO ASI1600MM Pro", "Imaging instrument name")
        h["SET-TEMP"] = (set_temp, "[degC] CCD temperature setpoint")
        h["CCD-TEMP"] = (set_temp, "[degC] CCD temperature")
        if readout is not None:
            h["READOUTM"] = (readout, "Sensor readout mode")
        h["USBLIMIT"] = (40, "Camera-specific USB setting")
        h["ROWORDER"] = ("TOP-DOWN", "FITS Image Orientation")
        h["SWCREATE"] = ("N.I.N.A. 1.10.2.90", "Software that created this file")
        return h

    def frame(self, kind: str, exptime: float, *, sky_e: float = 0.0, seed: int | None = None,
              when: dt.datetime | None = None, gain_setting: int | None = None,
              offset: int | None = None, set_temp: float = -10.0, binning: int = 1,
              readout: str | None = None) -> fits.HDUList:
        """One raw frame as N.I.N.A. writes it (BITPIX 16, BZERO 32768)."""
        self.count += 1
        rng = np.random.default_rng(seed if seed is not None else 1000 + self.count)
        data = self.stored(self.electrons(exptime, sky_e, rng))
        stamp = when or T0 + dt.timedelta(minutes=2 * self.count)
        header = self.header(kind, exptime, stamp,
                             gain_setting=self.gain_setting if gain_setting is None
                             else gain_setting,
                             offset=self.offset if offset is None else offset,
                             set_temp=set_temp, binning=binning, readout=readout)
        hdu = fits.PrimaryHDU(data, header)
        return fits.HDUList([hdu])

    def write(self, path: Path, kind: str, exptime: float, **kwargs: object) -> Path:
        """Write :meth:`frame` to ``path`` (uint16 stored as BITPIX 16 + BZERO 32768)."""
        self.frame(kind, exptime, **kwargs).writeto(path)  # type: ignore[arg-type]
        return path


#: A profile for the test camera: the built-in zwo_nina, for a 12-bit ASI1600.
PROFILE_TOML = """
[instruments.asi1600]
# The test camera writes EGAIN per stored ADU: it wins over the built-in
# zwo_asi1600_nina (whose table takes EGAIN as native 12-bit ADU) by priority.
priority = 1
extends = "zwo_nina"
description = "ZWO ASI1600MM Pro (12-bit CMOS) under N.I.N.A."
match_regex = { SWCREATE = "^N\\\\.I\\\\.N\\\\.A\\\\.", INSTRUME = "^ZWO ASI1600" }
bit_depth = 12
gain_table = {}
"""
