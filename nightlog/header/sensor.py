"""The detector numbers of a header: e-/ADU, read noise, saturation, and what CMOS
capture software writes beside them (gain and offset settings, Bayer pattern).

Pure, like :mod:`nightlog.header.normalize`, which calls these. The distinction
that matters: a CCD's ``GAIN`` is usually its e-/ADU, while N.I.N.A., SGP, APT and
the INDI ZWO/QHY drivers write the camera's gain *setting* there (``GAIN = 120``,
in 0.1 dB steps for ZWO, and ``GAIN = 0`` is a legal setting) and the e-/ADU in
``EGAIN``. A profile says which is which (``gain_setting_keywords`` and
``gain_keywords``); SGP writes another EGAIN than N.I.N.A. for the same setting,
so a profile may give its own ``gain_table`` of e-/ADU per setting, which wins.
"""

from __future__ import annotations

import re
from typing import Any

from nightlog.errors import InvalidValueError
from nightlog.header.profiles.model import InstrumentProfile
from nightlog.header.values import HeaderView, describe, parse_float, text_value

__all__ = ["bayer_pattern", "e_per_adu", "header_number", "number_with_override",
           "saturation_level"]

_BAYER_RE = re.compile(r"^[RGBCMYW]{4}$")
_MAX_PATTERN = 16


def header_number(view: HeaderView, keywords: tuple[str, ...], *, positive: bool = False,
                  minimum: float | None = None) -> float | None:
    """The first of ``keywords`` as a finite number, checked; ``None`` when absent."""
    found = view.first(keywords)
    if found is None:
        return None
    keyword, value = found
    number = parse_float(keyword, value)
    if positive and number <= 0:
        raise InvalidValueError(f"{keyword}={describe(value)}: must be positive")
    if minimum is not None and number < minimum:
        raise InvalidValueError(f"{keyword}={describe(value)}: must be >= {minimum}")
    return number


def number_with_override(override: float | None, view: HeaderView, keywords: tuple[str, ...],
                         label: str, extra: dict[str, str], **limits: Any) -> float | None:
    """The profile's ``override`` when given (the header's figure noted beside it),
    else the header's number."""
    if override is None:
        return header_number(view, keywords, **limits)
    found = view.first(keywords)
    if found is not None:
        # Keep the header's own figure visible beside the profile's.
        extra[f"header_{label}"] = f"{found[0]}={text_value(found[1])}"
    return override


def _is_zero(keyword: str, value: Any) -> bool:
    try:
        return parse_float(keyword, value) == 0
    except InvalidValueError:
        return False


def e_per_adu(view: HeaderView, profile: InstrumentProfile, setting: float | None,
              extra: dict[str, str]) -> float | None:
    """e-/ADU: the profile's ``gain``, else its ``gain_table`` entry for ``setting``,
    else the header's ``gain_keywords``.

    Raises
    ------
    InvalidValueError
        The header's e-/ADU is not positive; for a 0 under a profile that reads no
        gain setting, the message says how to declare GAIN a setting.
    """
    if profile.gain is None:
        tabled = profile.gain_for_setting(setting)
        if tabled is not None and setting is not None:
            found = view.first(profile.gain_keywords)
            extra["gain_source"] = f"profile gain_table[{setting:g}]"
            if found is not None:
                extra["header_gain"] = f"{found[0]}={text_value(found[1])}"
            return tabled
        if setting is not None and profile.gain_table:
            extra["gain_note"] = (f"gain setting {setting:g} is not in the profile's "
                                  "gain_table: e-/ADU from the header")
        found = view.first(profile.gain_keywords)
        if found is not None and not profile.gain_setting_keywords and _is_zero(*found):
            raise InvalidValueError(
                f"{found[0]}={describe(found[1])}: must be positive as e-/ADU; if it is "
                "the camera's gain setting (CMOS capture software writes it so, with the "
                "e-/ADU in EGAIN), give the profile gain_setting_keywords = [\"GAIN\"] and "
                "gain_keywords = [\"EGAIN\"]")
    return number_with_override(profile.gain, view, profile.gain_keywords, "gain", extra,
                                positive=True)


def saturation_level(view: HeaderView, profile: InstrumentProfile,
                     extra: dict[str, str]) -> float | None:
    """The profile's saturation, else the header's, else the one of the profile's
    ``bit_depth`` (noted in ``extra``)."""
    level = number_with_override(profile.saturation, view, profile.saturation_keywords,
                                 "saturation", extra, positive=True)
    if level is None and profile.bit_depth is not None:
        level = profile.bit_depth_saturation
        extra["saturation_source"] = f"profile bit_depth {profile.bit_depth}: {level:g} ADU"
    return level


def bayer_pattern(view: HeaderView, profile: InstrumentProfile,
                  extra: dict[str, str]) -> str | None:
    """A colour sensor's pattern (``'RGGB'``), upper case; the X/YBAYROFF offsets
    and the fact that the mosaic is calibrated raw are noted in ``extra`` (and a
    value that is not a 2x2 pattern, kept as written)."""
    found = view.first(profile.bayer_keywords)
    if found is None:
        return None
    keyword, value = found
    pattern = (text_value(value) or "").upper()
    if len(pattern) > _MAX_PATTERN:
        raise InvalidValueError(f"{keyword}={describe(value)}: longer than a colour "
                                "filter pattern can be")
    if not _BAYER_RE.match(pattern):
        # Recorded as written, never dropped: the frame is still a colour one.
        extra["bayer_note"] = (f"{keyword}={describe(value)} is not a 2x2 pattern such "
                               "as 'RGGB'")
    offsets = [f"{k}={text_value(view.get(k))}" for k in ("XBAYROFF", "YBAYROFF")
               if view.get(k) is not None]
    if offsets:
        extra["bayer_offset"] = " ".join(offsets)
    extra["bayer"] = "raw mosaic: calibrated without debayering"
    return pattern
