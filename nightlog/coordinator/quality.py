"""Checks a raw calibration frame must pass before it enters a master.

Each check looks at a small central region of the raw file (read without loading
the whole image) or at catalogue values, and each rejection carries a reason a
person can act on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nightlog.calibration.policy import InputChecks
from nightlog.catalogue.models import Frame
from nightlog.coordinator.preparation import skip_columns_for
from nightlog.errors import NightlogError
from nightlog.header.profiles import InstrumentProfile
from nightlog.sections import parse_section
from nightlog.store.images import read_region

__all__ = ["central_box", "check_inputs"]

_MAD = 1.4826


def central_box(shape: tuple[int, int], size: int = 512) -> tuple[slice, slice]:
    """A box of at most ``size`` × ``size`` pixels at the centre of ``shape``."""
    ny, nx = shape
    hy, hx = min(size, ny // 2 or 1) // 2 or 1, min(size, nx // 2 or 1) // 2 or 1
    cy, cx = ny // 2, nx // 2
    return slice(max(cy - hy, 0), cy + hy), slice(max(cx - hx, 0), cx + hx)


def _box_in_data(frame: Frame) -> tuple[slice, slice]:
    shape = (frame.naxis2, frame.naxis1)
    section = frame.trimsec or frame.datasec
    if section is None:
        return central_box(shape)
    ys, xs = parse_section(section, shape)
    y0, y1, _ = ys.indices(shape[0])
    x0, x1, _ = xs.indices(shape[1])
    inner = central_box((abs(y1 - y0), abs(x1 - x0)))
    return (slice(min(y0, y1) + inner[0].start, min(y0, y1) + inner[0].stop),
            slice(min(x0, x1) + inner[1].start, min(x0, x1) + inner[1].stop))


def _robust(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    med = float(np.median(finite))
    return med, _MAD * float(np.median(np.abs(finite - med)))


def _pedestal(frame: Frame, profile: InstrumentProfile, bias_level: float | None) -> float:
    """Bias level of a raw frame: its overscan when the profile uses it, plus the
    master bias level (the residual after overscan, or the full level)."""
    level = 0.0
    if profile.subtract_overscan and frame.biassec:
        shape = (frame.naxis2, frame.naxis1)
        rows, cols = parse_section(frame.biassec, shape)
        start, stop, _ = cols.indices(shape[1])
        skip = skip_columns_for(frame, profile)
        data_left = (frame.datasec is None
                     or parse_section(frame.datasec, shape)[1].indices(shape[1])[0] < start)
        cols = slice(start + skip, stop) if data_left else slice(start, stop - skip)
        level += _robust(read_region(frame.path, frame.hdu, (rows, cols)))[0]
    if bias_level is not None:
        level += float(bias_level)
    return level


def check_inputs(kind: str, frames: Sequence[Frame], profile: InstrumentProfile,
                 checks: InputChecks, *, bias_level: float | None = None
                 ) -> tuple[list[Frame], list[tuple[int, str]]]:
    """Split ``frames`` into accepted ones and ``(frame id, reason)`` rejections."""
    accepted: list[Frame] = []
    rejected: list[tuple[int, str]] = []
    stats: dict[int, tuple[float, float]] = {}
    for frame in frames:
        if frame.status != "ok":
            rejected.append((frame.id, f"frame marked {frame.status}: {frame.status_reason}"))
            continue
        if kind == "dark" and frame.ccd_temp is not None and frame.set_temp is not None \
                and abs(frame.ccd_temp - frame.set_temp) > profile.dark_temp_tolerance:
            rejected.append((frame.id, f"CCD at {frame.ccd_temp:g} °C departs from its set "
                                       f"point {frame.set_temp:g} °C (tolerance "
                                       f"{profile.dark_temp_tolerance:g})"))
            continue
        if kind in ("bias", "flat"):
            try:
                stats[frame.id] = _robust(read_region(frame.path, frame.hdu, _box_in_data(frame)))
            except NightlogError as exc:
                rejected.append((frame.id, f"unreadable: {exc}"))
                continue
        accepted.append(frame)

    if kind == "bias" and len(accepted) >= 3:
        levels = np.array([stats[f.id][0] for f in accepted])
        noises = np.array([stats[f.id][1] for f in accepted])
        centre, spread = _robust(levels)
        typical_noise = float(np.median(noises))
        limit = max(checks.bias_level_sigma * spread, checks.bias_level_floor)
        keep = []
        for f, level, noise in zip(accepted, levels, noises, strict=True):
            if abs(level - centre) > limit:
                rejected.append((f.id, f"bias level {level:.1f} ADU departs from the group's "
                                       f"{centre:.1f} by more than {limit:.1f}"))
            elif noise > checks.bias_noise_factor * typical_noise:
                rejected.append((f.id, f"bias noise {noise:.2f} ADU exceeds "
                                       f"{checks.bias_noise_factor:g} × the group's "
                                       f"{typical_noise:.2f}"))
            else:
                keep.append(f)
        accepted = keep
    elif kind == "flat":
        keep = []
        for f in accepted:
            level = stats[f.id][0]
            saturation = f.saturation or profile.saturation or 65535.0
            try:
                signal = level - _pedestal(f, profile, bias_level)
            except NightlogError as exc:
                rejected.append((f.id, f"unreadable overscan: {exc}"))
                continue
            if level > checks.flat_max_fraction * saturation:
                rejected.append((f.id, f"flat level {level:.0f} ADU is above "
                                       f"{checks.flat_max_fraction:g} of saturation "
                                       f"({saturation:.0f}): non-linear or saturated"))
            elif signal < checks.flat_min_level:
                rejected.append((f.id, f"under-exposed flat: {signal:.0f} ADU above bias, "
                                       f"{checks.flat_min_level:g} needed"))
            else:
                keep.append(f)
        accepted = keep
    return accepted, rejected
