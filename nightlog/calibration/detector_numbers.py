"""Where a reduction's detector numbers come from: profile, header keyword, or measured.

The gain and read noise a frame is reduced with are the profile's when it gives
them (for a CMOS camera's gain, its ``gain_table`` entry for the frame's gain
setting), else the header's (the first of the profile's keywords the frame has). When
neither gives a gain, or the profile says ``gain = "measured"``, the gain the master
flat chosen for the frame measured by photon transfer (``gain_ptc`` in its
statistics, over all usable pairs of its flats) is used. When
neither gives a read noise, the one nightlog measured on the master bias chosen
for the frame (from a pair of its biases, ``read_noise_adu`` in its statistics)
is used, converted to electrons with the frame's gain; only when there is none
either is it 0 e⁻, and the source says so. The source travels with the number:
into the product's parameters and header and into ``nightlog match``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightlog.catalogue.models import Frame, Master
from nightlog.header.profiles import InstrumentProfile

__all__ = ["DetectorNumber", "detector_numbers", "gain_of", "read_noise_of",
           "warn_if_assumed"]

log = logging.getLogger("nightlog.reduce")
#: (profile, number) pairs already warned about in this process.
_WARNED: set[tuple[str, str]] = set()
_WHAT = {"gain": "a gain of 1 e-/ADU", "read_noise": "a read noise of 0 e-"}

#: What the reduction assumes when nothing gives a number.
_DEFAULT_GAIN = 1.0
_DEFAULT_READ_NOISE = 0.0


@dataclass(frozen=True, slots=True)
class DetectorNumber:
    """A detector figure and where it came from.

    Attributes
    ----------
    value : float
        The number used (e⁻/ADU for a gain, e⁻ for a read noise).
    source : str
        ``'profile <name>'``, ``'header <KEYWORD>'``, ``'measured on master <id>'``
        (a read noise on the master bias, a gain on the master flat)
        or ``'default: none given'``.
    master_id : int or None
        The master it was measured on.
    """

    value: float
    source: str
    master_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``value``, ``source`` and ``master`` (id or ``None``)."""
        return {"value": self.value, "source": self.source, "master": self.master_id}


def _header_keyword(frame: Frame, keywords: tuple[str, ...]) -> str:
    """The first of ``keywords`` with a value in the frame's original header."""
    present = {str(card[0]).upper(): card[1] for card in (frame.header or [])
               if isinstance(card, list | tuple) and len(card) >= 2}
    for keyword in keywords:
        value = present.get(keyword.upper())
        if value is not None and str(value).strip():
            return keyword
    return "/".join(keywords) if keywords else "keyword"


def _measured_gain(flat: Master | None) -> float | None:
    if flat is None or not isinstance(flat.stats, dict):
        return None
    value = flat.stats.get("gain_ptc")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def gain_of(frame: Frame, profile: InstrumentProfile,
            flat: Master | None = None) -> DetectorNumber:
    """The gain ``frame`` is reduced with, and its source.

    An assembled multi-amplifier frame is in electrons (1). Otherwise the
    profile's; with ``gain = "measured"`` the photon-transfer gain of the master
    flat ``flat``; a CMOS camera's ``gain_table`` entry for the frame's setting; the
    header's; the photon-transfer gain when nothing else gives one; else 1 e⁻/ADU
    with a source that says so.
    """
    if frame.amplifiers is not None:
        # Each amplifier was multiplied by its own gain when the frame was assembled.
        return DetectorNumber(1.0, "amplifiers: assembled in electrons")
    if profile.gain is not None:
        return DetectorNumber(float(profile.gain), f"profile {profile.name}")
    measured = _measured_gain(flat)
    if measured is not None and flat is not None and profile.gain_measured:
        return DetectorNumber(measured, f"measured on master {flat.id}", flat.id)
    tabled = profile.gain_for_setting(frame.gain_setting)
    if tabled is not None and frame.gain_setting is not None:
        return DetectorNumber(float(tabled), f"profile {profile.name} gain_table"
                                             f"[{frame.gain_setting:g}]")
    if measured is not None and flat is not None and frame.gain is None:
        return DetectorNumber(measured, f"measured on master {flat.id}", flat.id)
    # Asked for a measured gain and none was measured: the fallback says so.
    missing = "; no gain measured on a master flat" if profile.gain_measured else ""
    if frame.gain is not None:
        return DetectorNumber(float(frame.gain),
                              f"header {_header_keyword(frame, profile.gain_keywords)}"
                              + missing)
    return DetectorNumber(_DEFAULT_GAIN, "default: none given" + missing)


def _measured_adu(bias: Master | None) -> float | None:
    if bias is None or not isinstance(bias.stats, dict):
        return None
    value = bias.stats.get("read_noise_adu")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def read_noise_of(frame: Frame, profile: InstrumentProfile, bias: Master | None,
                  gain: DetectorNumber | None = None) -> DetectorNumber:
    """The read noise ``frame`` is reduced with, and its source.

    Parameters
    ----------
    frame : Frame
        The frame reduced.
    profile : InstrumentProfile
        Its profile.
    bias : Master or None
        The master bias chosen for it; its measured read noise is used when the
        profile and the header give none.
    gain : DetectorNumber, optional
        The gain used (default :func:`gain_of`), converting the measurement (ADU)
        to electrons.
    """
    if frame.amplifiers is not None and frame.read_noise is not None:
        # The reduction uses each amplifier's own; this one is their root mean square.
        return DetectorNumber(float(frame.read_noise), "amplifiers: root mean square")
    if profile.read_noise is not None:
        return DetectorNumber(float(profile.read_noise), f"profile {profile.name}")
    if frame.read_noise is not None:
        return DetectorNumber(float(frame.read_noise),
                              f"header {_header_keyword(frame, profile.read_noise_keywords)}")
    measured = _measured_adu(bias)
    if measured is not None and bias is not None:
        g = (gain or gain_of(frame, profile)).value
        return DetectorNumber(measured * g, f"measured on master {bias.id}", bias.id)
    return DetectorNumber(_DEFAULT_READ_NOISE, "default: none given")


def warn_if_assumed(numbers: Mapping[str, DetectorNumber], profile: str) -> list[str]:
    """Say, once per profile and number in this process, that nothing gave a number and
    a default is assumed (the reduction's noise model is then wrong); return the names
    of the numbers assumed."""
    assumed = [name for name, n in numbers.items() if n.source.startswith("default")]
    for name in assumed:
        if (profile, name) not in _WARNED:
            _WARNED.add((profile, name))
            log.warning("profile %s: no %s in the profile, the header or a master bias; "
                        "reducing with %s: give it in the profile", profile,
                        name.replace("_", " "), _WHAT.get(name, "a default"),
                        extra={"event": "detector-default", "profile": profile,
                               "number": name})
    return assumed


def detector_numbers(frame: Frame, profile: InstrumentProfile, bias: Master | None,
                     flat: Master | None = None) -> dict[str, DetectorNumber]:
    """``{'gain': …, 'read_noise': …}`` for ``frame`` with the master bias ``bias``
    and the master flat ``flat``."""
    gain = gain_of(frame, profile, flat)
    return {"gain": gain, "read_noise": read_noise_of(frame, profile, bias, gain)}
