"""Which frames belong together: calibration groups from the profile's keys.

A group is the set of frames of one kind whose grouping fields agree (the
profile's ``calibration_keys``: by default instrument, detector, binning, readout
mode and shape; darks also by set temperature; flats also by filter; darks of
cameras whose darks do not scale also by exposure time; frames of a camera whose
profile reads a gain setting or an offset also by those, whatever its keys; the
frames of a mosaic's profile (``ccd``) also by their CCD, so that a CCD's frame
is only ever corrected with masters of that CCD). Set
temperatures are compared with the profile's tolerance: for the group key they are
rounded to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nightlog.calibration.windows import grouping_shape
from nightlog.catalogue.models import Frame
from nightlog.header.profiles import InstrumentProfile

__all__ = ["CALIBRATION_NEEDS", "GroupSpec", "frame_field", "group_fields", "group_of"]

#: Which masters a frame of each kind is corrected with, in order.
CALIBRATION_NEEDS: dict[str, tuple[str, ...]] = {
    "science": ("bias", "dark", "flat"),
    "flat": ("bias", "dark"),
    "dark": ("bias",),
    "bias": (),
}


def frame_field(frame: Frame, name: str, profile: InstrumentProfile | None = None) -> Any:
    """The value of grouping field ``name`` for a catalogued frame (a window's shape
    is the full readout's, given its ``profile``)."""
    if name == "shape":
        if profile is not None:
            return grouping_shape(frame, profile)
        return f"{frame.naxis2}x{frame.naxis1}"
    return getattr(frame, name)


def group_fields(profile: InstrumentProfile, kind: str) -> tuple[str, ...]:
    """Grouping fields of ``kind`` for ``profile`` (exposure added for fixed darks; the
    gain setting and offset whenever the profile reads them, so that a master never
    serves another setting because its ``calibration_keys`` forgot them)."""
    fields = tuple(profile.calibration_keys.get(kind, ()))
    if profile.gain_setting_keywords and "gain_setting" not in fields:
        fields = (*fields, "gain_setting")
    if profile.offset_keywords and "offset" not in fields:
        fields = (*fields, "offset")
    if profile.ccd is not None and "ccd" not in fields:
        fields = (*fields, "ccd")
    if kind == "dark" and not profile.darks_scale and "exptime" not in fields:
        fields = (*fields, "exptime")
    return fields


def _canonical(name: str, value: Any, profile: InstrumentProfile) -> str:
    if value is None:
        return "-"
    if name == "set_temp":
        tol = profile.dark_temp_tolerance or 1.0
        return f"{round(float(value) / tol) * tol:g}"
    if name == "exptime":
        return f"{float(value):.3f}"
    return str(value)


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """One calibration group: its kind, profile, fields and their values."""

    kind: str
    profile: str
    values: tuple[tuple[str, Any], ...]
    key: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


def group_of(frame: Frame, kind: str, profile: InstrumentProfile) -> GroupSpec:
    """The group a frame belongs to (as a calibration of ``kind``, or a user of one).

    The frames of a window form groups of their own: their ``window`` is one more
    value (absent for full frames, so their groups are as before)."""
    fields = group_fields(profile, kind)
    values = tuple((name, frame_field(frame, name, profile)) for name in fields)
    if frame.window is not None:
        values = (*values, ("window", frame.window))
    key = "|".join([kind, profile.name, *(f"{n}={_canonical(n, v, profile)}" for n, v in values)])
    return GroupSpec(kind=kind, profile=profile.name, values=values, key=key)
