"""Checks a raw calibration frame must pass before it enters a master.

Pure rules over plain values: a frame's catalogue facts (:class:`CalibrationInput`)
and the level and noise of its central region (:class:`RegionStats`, measured by
whoever reads the pixels). Each rejection carries a reason a person can act on:

- a frame flagged bad never enters;
- a dark whose CCD temperature departs from its set point;
- a bias whose level or noise departs from its group;
- a flat that is under-exposed or too close to saturation.

Nothing here opens a file or a database, so the same rules serve a worker that
builds a master and a test that states them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nightlog.calibration.policy import InputChecks
from nightlog.sections import parse_section
from nightlog.states import FrameStatus

__all__ = ["CalibrationInput", "RegionStats", "central_box", "check_header",
           "check_levels", "data_box", "overscan_columns", "robust_level"]

_MAD = 1.4826


@dataclass(frozen=True, slots=True)
class CalibrationInput:
    """A raw calibration frame as a master build sees it: catalogue facts, plain values.

    Sections are FITS sections (1-based, inclusive) of the raw image; ``gain`` is
    in e⁻/ADU and ``read_noise`` in e⁻ (``None``: unknown); temperatures in °C.
    """

    id: int
    path: str
    hdu: int
    sha256: str
    obs_time: dt.datetime
    exptime: float | None
    naxis1: int
    naxis2: int
    biassec: str | None = None
    datasec: str | None = None
    trimsec: str | None = None
    saturation: float | None = None
    gain: float | None = None
    read_noise: float | None = None
    ccd_temp: float | None = None
    set_temp: float | None = None
    status: str = FrameStatus.OK
    status_reason: str | None = None
    #: A multi-amplifier frame's amplifiers (``AmplifierLayout.as_json()``), else None.
    amplifiers: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.naxis2, self.naxis1)


@dataclass(frozen=True, slots=True)
class RegionStats:
    """Robust level and noise (MAD × 1.4826) of a frame's central data region, ADU;
    ``pedestal`` is its bias level (overscan plus master bias level) where a flat
    needs it."""

    level: float
    noise: float
    pedestal: float = 0.0


def central_box(shape: tuple[int, int], size: int = 512) -> tuple[slice, slice]:
    """A box of at most ``size`` × ``size`` pixels at the centre of ``shape``."""
    ny, nx = shape
    hy, hx = min(size, ny // 2 or 1) // 2 or 1, min(size, nx // 2 or 1) // 2 or 1
    cy, cx = ny // 2, nx // 2
    return slice(max(cy - hy, 0), cy + hy), slice(max(cx - hx, 0), cx + hx)


def data_box(frame: CalibrationInput) -> tuple[slice, slice]:
    """The central box of ``frame``'s data section (trim, else data, else the image)."""
    shape = frame.shape
    section = frame.trimsec or frame.datasec
    if section is None:
        return central_box(shape)
    ys, xs = parse_section(section, shape)
    y0, y1, _ = ys.indices(shape[0])
    x0, x1, _ = xs.indices(shape[1])
    inner = central_box((abs(y1 - y0), abs(x1 - x0)))
    return (slice(min(y0, y1) + inner[0].start, min(y0, y1) + inner[0].stop),
            slice(min(x0, x1) + inner[1].start, min(x0, x1) + inner[1].stop))


def overscan_columns(frame: CalibrationInput, skip_columns: int
                     ) -> tuple[slice, slice] | None:
    """The overscan pixels whose level is a raw frame's bias (``None``: no overscan),
    leaving out the ``skip_columns`` next to the data."""
    if not frame.biassec:
        return None
    shape = frame.shape
    rows, cols = parse_section(frame.biassec, shape)
    start, stop, _ = cols.indices(shape[1])
    data_left = (frame.datasec is None
                 or parse_section(frame.datasec, shape)[1].indices(shape[1])[0] < start)
    cols = (slice(start + skip_columns, stop) if data_left
            else slice(start, stop - skip_columns))
    return rows, cols


def robust_level(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation of the finite ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    med = float(np.median(finite))
    return med, _MAD * float(np.median(np.abs(finite - med)))


def check_header(kind: str, frames: Sequence[CalibrationInput], *,
                 dark_temp_tolerance: float
                 ) -> tuple[list[CalibrationInput], list[tuple[int, str]]]:
    """The checks that need no pixels: a frame's status, and a dark's temperature.

    Returns
    -------
    accepted, rejected
        The frames that pass, and ``(frame id, reason)`` of those that do not.
    """
    accepted: list[CalibrationInput] = []
    rejected: list[tuple[int, str]] = []
    for frame in frames:
        if frame.status != FrameStatus.OK:
            rejected.append((frame.id, f"frame marked {frame.status}: {frame.status_reason}"))
        elif kind == "dark" and frame.ccd_temp is not None and frame.set_temp is not None \
                and abs(frame.ccd_temp - frame.set_temp) > dark_temp_tolerance:
            rejected.append((frame.id, f"CCD at {frame.ccd_temp:g} °C departs from its set "
                                       f"point {frame.set_temp:g} °C (tolerance "
                                       f"{dark_temp_tolerance:g})"))
        else:
            accepted.append(frame)
    return accepted, rejected


def check_levels(kind: str, frames: Sequence[CalibrationInput],
                 stats: Mapping[int, RegionStats], checks: InputChecks, *,
                 saturation: float | None = None
                 ) -> tuple[list[CalibrationInput], list[tuple[int, str]]]:
    """The checks on measured levels: biases against their group, flats against
    their exposure and saturation (``saturation``: the profile's, where a frame
    has none). Darks pass through.

    Returns
    -------
    accepted, rejected
        The frames that pass, and ``(frame id, reason)`` of those that do not.
    """
    rejected: list[tuple[int, str]] = []
    keep: list[CalibrationInput] = []
    if kind == "bias" and len(frames) >= 3:
        levels = np.array([stats[f.id].level for f in frames])
        noises = np.array([stats[f.id].noise for f in frames])
        centre, spread = robust_level(levels)
        typical_noise = float(np.median(noises))
        limit = max(checks.bias_level_sigma * spread, checks.bias_level_floor)
        for f, level, noise in zip(frames, levels, noises, strict=True):
            if abs(level - centre) > limit:
                rejected.append((f.id, f"bias level {level:.1f} ADU departs from the group's "
                                       f"{centre:.1f} by more than {limit:.1f}"))
            elif noise > checks.bias_noise_factor * typical_noise:
                rejected.append((f.id, f"bias noise {noise:.2f} ADU exceeds "
                                       f"{checks.bias_noise_factor:g} × the group's "
                                       f"{typical_noise:.2f}"))
            else:
                keep.append(f)
        return keep, rejected
    if kind == "flat":
        for f in frames:
            level = stats[f.id].level
            limit = f.saturation or saturation or 65535.0
            signal = level - stats[f.id].pedestal
            if level > checks.flat_max_fraction * limit:
                rejected.append((f.id, f"flat level {level:.0f} ADU is above "
                                       f"{checks.flat_max_fraction:g} of saturation "
                                       f"({limit:.0f}): non-linear or saturated"))
            elif signal < checks.flat_min_level:
                rejected.append((f.id, f"under-exposed flat: {signal:.0f} ADU above bias, "
                                       f"{checks.flat_min_level:g} needed"))
            else:
                keep.append(f)
        return keep, rejected
    return list(frames), rejected
