"""Where each normalised value came from: a header keyword, the profile, or a default.

:func:`normalize_header` gives the values; :func:`field_sources` says, for each,
which keyword of the header the profile read it from (the first of its keyword
list with a value, the rule normalisation follows), or that the profile gave it,
or that nothing did and what was assumed. It is what ``nightlog profile check``
shows beside every value; pure, like normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightlog.header.model import NormalizedHeader
from nightlog.header.profiles import InstrumentProfile
from nightlog.header.values import HeaderView, describe

__all__ = ["FieldSource", "field_sources"]


@dataclass(frozen=True, slots=True)
class FieldSource:
    """One normalised field: its ``name``, ``value`` (as normalised) and ``source``
    (``header DATE-OBS+UT``, ``profile lfc``, ``default: ...`` or ``none``)."""

    name: str
    value: Any
    source: str


def _keyword(view: HeaderView, keywords: tuple[str, ...]) -> str:
    found = view.first(keywords)
    return "none: " + (", ".join(keywords) or "no keyword configured") + " absent" \
        if found is None else f"header {found[0]}"


def _override(view: HeaderView, profile: InstrumentProfile, key: str,
              keywords: tuple[str, ...]) -> str:
    if getattr(profile, key) is None:
        return _keyword(view, keywords)
    found = view.first(keywords)
    beside = "" if found is None else f" (header {found[0]}={describe(found[1])} not used)"
    return f"profile {profile.name}{beside}"


def _region(view: HeaderView, profile: InstrumentProfile, key: str,
            norm: NormalizedHeader) -> str:
    spec = getattr(profile, key)
    if spec is None:
        return f"none: profile {profile.name} gives no {key}"
    note = norm.extra.get(f"{key}_note") or norm.extra.get(f"ignored_{spec}")
    if note:
        return f"none: {note}"
    if spec.startswith("["):
        return f"profile {profile.name}"
    return f"header {spec}" if spec in view else f"none: {spec} absent"


def _binning(view: HeaderView, profile: InstrumentProfile, norm: NormalizedHeader) -> str:
    if "binning" in norm.extra:
        return f"default: {norm.extra['binning']}"
    for group in profile.binning_keywords:
        if any(k in view for k in group):
            return "header " + "+".join(group)
    return "default"


def _shape(view: HeaderView, norm: NormalizedHeader) -> str:
    declared = (view.get("NAXIS2"), view.get("NAXIS1"))
    same = all(isinstance(n, int) for n in declared) and declared == norm.shape
    return "header NAXIS2, NAXIS1" if same else "the file's image (compressed data)"


def field_sources(header: Mapping[str, Any], profile: InstrumentProfile,
                  norm: NormalizedHeader) -> tuple[FieldSource, ...]:
    """Every field of ``norm`` with the source of its value.

    Parameters
    ----------
    header : mapping
        The raw header ``norm`` was normalised from; not modified.
    profile : InstrumentProfile
        The profile it was normalised with.
    norm : NormalizedHeader
        ``normalize_header(header, profile, ...)``.

    Returns
    -------
    tuple of FieldSource
        In the order ``nightlog profile check`` shows them.
    """
    view = HeaderView(header)
    extra = norm.extra
    type_found = next(((k, v) for k in profile.type_keywords
                       if isinstance(v := view.get(k), str)), None)
    kind_source = ("none: no type keyword holds text (" + ", ".join(profile.type_keywords)
                   + ")" if type_found is None
                   else f"header {type_found[0]}={describe(type_found[1])}")
    filter_source = (f"header {extra['filter']}" if "filter" in extra
                     else _keyword(view, profile.filter_keywords))
    exptime_source = (f"default: {extra['exptime']}" if "exptime" in extra
                      else _keyword(view, profile.exptime_keywords))
    rows = [
        ("kind", norm.kind, kind_source),
        ("exptime", norm.exptime, exptime_source),
        ("filter", norm.filter, filter_source),
        ("obs_time", norm.obs_time, f"header {extra.get('time_source', '?')}"),
        ("night", norm.night, "site: " + extra.get("site_source", "?")),
        ("instrument", norm.instrument, _keyword(view, profile.instrument_keywords)),
        ("detector", norm.detector, _keyword(view, profile.detector_keywords)),
        ("binning", f"{norm.binning[0]}x{norm.binning[1]}", _binning(view, profile, norm)),
        ("readout_mode", norm.readout_mode, _keyword(view, profile.readout_keywords)),
        ("shape", f"{norm.shape[0]}x{norm.shape[1]}", _shape(view, norm)),
        ("object", norm.object_name, _keyword(view, profile.object_keywords)),
        ("ccd_temp", norm.ccd_temp, _keyword(view, profile.ccd_temp_keywords)),
        ("set_temp", norm.set_temp, _keyword(view, profile.set_temp_keywords)),
        ("gain", norm.gain, _override(view, profile, "gain", profile.gain_keywords)),
        ("read_noise", norm.read_noise,
         _override(view, profile, "read_noise", profile.read_noise_keywords)),
        ("saturation", norm.saturation,
         _override(view, profile, "saturation", profile.saturation_keywords)),
        ("datasec", norm.datasec, _region(view, profile, "datasec", norm)),
        ("trimsec", norm.trimsec, _region(view, profile, "trim", norm)),
        ("biassec", norm.biassec, _region(view, profile, "overscan", norm)),
        ("ccdsec", norm.ccdsec, _region(view, profile, "ccdsec", norm)),
        ("setup_key", norm.setup_key, f"setup_keys of profile {profile.name}"),
    ]
    return tuple(FieldSource(name, value, source) for name, value, source in rows)
