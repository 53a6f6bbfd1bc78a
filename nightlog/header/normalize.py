"""Raw FITS header + instrument profile -> :class:`NormalizedHeader`.

:func:`normalize_header` is pure: it reads nothing but its arguments. It refuses a
header it cannot describe with a :class:`~nightlog.errors.HeaderError` subclass whose
message names the keyword and shows its value. The rules:

* **frame type**: the first of the profile's type keywords holding text (numbers such
  as the LFC's ``FRAME = 1`` frame counter are skipped), looked up in the profile's
  vocabulary ignoring case, spaces, ``_`` and ``-``; anything else is ``'unknown'``
  (the raw value is kept), as is a header with no type at all.
* **exposure time** (s): negative, NaN or infinite is invalid; absent is ``0.0`` for a
  bias and an error for every other kind.
* **names** (filter, instrument, detector, readout mode): at most 80 characters.
* **filter**: stripped text, primes kept (the LFC's ``g'`` is an SDSS name); blank,
  absent or one of the profile's ``no_filter_values`` (``NONE``, ``NoFilt``...) is
  ``None``. ``CLEAR`` and ``OPEN`` are real wheel positions and stay names.
* **observation start** (UTC): a full ISO date keyword; else a date-only one plus a
  time keyword; else MJD; else JD. Unparsable -> invalid; none -> missing; a year
  outside 1950..2200 -> invalid.
* **night**: see :mod:`nightlog.header.night`; the site is the profile's, else the
  ``site`` argument, else a longitude keyword of the header, else UTC.
* **shape**, **binning** and **sections**: see :mod:`nightlog.header.geometry`.
* **CMOS settings**: the gain setting and offset are numbers read from the
  profile's ``gain_setting_keywords`` and ``offset_keywords`` (a setting of 0 is a
  setting, never an e-/ADU); the e-/ADU is the profile's ``gain``, else its
  ``gain_table`` entry for the setting, else the header's ``gain_keywords``
  (EGAIN). A header GAIN of 0 read as e-/ADU is refused with the fix in the message.
* **bit depth**: without a saturation in profile or header, a profile's
  ``bit_depth`` gives it: ``(2**bits - 1) * 2**(16 - bits)`` ADU.
* **bias from darks**: a dark no longer than the profile's ``bias_max_exptime``
  is a bias (the note says so).
* **Bayer pattern**: ``BAYERPAT`` upper-cased, with X/YBAYROFF noted.
* **window**: a subarray frame's place on the detector, as the profile's
  ``window_source`` says (see :mod:`nightlog.header.window`); its set-up key has
  the shape of the full readout at its binning, so that it finds full-frame masters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from nightlog.errors import InvalidValueError, MissingKeywordError
from nightlog.header.geometry import frame_binning, frame_section, frame_shape
from nightlog.header.model import FrameKind, NormalizedHeader, Site
from nightlog.header.night import night_of
from nightlog.header.profiles.model import InstrumentProfile
from nightlog.header.sensor import (
    bayer_pattern,
    e_per_adu,
    header_number,
    number_with_override,
    saturation_level,
)
from nightlog.header.values import (
    HeaderView,
    check_plausible,
    describe,
    jd_to_datetime,
    mjd_to_datetime,
    parse_date,
    parse_float,
    parse_sexagesimal,
    parse_time_of_day,
    text_value,
)
from nightlog.header.window import data_offset, frame_window, full_readout

__all__ = ["MAX_NAME_LENGTH", "normalize_header", "setup_key"]

#: Longest filter, instrument, detector or readout-mode name. They make up set-up
#: keys and are catalogued as names; a longer one (a long-string ``CONTINUE`` value)
#: is a corrupt header, refused rather than cut.
MAX_NAME_LENGTH = 80

_ABSOLUTE_ZERO_C = -273.15


def _names(keywords: tuple[str, ...]) -> str:
    return ", ".join(keywords) if keywords else "(none configured)"


def _frame_kind(view: HeaderView, profile: InstrumentProfile) -> tuple[str | None, FrameKind]:
    for keyword in profile.type_keywords:
        value = view.get(keyword)
        if isinstance(value, str):
            raw = text_value(value)
            return raw, profile.classify(raw)  # type: ignore[return-value]
    return None, "unknown"


def _exptime(view: HeaderView, profile: InstrumentProfile, kind: str,
             extra: dict[str, str]) -> float:
    found = view.first(profile.exptime_keywords)
    if found is None:
        if kind == "bias":
            extra["exptime"] = "absent; 0 s for a bias"
            return 0.0
        raise MissingKeywordError(
            f"no exposure time for a {kind} frame: none of {_names(profile.exptime_keywords)} "
            "is present"
        )
    keyword, value = found
    seconds = parse_float(keyword, value)
    if seconds < 0:
        raise InvalidValueError(f"{keyword}={describe(value)}: exposure time is negative")
    return seconds


def _filter(view: HeaderView, profile: InstrumentProfile, extra: dict[str, str]) -> str | None:
    found = view.first(profile.filter_keywords)
    if found is None:
        return None
    keyword, value = found
    name = _checked_name(keyword, value, text_value(value))
    if name is None:
        return None
    blanks = {" ".join(v.split()).casefold() for v in profile.no_filter_values}
    if name.casefold() in blanks:
        extra["filter"] = f"{keyword}={describe(value)} means no filter"
        return None
    return name


def _obs_time(view: HeaderView, profile: InstrumentProfile,
              extra: dict[str, str]) -> dt.datetime:
    date = view.first(profile.date_keywords)
    if date is not None:
        keyword, value = date
        stamp, has_time = parse_date(keyword, value, profile.date_formats)
        if has_time:
            extra["time_source"] = keyword
            return check_plausible(keyword, value, stamp)
        clock = view.first(profile.time_keywords)
        if clock is not None:
            t_key, t_value = clock
            extra["time_source"] = f"{keyword}+{t_key}"
            return check_plausible(keyword, value, stamp + parse_time_of_day(t_key, t_value))
        # A date alone cannot place the frame in a night; try the day counts.
        extra["time_note"] = (f"{keyword}={describe(value)} has no time of day and none of "
                              f"{_names(profile.time_keywords)} is present")
    for keywords, convert in ((profile.mjd_keywords, mjd_to_datetime),
                              (profile.jd_keywords, jd_to_datetime)):
        found = view.first(keywords)
        if found is not None:
            keyword, value = found
            extra["time_source"] = keyword
            return check_plausible(keyword, value, convert(keyword, value))
    if date is not None:
        raise MissingKeywordError(extra["time_note"])
    every = (*profile.date_keywords, *profile.mjd_keywords, *profile.jd_keywords)
    raise MissingKeywordError(f"no observation time: none of {_names(every)} is present")


def _site(view: HeaderView, profile: InstrumentProfile, site: Site | None,
          extra: dict[str, str]) -> Site:
    if profile.site is not None and profile.site.has_place:
        extra["site_source"] = f"profile {profile.name}"
        return profile.site
    if site is not None and site.has_place:
        extra["site_source"] = "settings"
        return site
    for keyword in profile.longitude_keywords:
        value = view.get(keyword)
        if value is None:
            continue
        try:
            lon = parse_sexagesimal(keyword, value)
        except InvalidValueError as exc:
            # Only the night boundary depends on it: note it and try the next keyword.
            extra[f"ignored_{keyword}"] = str(exc)
            continue
        if profile.longitude_west_positive:
            lon = -lon
        if not -180.0 <= lon <= 360.0:
            extra[f"ignored_{keyword}"] = f"{keyword}={describe(value)}: longitude out of range"
            continue
        extra["site_source"] = f"header {keyword}"
        return Site(longitude_deg=lon)
    extra["site_source"] = "utc (no site known: night runs noon to noon UTC)"
    return Site()


def _text(view: HeaderView, keywords: tuple[str, ...]) -> str | None:
    found = view.first(keywords)
    return None if found is None else text_value(found[1])


def _name(view: HeaderView, keywords: tuple[str, ...]) -> str | None:
    found = view.first(keywords)
    if found is None:
        return None
    return _checked_name(found[0], found[1], text_value(found[1]))


def _checked_name(keyword: str, value: Any, name: str | None) -> str | None:
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise InvalidValueError(f"{keyword}={describe(value)}: {len(name)} characters, more "
                                f"than the {MAX_NAME_LENGTH} a name may have")
    return name


def _key_part(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def setup_key(fields: Mapping[str, object], keys: tuple[str, ...]) -> str:
    """Join ``fields[k]`` for ``k`` in ``keys`` with ``'|'``.

    Binning is written ``'XxY'``, shape ``'NYxNX'`` (numpy order), absent values ``'-'``:
    ``'LFC|SITe SI002 x 6|1x1|-|4128x2080'``.
    """
    parts = []
    for key in keys:
        value = fields.get(key)
        if key in ("binning", "shape") and isinstance(value, tuple):
            parts.append(f"{value[0]}x{value[1]}")
        else:
            parts.append(_key_part(value))
    return "|".join(parts)


def normalize_header(header: Mapping[str, Any], profile: InstrumentProfile, *,
                     site: Site | None = None,
                     shape: tuple[int, int] | None = None) -> NormalizedHeader:
    """Describe a raw frame from its header, as ``profile`` says to read it.

    Parameters
    ----------
    header : mapping
        An astropy :class:`~astropy.io.fits.Header` or a plain ``dict``; keyword
        case does not matter. Never modified.
    profile : InstrumentProfile
        How this camera writes its headers.
    site : Site, optional
        The installation's site, used for the night when the profile has none.
    shape : tuple of int, optional
        ``(ny, nx)`` of the image; wins over NAXIS2/NAXIS1 (for compressed files).

    Returns
    -------
    NormalizedHeader
        With ``extra`` holding notes on how values were found (time and site
        source, ignored keywords, header values overridden by the profile).

    Raises
    ------
    MissingKeywordError
        No observation time; no exposure time for a non-bias frame; no shape.
    InvalidValueError
        A value that cannot be parsed or is impossible (negative exposure, NaN,
        a year outside 1950..2200, binning below 1, ...).
    SectionError
        A section that is malformed or reaches outside the image (unless the
        profile has ``lenient_sections``, for header keywords).
    """
    view = HeaderView(header)
    extra: dict[str, str] = {}
    raw_type, kind = _frame_kind(view, profile)
    exptime = _exptime(view, profile, kind, extra)
    if (kind == "dark" and profile.bias_max_exptime is not None
            and exptime <= profile.bias_max_exptime):
        extra["kind"] = (f"a dark of {exptime:g} s is a bias (profile bias_max_exptime "
                         f"{profile.bias_max_exptime:g} s)")
        kind = "bias"
    gain_setting = header_number(view, profile.gain_setting_keywords)
    offset = header_number(view, profile.offset_keywords)
    filter_name = _filter(view, profile, extra)
    obs_time = _obs_time(view, profile, extra)
    night = night_of(obs_time, _site(view, profile, site, extra))
    image_shape = frame_shape(view, shape)
    binning = frame_binning(view, profile, extra)
    window = frame_window(view, source=profile.window_source, full_shape=profile.full_shape,
                          shape=image_shape, binning=binning,
                          data_offset=data_offset(profile.datasec, profile.full_shape),
                          extra=extra)
    fields: dict[str, Any] = {
        "instrument": _name(view, profile.instrument_keywords),
        "detector": _name(view, profile.detector_keywords),
        "binning": binning,
        "readout_mode": _name(view, profile.readout_keywords),
        # A window is calibrated from the full readout's masters: its set-up is theirs.
        "shape": (image_shape if window is None or profile.full_shape is None
                  else full_readout(profile.full_shape, binning)),
        "filter": filter_name,
        "exptime": exptime,
        "set_temp": header_number(view, profile.set_temp_keywords, minimum=_ABSOLUTE_ZERO_C),
        "gain_setting": gain_setting,
        "offset": offset,
        "bayer_pattern": bayer_pattern(view, profile, extra),
    }
    return NormalizedHeader(
        profile=profile.name,
        kind=kind,
        raw_type=raw_type,
        exptime=exptime,
        filter=filter_name,
        obs_time=obs_time,
        night=night,
        shape=image_shape,
        binning=fields["binning"],
        instrument=fields["instrument"],
        detector=fields["detector"],
        readout_mode=fields["readout_mode"],
        object_name=_text(view, profile.object_keywords),
        gain=e_per_adu(view, profile, gain_setting, extra),
        read_noise=number_with_override(profile.read_noise, view, profile.read_noise_keywords,
                                  "read_noise", extra, minimum=0.0),
        ccd_temp=header_number(view, profile.ccd_temp_keywords, minimum=_ABSOLUTE_ZERO_C),
        set_temp=fields["set_temp"],
        saturation=saturation_level(view, profile, extra),
        datasec=frame_section(view, profile, "datasec", image_shape, extra),
        trimsec=frame_section(view, profile, "trim", image_shape, extra),
        biassec=frame_section(view, profile, "overscan", image_shape, extra),
        ccdsec=frame_section(view, profile, "ccdsec", image_shape, extra),
        setup_key=setup_key(fields, profile.setup_keys),
        window=window,
        gain_setting=gain_setting,
        offset=offset,
        bayer_pattern=fields["bayer_pattern"],
        extra=extra,
    )
