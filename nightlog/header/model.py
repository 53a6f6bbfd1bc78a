"""The normalised description of one raw frame, and the observing site.

These are plain values: the catalogue stores them, the calibration manager groups
and matches on them, and nothing here reads a file or a database. A site written
as a table (the settings' ``[site]``, a profile's ``site``) becomes a :class:`Site`
through :meth:`Site.from_table` alone.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nightlog.errors import ConfigurationError
from nightlog.settings_keys import refuse_unknown

__all__ = ["FRAME_KINDS", "FrameKind", "NormalizedHeader", "Site"]

FrameKind = Literal["bias", "dark", "flat", "science", "unknown"]
FRAME_KINDS: tuple[FrameKind, ...] = ("bias", "dark", "flat", "science", "unknown")


#: The keys of a site table, and the range of each number in it.
_SITE_KEYS = ("latitude", "longitude", "name", "timezone")
_SITE_RANGES = {"latitude": (-90.0, 90.0, "degrees north"),
                "longitude": (-180.0, 360.0, "degrees east")}


@dataclass(frozen=True, slots=True)
class Site:
    """Where the telescope is, as far as the night boundary needs it.

    Either an IANA time zone name (``"America/Los_Angeles"``) or an east longitude
    in degrees (local mean time). A night runs from local noon to the next local noon
    and is named by the date on which it starts. The latitude is recorded when given;
    the night boundary does not need it.
    """

    longitude_deg: float | None = None
    timezone: str | None = None
    name: str | None = None
    latitude_deg: float | None = None

    @property
    def has_place(self) -> bool:
        """True when the site says where local noon is (a longitude or a time zone)."""
        return self.longitude_deg is not None or self.timezone is not None

    @classmethod
    def from_table(cls, table: Any, *, where: str = "site") -> Site:
        """The site a TOML table describes, validated.

        Parameters
        ----------
        table : mapping
            Keys ``longitude`` (degrees east, −180…360), ``latitude`` (degrees
            north, −90…90), ``timezone`` (an IANA name such as ``"America/Chicago"``)
            and ``name``; all optional.
        where : str
            Where the table was written (``"site"``, ``"instruments.lfc.site"``),
            for the messages.

        Returns
        -------
        Site
            A site without a place (:attr:`has_place` false) when the table
            gives neither a longitude nor a time zone.

        Raises
        ------
        ConfigurationError
            Not a table; an unknown key (the message suggests the nearest known one);
            a number that is not a finite number in its range; a name or time zone
            that is not non-empty text; a time zone this system does not know.
        """
        if not isinstance(table, Mapping):
            raise ConfigurationError(
                f"{where} must be a table such as {{ longitude = -116.86, timezone = "
                f"\"America/Los_Angeles\" }}, not {type(table).__name__}")
        refuse_unknown(table, _SITE_KEYS, where)
        numbers = {key: _site_number(table[key], f"{where}.{key}", *_SITE_RANGES[key])
                   for key in _SITE_RANGES if table.get(key) is not None}
        timezone = table.get("timezone")
        if timezone is not None:
            timezone = _site_text(timezone, f"{where}.timezone")
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigurationError(
                    f"{where}.timezone: unknown time zone {timezone!r} (give an IANA name "
                    "such as 'America/Chicago')") from None
        name = table.get("name")
        return cls(longitude_deg=numbers.get("longitude"), timezone=timezone,
                   name=None if name is None else _site_text(name, f"{where}.name"),
                   latitude_deg=numbers.get("latitude"))


def _site_number(value: Any, where: str, low: float, high: float, unit: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not low <= value <= high):
        raise ConfigurationError(f"{where} must be a number of {unit} from {low:g} to "
                                 f"{high:g}, not {value!r}")
    return float(value)


def _site_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where} must be non-empty text, not {value!r}")
    return value.strip()


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
        (instrument, detector, binning, readout mode, shape; a window's shape is
        that of the full readout at its binning).
    window : str or None
        For a subarray frame, the section of the full readout (at the frame's
        binning, 1-based) its pixels cover; ``None`` for a full frame.
    gain_setting, offset : float or None
        A CMOS camera's gain and offset *settings* (camera controls, such as
        N.I.N.A.'s ``GAIN = 120``); ``gain`` is the e-/ADU.
    bayer_pattern : str or None
        The colour filter array of a colour sensor (``'RGGB'``), upper case.
    ccd : str or None
        The CCD of a mosaic file this frame is (the profile's ``ccd`` keyword);
        ``None`` for a file of one detector.
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
    window: str | None = None
    gain_setting: float | None = None
    offset: float | None = None
    bayer_pattern: str | None = None
    ccd: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
