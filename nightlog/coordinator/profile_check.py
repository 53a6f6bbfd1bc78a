"""A profile dry run: what ingestion and the reduction would make of a file, no catalogue.

:func:`check_file` reads a file's header through the store (as ingestion does:
the same completeness checks, so a file it refuses is one ingestion would
quarantine), chooses its profile with the reason (:func:`explain_profile_match`),
normalises it, and reports every normalised field with its source, the frame's
kind, night, set-up and calibration group keys, the settings the reduction would
apply (overscan, trim, gain, read noise, saturation) with their sources, and the
warnings of :func:`~nightlog.header.profile_warnings.profile_warnings`.

The set-up's reduction settings come from the same code the reduction runs
(:meth:`JobContext.preparation_of`, :func:`gain_of`, :func:`read_noise_of`,
:func:`group_of`), given the frame as ingestion would record it; nothing is
written anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nightlog.calibration.detector_numbers import gain_of, read_noise_of
from nightlog.calibration.grouping import CALIBRATION_NEEDS, group_of
from nightlog.catalogue.frames import unsaved_frame
from nightlog.catalogue.models import Frame
from nightlog.coordinator.context import JobContext
from nightlog.errors import NightlogError
from nightlog.header.amplifiers import AmplifierLayout, ExtensionHeader
from nightlog.header.field_sources import FieldSource, field_sources
from nightlog.header.match_explanation import MatchExplanation, explain_profile_match
from nightlog.header.model import NormalizedHeader
from nightlog.header.normalize import normalize_header
from nightlog.header.normalize_amplifiers import normalize_ccds
from nightlog.header.profile_warnings import ProfileWarning, profile_warnings
from nightlog.header.profiles import InstrumentProfile
from nightlog.settings import Settings
from nightlog.store.raw import raw_values, read_raw_file

__all__ = ["AppliedSetting", "FileCheck", "check_file", "check_files"]


@dataclass(frozen=True, slots=True)
class AppliedSetting:
    """A setting the reduction would apply to the frame, and where it comes from."""

    name: str
    value: Any
    source: str


@dataclass(frozen=True, slots=True)
class FileCheck:
    """What ``nightlog profile check`` found for one file.

    ``error`` is the reason ingestion would quarantine the file (then only
    ``match`` may be set). ``calibration_keys`` maps a role (``bias``: the master
    bias group the frame is matched with; ``own flat``: the group it is a member
    of) to the group key.
    """

    path: str
    match: MatchExplanation | None = None
    fields: tuple[FieldSource, ...] = ()
    calibration_keys: tuple[tuple[str, str], ...] = ()
    settings: tuple[AppliedSetting, ...] = ()
    warnings: tuple[ProfileWarning, ...] = ()
    error: str | None = None
    norm: NormalizedHeader | None = field(default=None, repr=False)

    @property
    def profile(self) -> str | None:
        return None if self.match is None else self.match.chosen

    def field(self, name: str) -> FieldSource:
        """The normalised field called ``name``."""
        return next(f for f in self.fields if f.name == name)

    def setting(self, name: str) -> AppliedSetting:
        """The applied setting called ``name``."""
        return next(s for s in self.settings if s.name == name)

    def as_dict(self) -> dict[str, Any]:
        """The JSON record of ``nightlog profile check --format json``."""
        match = None
        if self.match is not None:
            match = {"profile": self.match.chosen, "reason": self.match.reason,
                     "fallback": self.match.fallback,
                     "candidates": [{"profile": v.profile, "matches": v.matches,
                                     "specificity": list(v.score),
                                     "rules": [r.describe() for r in v.rules]}
                                    for v in self.match.verdicts]}
        return {
            "path": self.path, "error": self.error, "match": match,
            "fields": {f.name: {"value": _plain(f.value), "source": f.source}
                       for f in self.fields},
            "calibration_keys": dict(self.calibration_keys),
            "settings": {s.name: {"value": _plain(s.value), "source": s.source}
                         for s in self.settings},
            "warnings": [{"code": str(w.code), "message": w.message} for w in self.warnings],
        }


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _amplifier_settings(layout: AmplifierLayout) -> tuple[AppliedSetting, ...]:
    """A multi-amplifier frame's settings, per amplifier (``SCI,2 gain``, ...): its
    overscan (always subtracted when it has one), the data section placed at its
    DETSEC, gain, read noise and raw saturation level."""
    out = []
    for a in layout.amplifiers:
        over = (f"biassec, {layout.overscan_skip} column(s) next to the data skipped"
                if a.biassec else "off: the amplifier has no overscan section")
        out += [
            AppliedSetting(f"{a.name} overscan", a.biassec, over),
            AppliedSetting(f"{a.name} data", a.datasec, f"placed at DETSEC {a.detsec}"),
            AppliedSetting(f"{a.name} gain", a.gain, a.gain_source),
            AppliedSetting(f"{a.name} read_noise", a.read_noise, a.read_noise_source),
            AppliedSetting(f"{a.name} saturation", a.saturation,
                           "raw ADU" if a.saturation is not None
                           else "none: saturated pixels are not masked"),
        ]
    return tuple(out)


def _settings_of(frame: Frame, profile: InstrumentProfile, jobs: JobContext,
                 fields: tuple[FieldSource, ...]) -> tuple[AppliedSetting, ...]:
    source = {f.name: f.source for f in fields}
    prep = jobs.preparation_of(frame)
    if prep.overscan is not None:
        over = AppliedSetting("overscan", prep.overscan,
                              f"biassec, {prep.skip_columns} column(s) next to the data "
                              "skipped")
    elif not profile.subtract_overscan:
        over = AppliedSetting("overscan", None,
                              f"off: profile {profile.name} has subtract_overscan = false")
    else:
        over = AppliedSetting("overscan", None, "off: the frame has no overscan section")
    trim_from = (f"trimsec ({source['trimsec']})" if frame.trimsec
                 else f"datasec ({source['datasec']})" if frame.datasec
                 else "off: the frame has neither a trim nor a data section")
    gain = gain_of(frame, profile)
    noise = read_noise_of(frame, profile, None, gain)
    noise_source = noise.source
    if noise_source.startswith("default"):
        noise_source = "default: measured on the master bias, else 0 e-"
    saturation = (source["saturation"] if frame.saturation is not None
                  else "none: saturated pixels are not masked")
    return (
        over,
        AppliedSetting("trim", prep.trim, trim_from),
        AppliedSetting("gain", gain.value, gain.source),
        AppliedSetting("read_noise", noise.value, noise_source),
        AppliedSetting("saturation", frame.saturation, saturation),
    )


def _calibration_keys(frame: Frame, kind: str, profile: InstrumentProfile
                      ) -> tuple[tuple[str, str], ...]:
    keys = []
    if kind in ("bias", "dark", "flat"):
        keys.append((f"own {kind}", group_of(frame, kind, profile).key))
    keys += [(need, group_of(frame, need, profile).key)
             for need in CALIBRATION_NEEDS.get(kind, ())]
    return tuple(keys)


def check_file(path: str | os.PathLike[str], settings: Settings, *,
               jobs: JobContext | None = None) -> FileCheck:
    """What ingestion and the reduction would make of one file.

    Parameters
    ----------
    path : path-like
        A raw FITS file (plain, ``.gz`` or ``.fz``).
    settings : Settings
        The installation's settings (profiles, site, ``ingest.default_profile``).
    jobs : JobContext, optional
        Built from ``settings`` when not given (pass one to check many files).

    Returns
    -------
    FileCheck
        With ``error`` set when ingestion would quarantine the file.

    Raises
    ------
    ProfileError
        ``ingest.default_profile`` names no profile.
    """
    jobs = jobs or _jobs(settings)
    spath = os.path.abspath(path)
    try:
        raw = read_raw_file(spath, max_data_bytes=settings.ingest.max_data_bytes)
    except NightlogError as exc:
        return FileCheck(spath, error=str(exc) or type(exc).__name__)
    header_json, values = raw.items()
    match = explain_profile_match(jobs.registry, values,
                          default_profile=settings.ingest.default_profile)
    try:
        profile = jobs.registry.get(match.chosen)
        site = settings.site if settings.site.has_place else None
        layout: AmplifierLayout | None = None
        if profile.multi_amplifier:  # as ingestion reads it: the assembled detector
            # (a mosaic's first CCD: the others read alike but for their CCD)
            norm, layout = normalize_ccds(
                values, raw_values(raw.primary),
                [ExtensionHeader(i, raw_values(cards), shape)
                 for i, cards, shape in raw.extensions] or
                [ExtensionHeader(raw.hdu, values, raw.shape)], profile, site=site)[0]
        else:
            norm = normalize_header(values, profile, site=site, shape=raw.shape)
    except NightlogError as exc:
        return FileCheck(spath, match=match, error=str(exc) or type(exc).__name__)
    frame = unsaved_frame(norm, header_json)
    fields = field_sources(values, profile, norm)
    return FileCheck(
        spath, match=match, fields=fields,
        calibration_keys=_calibration_keys(frame, norm.kind, profile),
        settings=(_settings_of(frame, profile, jobs, fields) if layout is None
                  else _amplifier_settings(layout)),
        warnings=tuple(profile_warnings(values, profile, norm, layout)), norm=norm)


def check_files(paths: Sequence[str | os.PathLike[str]], settings: Settings
                ) -> list[FileCheck]:
    """:func:`check_file` for each of ``paths``, in order."""
    jobs = _jobs(settings)
    return [check_file(p, settings, jobs=jobs) for p in paths]


def _jobs(settings: Settings) -> JobContext:
    """The reduction's context; an ``ingest.default_profile`` that names no profile is
    the configuration's error, not a file's."""
    jobs = JobContext.from_settings(settings)
    if settings.ingest.default_profile is not None:
        jobs.registry.get(settings.ingest.default_profile)
    return jobs
