"""What an externally made master must show before it is catalogued (``calib add``).

Pure rules on the master's header, unit and pixels against a catalogued frame of
the set-up it calibrates and that frame's instrument profile: its kind, the
instrument, a flat's filter, a dark's set temperature, a unit that fits the kind,
a flat normalised to 1. Each refusal is one :class:`~nightlog.errors.ConfigurationError`
naming the file and what to change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits

from nightlog.catalogue.models import Frame
from nightlog.errors import ConfigurationError
from nightlog.header.profiles import InstrumentProfile

__all__ = ["FLAT_NORM", "KINDS", "check_setup", "check_unit", "header_value", "kind_of",
           "obs_time_of", "refusal", "unit_text"]

#: The kinds of master nightlog can use.
KINDS = ("bias", "dark", "flat")
#: A master flat's median must lie in this range (it is normalised to 1).
FLAT_NORM = (0.5, 2.0)


def header_value(header: fits.Header, keywords: tuple[str, ...]) -> Any:
    """The first of ``keywords`` with a non-empty value in ``header`` (``None``: none)."""
    for key in keywords:
        value = header.get(key)
        if value is not None and str(value).strip() != "":
            return value.strip() if isinstance(value, str) else value
    return None


def refusal(path: str, why: str) -> ConfigurationError:
    """The error refusing ``path`` as a master, and why."""
    return ConfigurationError(f"cannot add {path} as a master: {why}")


def unit_text(unit: u.UnitBase) -> str:
    """A unit as ``BUNIT`` and messages write it."""
    return "dimensionless" if unit == u.dimensionless_unscaled else unit.to_string()


def kind_of(header: fits.Header, given: str | None, profile: InstrumentProfile,
             path: str) -> str:
    """The master's kind: ``given``, or what its header says (``NLKIND``, else its
    frame-type keyword as the profile reads it); the two must agree."""
    stated = header.get("NLKIND")
    if stated is None:
        raw = header_value(header, profile.type_keywords)
        if raw is not None:
            words = str(raw).upper().replace("MASTER", "").replace("ZERO", "BIAS").split()
            found = {profile.classify(w) for w in words} & set(KINDS)
            stated = found.pop() if len(found) == 1 else None
    if given is not None and stated is not None and given != stated:
        raise refusal(path, f"its header says it is a {stated}, not a {given}")
    kind = given or stated
    if kind not in KINDS:
        raise refusal(path, "its kind is not stated: give --kind bias, dark or flat")
    return str(kind)


def check_setup(header: fits.Header, kind: str, frame: Frame, profile: InstrumentProfile,
                 path: str) -> None:
    """Refuse a master made for another instrument, at another CMOS gain setting or
    offset, a flat of another filter, a dark at another set temperature than
    ``frame``'s."""
    for what, keywords, have in (("gain setting", profile.gain_setting_keywords,
                                  frame.gain_setting),
                                 ("offset", profile.offset_keywords, frame.offset)):
        stated = header_value(header, keywords)
        if stated is None or have is None:
            continue
        try:
            number = float(stated)
        except (TypeError, ValueError):
            raise refusal(path, f"its {what} {stated!r} is not a number") from None
        if number != have:
            raise refusal(path, f"made at {what} {number:g}; frame {frame.id} was taken at "
                                f"{have:g}")
    instrument = header_value(header, profile.instrument_keywords)
    if instrument is not None and frame.instrument is not None \
            and str(instrument) != frame.instrument:
        raise refusal(path, f"made for instrument {instrument!r}, frame {frame.id} is of "
                            f"{frame.instrument!r}")
    if kind == "flat":
        filt = header_value(header, profile.filter_keywords)
        if filt is None:
            raise refusal(path, "a master flat must name its filter (FILTER)")
        if str(filt) != (frame.filter or ""):
            raise refusal(path, f"a flat of filter {filt!r}; frame {frame.id} was taken "
                                f"through {frame.filter!r}")
    if kind == "dark":
        set_temp = header_value(header, profile.set_temp_keywords)
        if set_temp is not None and frame.set_temp is not None \
                and abs(float(set_temp) - frame.set_temp) > profile.dark_temp_tolerance:
            raise refusal(path, f"a dark at {float(set_temp):g} °C; frame {frame.id}'s set "
                                f"point is {frame.set_temp:g} °C")


def check_unit(unit: u.UnitBase, kind: str, data: np.ndarray, path: str,
                darks_scale: bool) -> bool:
    """Whether the master is a rate; refuse a unit that does not fit its kind, or a
    flat not normalised to 1."""
    if kind == "bias" and unit == u.adu:
        return False
    if kind == "dark" and unit == u.adu / u.s:
        if not darks_scale:
            raise refusal(path, "a dark rate (adu / s) for a camera whose darks do not scale")
        return True
    if kind == "dark" and unit == u.adu:
        return False
    if kind == "flat" and unit in (u.dimensionless_unscaled, u.adu):
        level = float(np.nanmedian(data))
        if not FLAT_NORM[0] <= level <= FLAT_NORM[1]:
            raise refusal(path, f"a master flat is normalised to 1; its median is {level:g}")
        return False
    wanted = {"bias": "adu", "dark": "adu or adu / s", "flat": "dimensionless or adu"}[kind]
    raise refusal(path, f"its unit (BUNIT) is {unit_text(unit)}; a {kind} "
                        f"master is in {wanted}")


def obs_time_of(header: fits.Header, frame: Frame) -> dt.datetime:
    """When the master's data were taken: its ``DATE-OBS`` (UTC if no zone), else
    ``frame``'s time."""
    text = header.get("DATE-OBS")
    if isinstance(text, str):
        try:
            when = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return frame.obs_time
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return frame.obs_time
