"""The normalised description of one raw frame, and the observing site.

These are plain values: the catalogue stores them, the calibration manager groups
and matches on them, and nothing here reads a file or a database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FRAME_KINDS", "FrameKind", "NormalizedHeader", "Site"]

FrameKind = Literal["bias", "dark", "flat", "science", "unknown"]
FRAME_KINDS: tuple[FrameKind, ...] = ("bias", "dark", "flat", "science", "unknown")


@dataclass(frozen=True, slots=True)
class Site:
    """Where the telescope is, as far as the night boundary needs it.

    Either an IANA time zone name (``"America/Los_Angeles"``) or an east longitude
    in degrees (local mean time). A night runs from local noon to the next local noon
    and is named by the date on which it starts.
    """

    longitude_deg: float | None = None
    timezone: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class NormalizedHeader:
    """What nightlog understands of a raw frame's header.

    Attributes
    ----------
    kind : {'bias', 'dark', 'flat', 'science', 'unknown'}
        Normalised frame type; an unrecognised type is ``'unknown'``, never dropped.
    raw_type : str or None
        The raw frame-type value, stripped.
    exptime : float or None
        Exposure time in seconds (``0.0`` for a bias without one).
    filter : str or None
        Cleaned filter name, ``None`` when blank or absent.
    obs_time : datetime.datetime
        Exposure start, timezone-aware UTC.
    night : datetime.date
        The observing night (local noon to noon) the frame belongs to.
    shape : tuple of int
        Image shape in numpy order ``(ny, nx)``.
    binning : tuple of int
        ``(x, y)`` on-chip binning.
    datasec, trimsec, biassec, ccdsec : str or None
        1-based FITS sections, validated against ``shape``.
    setup_key : str
        The instrument set-up used for grouping calibrations
        (instrument, detector, binning, readout mode, shape).
    """

    profile: str
    kind: FrameKind
    raw_type: str | None
    exptime: float | None
    filter: str | None
    obs_time: dt.datetime
    night: dt.date
    shape: tuple[int, int]
    binning: tuple[int, int] = (1, 1)
    instrument: str | None = None
    detector: str | None = None
    readout_mode: str | None = None
    object_name: str | None = None
    gain: float | None = None
    read_noise: float | None = None
    ccd_temp: float | None = None
    set_temp: float | None = None
    saturation: float | None = None
    datasec: str | None = None
    trimsec: str | None = None
    biassec: str | None = None
    ccdsec: str | None = None
    setup_key: str = ""
    extra: dict[str, str] = field(default_factory=dict)
