"""What a profile leaves to a default for a frame, said out loud, once per instrument.

A header can normalise without error and still leave the reduction to assume a
number (no read noise, no gain, no saturation level), leave out a step the header
asks for (an overscan ``BIASSEC`` never subtracted, a ``TRIMSEC`` never applied),
or rest on a guess (the generic profile, a frame-type word no profile knows, a
date without a time, no site). :func:`profile_warnings` lists these for one frame;
``nightlog profile check`` prints them per file, and ingestion and the watch
daemon say each one once per instrument through :class:`WarningsOnce`.

The overscan and trim rules are those of the reduction
(:meth:`~nightlog.coordinator.context.JobContext.preparation_of`): the overscan is
subtracted when the profile says ``subtract_overscan`` and the frame has an
overscan section; the trim is the frame's TRIMSEC, else its DATASEC. For a
multi-amplifier frame they are the amplifiers': each amplifier's gain, read noise
and saturation; its overscan (``biassec``) is always subtracted and its data
section always kept, so neither is warned about.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nightlog.header.amplifiers import AmplifierLayout
from nightlog.header.model import NormalizedHeader
from nightlog.header.profiles import FALLBACK_PROFILE, InstrumentProfile
from nightlog.header.values import HeaderView, describe

__all__ = ["ProfileWarning", "WarningCode", "WarningsOnce", "profile_warnings"]

#: Header keywords that describe regions, whatever the profile reads.
_OVERSCAN_KEYWORDS = ("BIASSEC",)
_TRIM_KEYWORDS = ("TRIMSEC", "DATASEC")


class WarningCode(StrEnum):
    """What a profile check warns about (the word in JSON, CSV and log lines)."""

    GENERIC_PROFILE = "generic-profile"
    UNKNOWN_FRAME_TYPE = "unknown-frame-type"
    NO_FRAME_TYPE = "no-frame-type"
    DATE_WITHOUT_TIME = "date-without-time"
    NO_SITE = "no-site"
    NO_GAIN = "no-gain"
    NO_READ_NOISE = "no-read-noise"
    NO_SATURATION = "no-saturation"
    OVERSCAN_OFF = "overscan-off"
    TRIM_OFF = "trim-off"


@dataclass(frozen=True, slots=True)
class ProfileWarning:
    """One warning: its ``code``, a sentence, and the ``subject`` it is about when
    one instrument can have several (the unknown frame-type word)."""

    code: WarningCode
    message: str
    subject: str = ""


def _present(view: HeaderView, keywords: tuple[str, ...]) -> list[str]:
    return [f"{k}={describe(view.get(k))}" for k in keywords if k in view]


def profile_warnings(header: Mapping[str, Any], profile: InstrumentProfile,
                     norm: NormalizedHeader, layout: AmplifierLayout | None = None
                     ) -> list[ProfileWarning]:
    """The warnings for one frame normalised with ``profile``.

    Parameters
    ----------
    header : mapping
        The raw header; not modified.
    profile : InstrumentProfile
        The profile used.
    norm : NormalizedHeader
        ``normalize_header(header, profile, ...)``.
    layout : AmplifierLayout or None
        A multi-amplifier frame's amplifiers: the numbers and regions are theirs.

    Returns
    -------
    list of ProfileWarning
        Empty when every number has a source and every region the header names is
        used.
    """
    view = HeaderView(header)
    name = profile.name
    out: list[ProfileWarning] = []

    def warn(code: WarningCode, message: str, subject: str = "") -> None:
        out.append(ProfileWarning(code, message, subject))

    if name == FALLBACK_PROFILE:
        warn(WarningCode.GENERIC_PROFILE,
             "no instrument profile matched: the generic profile's defaults apply (the "
             "overscan is not subtracted; gain, read noise and saturation only from the "
             "header); describe the camera in [instruments.<name>]")
    if norm.kind == "unknown":
        if norm.raw_type is None:
            warn(WarningCode.NO_FRAME_TYPE, "no frame type: none of "
                 + ", ".join(profile.type_keywords) + " holds text; the frame is 'unknown'")
        else:
            warn(WarningCode.UNKNOWN_FRAME_TYPE,
                 f"frame type {norm.raw_type!r} is not a word of profile {name}'s "
                 "frame_types; the frame is 'unknown' (add it to frame_types)", norm.raw_type)
    if "time_note" in norm.extra:
        warn(WarningCode.DATE_WITHOUT_TIME,
             f"{norm.extra['time_note']}; the start was taken from "
             f"{norm.extra.get('time_source', 'another keyword')}")
    if norm.extra.get("site_source", "").startswith("utc"):
        warn(WarningCode.NO_SITE, "no site known (profile, [site] or a longitude keyword): "
             "the night runs noon to noon UTC")
    if layout is not None:
        out.extend(_amplifier_warnings(profile, layout))
        return out
    if norm.gain is None:
        warn(WarningCode.NO_GAIN, f"no gain: neither profile {name} nor the header ("
             + ", ".join(profile.gain_keywords) + ") gives one; the reduction assumes "
             "1 e-/ADU")
    if norm.read_noise is None:
        warn(WarningCode.NO_READ_NOISE, f"no read noise: neither profile {name} nor the "
             "header (" + ", ".join(profile.read_noise_keywords) + ") gives one; the "
             "reduction uses the one measured on the master bias, or 0 e- without one")
    if norm.saturation is None:
        warn(WarningCode.NO_SATURATION, f"no saturation level: neither profile {name} nor "
             "the header (" + ", ".join(profile.saturation_keywords) + ") gives one; "
             "saturated pixels are not masked")
    over = _present(view, _OVERSCAN_KEYWORDS)
    if over and not (profile.subtract_overscan and norm.biassec is not None):
        why = (f"profile {name} has subtract_overscan = false" if not profile.subtract_overscan
               else norm.extra.get("overscan_note")
               or f"profile {name} reads its overscan from {profile.overscan or 'nothing'}")
        warn(WarningCode.OVERSCAN_OFF,
             f"the header has {', '.join(over)} but no overscan is subtracted: {why}")
    trim = _present(view, _TRIM_KEYWORDS)
    if trim and norm.trimsec is None and norm.datasec is None:
        warn(WarningCode.TRIM_OFF,
             f"the header has {', '.join(trim)} but the frame is not trimmed: profile "
             f"{name} reads trim from {profile.trim or 'nothing'} and datasec from "
             f"{profile.datasec or 'nothing'}, which give no section for this frame")
    return out


#: The numbers an amplifier may lack: (code, its field, in words, the profile's
#: keywords for it, what the reduction does without it).
_AMPLIFIER_NUMBERS = (
    (WarningCode.NO_GAIN, "gain", "gain", "gain_keywords", "the reduction assumes 1 e-/ADU"),
    (WarningCode.NO_READ_NOISE, "read_noise", "read noise", "read_noise_keywords",
     "the reduction uses the one measured on the master bias"),
    (WarningCode.NO_SATURATION, "saturation", "saturation level", "saturation_keywords",
     "saturated pixels are not masked"),
)


def _amplifier_warnings(profile: InstrumentProfile, layout: AmplifierLayout
                        ) -> list[ProfileWarning]:
    """The number and region warnings of a multi-amplifier frame, per amplifier."""
    amps = layout.amplifiers
    name = profile.name
    out = []

    def names(selected: list[str]) -> str:
        return "amplifier(s) " + ", ".join(selected)

    for code, field_name, words, keywords, consequence in _AMPLIFIER_NUMBERS:
        missing = [a.name for a in amps if getattr(a, field_name) is None]
        if missing:
            out.append(ProfileWarning(code, f"no {words} for {names(missing)}: neither the "
                       f"amplifier, profile {name} nor the header ("
                       + ", ".join(getattr(profile, keywords)) + f") gives one; {consequence}"))
    return out


@dataclass(slots=True)
class WarningsOnce:
    """Warnings said once per ``(profile, instrument, code, subject)``, and how many
    frames each one was seen on; lives for one batch or one daemon."""

    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def new(self, profile: str, instrument: str | None,
            warnings: Iterable[ProfileWarning]) -> list[ProfileWarning]:
        """Count ``warnings`` for a frame; return those not seen before."""
        fresh = []
        for warning in warnings:
            key = (profile, instrument or "", str(warning.code), warning.subject)
            if key not in self.counts:
                fresh.append(warning)
            self.counts[key] += 1
        return fresh

    def frames(self, profile: str, instrument: str | None, warning: ProfileWarning) -> int:
        """On how many frames ``warning`` was seen for this profile and instrument."""
        return self.counts[(profile, instrument or "", str(warning.code), warning.subject)]
