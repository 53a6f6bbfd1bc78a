"""From TOML tables to :class:`InstrumentProfile`: merging, inheritance, validation.

A profile is written as a table (``[instruments.<name>]`` in ``nightlog.toml``, or a
built-in file). Tables combine in two ways, both with the same merge rule:

* **override**: a user table named like a built-in is merged over it;
* **inheritance**: ``extends = "<other>"`` starts from the other profile's resolved
  table (every profile but ``generic`` implicitly extends ``generic``). The match
  rules, ``priority``, ``description`` and ``extends`` itself are not inherited.

Merge rule: a key of the later table replaces the key of the earlier one, whole;
only ``frame_types``, ``min_frames``, ``calibration_keys`` and the missing-calibration
policy (``missing``, ``fallback_nights``, ``provisional_min_frames``) are merged one
level deeper (per frame kind). Every key is checked here, so a typo fails at load time
with a :class:`~nightlog.errors.ProfileError` naming the profile and the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from nightlog.errors import ConfigurationError, ProfileError, SectionError
from nightlog.header.model import Site
from nightlog.header.profiles.amplifier_tables import _amplifiers, _check_crosstalk, _crosstalk
from nightlog.header.profiles.frame_types import DEFAULT_FRAME_TYPES
from nightlog.header.profiles.match_rule import MatchRule
from nightlog.header.profiles.model import (
    DARK_SCALINGS,
    DARK_TEMPERATURE_SCALINGS,
    DEFAULT_CALIBRATION_KEYS,
    DEFAULT_MIN_FRAMES,
    GROUPING_FIELDS,
    ILLUMINATIONS,
    InstrumentProfile,
)
from nightlog.header.profiles.table_values import (
    _bit_depth,
    _bool,
    _choice,
    _err,
    _float,
    _fraction,
    _int,
    _keyword,
    _keywords,
    _region,
    _string,
    _strings,
)
from nightlog.header.window import WINDOW_SOURCES
from nightlog.sections import parse_section
from nightlog.settings_keys import refuse_unknown
from nightlog.states import MissingPolicy

__all__ = ["KNOWN_KEYS", "merge_tables", "profile_from_table", "resolve_tables"]

_DEEP_KEYS = ("frame_types", "min_frames", "calibration_keys", "missing", "fallback_nights",
              "provisional_min_frames")
_NOT_INHERITED = ("match", "match_regex", "priority", "description", "extends")
_CALIBRATION_KINDS = ("bias", "dark", "flat")
_FRAME_KINDS = ("bias", "dark", "flat", "science")
_DATE_FORMATS = ("iso", "dd/mm/yy")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
def _grouping(name: str, key: str, value: Any) -> tuple[str, ...]:
    items = _strings(name, key, value)
    for item in items:
        if item not in GROUPING_FIELDS:
            raise _err(name, key, f"unknown field {item!r}; known: {', '.join(GROUPING_FIELDS)}")
    return items


def _per_kind(name: str, key: str, value: Any, kinds: tuple[str, ...],
              convert: Callable[[str, str, Any], Any], default: Mapping[str, Any]
              ) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _err(name, key, "expected a table by frame kind")
    result = dict(default)
    for kind, item in value.items():
        if kind not in kinds:
            raise _err(name, key, f"unknown frame kind {kind!r}; known: {', '.join(kinds)}")
        result[kind] = convert(name, f"{key}.{kind}", item)
    return MappingProxyType(result)


def _match_rules(name: str, table: Mapping[str, Any]) -> tuple[MatchRule, ...]:
    rules: list[MatchRule] = []
    exact = table.get("match", {})
    if not isinstance(exact, dict):
        raise _err(name, "match", "expected a table such as { INSTRUME = \"LFC\" }")
    for kw, value in exact.items():
        values = [value] if isinstance(value, str) else value
        texts = _strings(name, f"match.{kw}", values)
        rules.append(MatchRule(_keyword(name, "match", kw), tuple(t.strip() for t in texts)))
    regex = table.get("match_regex", {})
    if not isinstance(regex, dict):
        raise _err(name, "match_regex", "expected a table such as { INSTRUME = \"^Apogee\" }")
    for kw, value in regex.items():
        text = _string(name, f"match_regex.{kw}", value)
        try:
            pattern = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise _err(name, f"match_regex.{kw}", f"bad regular expression: {exc}") from None
        rules.append(MatchRule(_keyword(name, "match_regex", kw), pattern=pattern))
    return tuple(rules)


def _site(name: str, key: str, value: Any) -> Site:
    try:
        site = Site.from_table(value, where=key)
    except ConfigurationError as exc:
        raise ProfileError(f"instrument profile {name!r}: {exc}") from None
    if not site.has_place:
        raise _err(name, key, "give a longitude (degrees east) or a timezone")
    return site


def _binning(name: str, key: str, value: Any) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        raise _err(name, key, "expected a list such as [\"CCDSUM\", [\"XBINNING\", \"YBINNING\"]]")
    result = []
    for item in value:
        group = [item] if isinstance(item, str) else item
        if not isinstance(group, list) or len(group) not in (1, 2):
            raise _err(name, key, f"{item!r}: give one keyword ('x y' text) or a pair [x, y]")
        result.append(tuple(_keyword(name, key, k) for k in group))
    return tuple(result)


def _full_shape(name: str, key: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise _err(name, key, "expected [ny, nx] (rows, columns)")
    return (_int(name, key, value[0], 1), _int(name, key, value[1], 1))


def _window_source(name: str, key: str, value: Any) -> str:
    text = _string(name, key, value).strip().lower()
    if text not in WINDOW_SOURCES:
        raise _err(name, key, f"unknown window source {value!r}; known: "
                   f"{', '.join(WINDOW_SOURCES)}")
    return text


def _date_formats(name: str, key: str, value: Any) -> tuple[str, ...]:
    items = _strings(name, key, value)
    for item in items:
        if item not in _DATE_FORMATS:
            raise _err(name, key,
                       f"unknown date format {item!r}; known: {', '.join(_DATE_FORMATS)}")
    return items


def _gain_table(name: str, key: str, value: Any) -> Mapping[float, float]:
    """``{ "120" = 1.0, "0" = 3.6 }``: e-/ADU by gain setting (TOML keys are text)."""
    if not isinstance(value, dict):
        raise _err(name, key, 'expected a table of e-/ADU by gain setting, such as '
                   '{ "0" = 3.6, "120" = 1.0 }')
    table: dict[float, float] = {}
    for setting, gain in value.items():
        try:
            number = float(setting)
        except ValueError:
            raise _err(name, f"{key}.{setting}", "a gain setting is a number") from None
        if not math.isfinite(number):
            raise _err(name, f"{key}.{setting}", "a gain setting is a finite number")
        table[number] = _float(name, f"{key}.{setting}", gain, lo=0.0, lo_open=True)
    return MappingProxyType(table)


_Converter = Callable[[str, str, Any], Any]

_CONVERTERS: dict[str, _Converter] = {
    "description": _string,
    "extends": _string,
    "priority": lambda n, k, v: _int(n, k, v, -(10**6)),
    "frame_types": lambda n, k, v: _per_kind(n, k, v, _FRAME_KINDS, _strings, DEFAULT_FRAME_TYPES),
    "no_filter_values": _strings,
    "date_formats": _date_formats,
    "site": _site,
    "longitude_west_positive": _bool,
    "binning_keywords": _binning,
    "gain": lambda n, k, v: _float(n, k, v, lo=0.0, lo_open=True),
    "read_noise": lambda n, k, v: _float(n, k, v, lo=0.0),
    "saturation": lambda n, k, v: _float(n, k, v, lo=0.0, lo_open=True),
    "gain_table": _gain_table,
    "bit_depth": lambda n, k, v: _bit_depth(n, k, v),
    "bias_max_exptime": lambda n, k, v: _float(n, k, v, lo=0.0),
    "read_noise_map": _bool,
    "noisy_factor": lambda n, k, v: _float(n, k, v, lo=1.0, lo_open=True),
    "dark_scaling": _choice(DARK_SCALINGS),
    "datasec": _region,
    "ccdsec": _region,
    "overscan": _region,
    "trim": _region,
    "full_shape": _full_shape,
    "window_source": _window_source,
    "lenient_sections": _bool,
    "subtract_overscan": _bool,
    "overscan_skip_columns": lambda n, k, v: _int(n, k, v, 0),
    "overscan_fit_degree": lambda n, k, v: _int(n, k, v, 0),
    "overscan_niterate": lambda n, k, v: _int(n, k, v, 0),
    "overscan_low_reject": lambda n, k, v: _float(n, k, v, lo=0.0),
    "overscan_high_reject": lambda n, k, v: _float(n, k, v, lo=0.0),
    "flat_scale_region": lambda n, k, v: _region(n, k, v, literal_only=True),
    "flat_scale_fraction": lambda n, k, v: _float(n, k, v, lo=0.0, hi=1.0, lo_open=True),
    "darks_scale": _bool,
    "dark_temp_tolerance": lambda n, k, v: _float(n, k, v, lo=0.0),
    "dark_temperature_scaling": _choice(DARK_TEMPERATURE_SCALINGS),
    "dark_doubling_temperature": lambda n, k, v: _float(n, k, v, lo=0.0, hi=100.0,
                                                        lo_open=True),
    "dark_doubling_temperature_err": lambda n, k, v: _float(n, k, v, lo=0.0),
    "dead_low": lambda n, k, v: _fraction(n, k, v),
    "dead_high": lambda n, k, v: _float(n, k, v, lo=1.0, lo_open=True),
    "low_response": lambda n, k, v: _fraction(n, k, v, zero_is_none=True),
    "hot_nsigma": lambda n, k, v: _float(n, k, v, lo=0.0, lo_open=True),
    "illumination": _choice(ILLUMINATIONS),
    "illumination_min_frames": lambda n, k, v: _int(n, k, v, 2),
    "illumination_degree": lambda n, k, v: _int(n, k, v, 0),
    "pixel_scale_arcsec": lambda n, k, v: _float(n, k, v, lo=0.0, hi=3600.0, lo_open=True),
    "min_frames": lambda n, k, v: _per_kind(n, k, v, _CALIBRATION_KINDS,
                                            lambda a, b, c: _int(a, b, c, 1), DEFAULT_MIN_FRAMES),
    "calibration_keys": lambda n, k, v: _per_kind(n, k, v, _CALIBRATION_KINDS, _grouping,
                                                  DEFAULT_CALIBRATION_KEYS),
    "missing": lambda n, k, v: _per_kind(n, k, v, _CALIBRATION_KINDS,
                                         _choice(tuple(MissingPolicy)), {}),
    "fallback_nights": lambda n, k, v: _per_kind(n, k, v, _CALIBRATION_KINDS,
                                                 lambda a, b, c: _int(a, b, c, 0), {}),
    "provisional_min_frames": lambda n, k, v: _per_kind(n, k, v, _CALIBRATION_KINDS,
                                                        lambda a, b, c: _int(a, b, c, 1), {}),
    "setup_keys": _grouping,
    "file_patterns": _strings,
    "amplifiers": _amplifiers,
    "crosstalk": _crosstalk,
    "ccd": _keyword,
}
_KEYWORD_LISTS = (
    "type_keywords", "exptime_keywords", "filter_keywords", "date_keywords", "time_keywords",
    "mjd_keywords", "jd_keywords", "longitude_keywords", "instrument_keywords",
    "detector_keywords", "readout_keywords", "gain_keywords", "read_noise_keywords",
    "gain_setting_keywords", "offset_keywords", "bayer_keywords",
    "ccd_temp_keywords", "set_temp_keywords", "saturation_keywords", "object_keywords",
)
_CONVERTERS.update(dict.fromkeys(_KEYWORD_LISTS, _keywords))

#: Every key a profile table may hold.
KNOWN_KEYS: tuple[str, ...] = tuple(sorted({*_CONVERTERS, "match", "match_regex"}))


def merge_tables(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with the keys of ``override`` replacing its keys (see the module doc)."""
    merged = dict(base)
    for key, value in override.items():
        if key in _DEEP_KEYS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def resolve_tables(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Resolve ``extends`` chains: each profile's complete table, by name.

    Raises
    ------
    ProfileError
        A profile extends an unknown profile, or the chain loops.
    """
    resolved: dict[str, dict[str, Any]] = {}

    def _resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if name in resolved:
            return resolved[name]
        if name in chain:
            raise ProfileError(f"instrument profiles extend each other in a loop: "
                               f"{' -> '.join((*chain, name))}")
        table = tables[name]
        parent = table.get("extends", None if name == "generic" else "generic")
        if parent is None:
            result = dict(table)
        else:
            if not isinstance(parent, str) or parent not in tables:
                raise _err(name, "extends", f"no profile named {parent!r}; "
                           f"known: {', '.join(sorted(tables))}")
            base = {k: v for k, v in _resolve(parent, (*chain, name)).items()
                    if k not in _NOT_INHERITED}
            result = merge_tables(base, table)
        resolved[name] = result
        return result

    for name in tables:
        _resolve(name, ())
    return resolved


def profile_from_table(name: str, table: Mapping[str, Any]) -> InstrumentProfile:
    """Build and validate one profile from its resolved table.

    Raises
    ------
    ProfileError
        Bad name, unknown key (the message lists the known ones) or bad value.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ProfileError(f"instrument profile name {name!r}: use letters, digits, '_', '-', '.'")
    refuse_unknown(table, KNOWN_KEYS, f"instrument profile {name!r}", error=ProfileError)
    values: dict[str, Any] = {"name": name, "match": _match_rules(name, table)}
    for key, value in table.items():
        if key in ("match", "match_regex"):
            continue
        if key == "gain" and value == "measured":
            values["gain"], values["gain_measured"] = None, True
            continue
        values[key] = _CONVERTERS[key](name, key, value)
    _dark_scaling(name, table, values)
    _dark_temperature(name, values)
    _check_crosstalk(name, values)
    profile = InstrumentProfile(**values)
    if profile.overscan_niterate and profile.overscan_fit_degree is None:
        raise _err(name, "overscan_niterate",
                   "rejects rows from the overscan fit: give overscan_fit_degree too")
    _check_literal_regions(profile)
    both = set(profile.gain_keywords) & set(profile.gain_setting_keywords)
    if both:
        raise _err(name, "gain_setting_keywords",
                   f"{', '.join(sorted(both))} cannot hold both the gain setting and the "
                   "e-/ADU: remove it from gain_keywords (a CMOS camera's GAIN is a setting; "
                   "its e-/ADU is EGAIN)")
    return profile


def _dark_scaling(name: str, table: Mapping[str, Any], values: dict[str, Any]) -> None:
    """``darks_scale`` (true: linear, false: exact exposure) and ``dark_scaling`` agree."""
    scaling = values.get("dark_scaling")
    scales = values.get("darks_scale")
    if scaling is None:
        if scales is not None:
            values["dark_scaling"] = "linear" if scales else "exact_exposure"
        return
    if scales is not None and scales != (scaling == "linear"):
        raise _err(name, "dark_scaling",
                   f"{scaling!r} contradicts darks_scale = {str(scales).lower()}: give one")
    values["darks_scale"] = scaling == "linear"
def _dark_temperature(name: str, values: dict[str, Any]) -> None:
    """Darks scale across temperature only when they are all dark current (linear,
    bias-subtracted), and ``profile`` scaling needs its doubling temperature."""
    scaling = values.get("dark_temperature_scaling", "off")
    if scaling == "off":
        return
    if values.get("dark_scaling", "linear") != "linear":
        raise _err(name, "dark_temperature_scaling",
                   f"{scaling!r} needs dark_scaling = 'linear': a dark of a camera whose "
                   "darks do not scale holds amplifier glow and offsets that do not follow "
                   "the dark current's temperature law")
    if scaling == "profile" and values.get("dark_doubling_temperature") is None:
        raise _err(name, "dark_temperature_scaling",
                   "'profile' needs dark_doubling_temperature (K over which the dark "
                   "current doubles)")


def _check_literal_regions(profile: InstrumentProfile) -> None:
    """Literal sections must fit the full readout when the profile gives its shape,
    and windows need that shape."""
    if profile.full_shape is None:
        if profile.window_source != "none":
            raise _err(profile.name, "window_source",
                       f"{profile.window_source!r} needs full_shape (the full readout a "
                       "window lies in)")
        return
    for key in ("datasec", "ccdsec", "overscan", "trim", "flat_scale_region"):
        text = getattr(profile, key)
        if text is not None and text.startswith("["):
            try:
                parse_section(text, profile.full_shape)
            except SectionError as exc:
                raise _err(profile.name, key, f"{exc} (full_shape {profile.full_shape})") from None
