"""What a master build measures on its raw frames, beside combining them.

The worker's measurements of a build (:mod:`~nightlog.coordinator.master_job`): the
level and noise of each bias or flat's central region, for the input checks that
need pixels; the read noise of the first pair of biases (the clip's spread and the
master's uncertainty); the gain of the first pair of flats and, by photon transfer,
of all of them; and the standard error of the master's level from its frames'
levels. The pixels are read through the store; no SQLAlchemy is imported on this
path.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nightlog.calibration.input_checks import (
    CalibrationInput,
    RegionStats,
    data_box,
    overscan_columns,
    robust_level,
)
from nightlog.coordinator.amplifier_numbers import characterise_amplifiers, first_amplifier
from nightlog.errors import NightlogError
from nightlog.reduction.characterise import gain_from_flats, read_noise_from_biases
from nightlog.reduction.photon_transfer import gain_from_photon_transfer
from nightlog.reduction.preparation import Preparation
from nightlog.sections import Section
from nightlog.store.images import read_image, read_region

if TYPE_CHECKING:  # the job imports this module: its values are only named here
    from nightlog.coordinator.master_job import MasterJob, MasterRef

__all__ = ["BiasPair", "characterise_frames", "level_uncertainty", "pair_figures",
           "pair_read_noise", "region_stats"]


def region_stats(job: MasterJob, bias_level: float | None
                 ) -> tuple[list[CalibrationInput], dict[int, RegionStats],
                            list[tuple[int, str]]]:
    """Level and noise of each bias or flat's central region (and a flat's bias level)."""
    readable: list[CalibrationInput] = []
    stats: dict[int, RegionStats] = {}
    rejected: list[tuple[int, str]] = []
    for item in job.inputs:
        if job.kind not in ("bias", "flat"):
            readable.append(item)
            continue
        # A multi-amplifier frame is checked on its first amplifier's raw pixels.
        frame = first_amplifier(item)
        try:
            level, noise = robust_level(read_region(frame.path, frame.hdu, data_box(frame)))
        except NightlogError as exc:
            rejected.append((frame.id, f"unreadable: {exc}"))
            continue
        pedestal = 0.0
        if job.kind == "flat":
            # An amplifier's own overscan is subtracted when it is assembled.
            region = (None if job.prepare.overscan is None and item.amplifiers is None
                      else overscan_columns(frame, job.prepare.skip_columns))
            try:
                if region is not None:
                    pedestal += robust_level(read_region(frame.path, frame.hdu, region))[0]
            except NightlogError as exc:
                rejected.append((frame.id, f"unreadable overscan: {exc}"))
                continue
            if item.amplifiers is None:  # an assembled master bias is overscan-free
                pedestal += float(bias_level) if bias_level is not None else 0.0
        stats[frame.id] = RegionStats(level, noise, pedestal)
        # Checked against the saturation of the amplifier measured.
        readable.append(dataclasses.replace(item, saturation=frame.saturation))
    return readable, stats, rejected


def characterise_frames(kind: str, frames: Sequence[CalibrationInput], prepare: Preparation,
                        bias: Any, bias_ref: MasterRef | None = None,
                        region: Section | None = None,
                        bias_read_noise_adu: float | None = None,
                        bias_pair: BiasPair | None = None) -> dict[str, Any]:
    """Read noise from the first two biases; gain from the first two flats (with the
    frames' read noise, else the median of the master bias's read-noise map) and, by
    photon transfer, from every usable pair of the flats (:func:`_photon_transfer`)."""
    if len(frames) < 2:
        return {}
    if frames[0].amplifiers is not None:
        return characterise_amplifiers(kind, frames, bias)
    if kind == "bias":
        pair = bias_pair if bias_pair is not None else BiasPair(frames, prepare)
        try:
            adu, n = pair.measure()
        except NightlogError as exc:
            return {"characterisation_error": str(exc)}
        return pair_figures(adu, n, frames[0].gain)
    if kind != "flat" or bias is None:
        return {}  # nothing is measured on a dark, nor on a flat without a bias
    gain = frames[0].gain
    # One overscan level per frame: it takes the bias level away without adding the
    # row-to-row noise of a per-row estimate to the differences measured here.
    prepare = prepare.one_level()
    out: dict[str, Any] = {}
    try:
        a = prepare(read_image(frames[0].path, frames[0].hdu))
        b = prepare(read_image(frames[1].path, frames[1].hdu))
        n = _pair_pixels(a, b)
        read_noise_adu = ((frames[0].read_noise or 0.0) / (gain or 1.0)
                          if frames[0].read_noise else bias_read_noise_adu)
        g = gain_from_flats(a, b, master_bias=bias, read_noise_adu=read_noise_adu)
        del a, b
        # G ∝ 1 / var(Δ); a variance from n values has relative error √(2/(n - 1))
        # (the read-noise share of var(Δ), small for flats, is neglected).
        out["gain_from_flats"] = g
        out["gain_err"] = g * np.sqrt(2.0 / (n - 1)) if n > 1 else None
    except NightlogError as exc:
        out["characterisation_error"] = str(exc)
    out.update(_photon_transfer(frames, prepare, bias, bias_ref, region))
    return out


def pair_figures(adu: float, n: int, gain: float | None) -> dict[str, Any]:
    """The read-noise figures of a bias master from its first pair: the noise in ADU
    and electrons and their standard errors (a standard deviation from ``n`` values:
    ``σ / √(2(n - 1))``), or only ``characterisation_error`` when ``gain`` is
    given and not positive."""
    if gain is not None and not gain > 0:
        return {"characterisation_error": f"gain must be positive, not {gain!r}"}
    err = adu / np.sqrt(2.0 * (n - 1)) if n > 1 else None
    return {"read_noise_adu": adu, "read_noise_e": None if gain is None else adu * gain,
            "read_noise_adu_err": err,
            "read_noise_e_err": None if err is None or gain is None else err * gain}


class BiasPair:
    """The read noise of the first two biases with one overscan level per frame,
    measured once for a build: the characterisation and the master's uncertainty
    both ask for it, from two threads (:func:`pair_read_noise`)."""

    def __init__(self, frames: Sequence[CalibrationInput], prepare: Preparation) -> None:
        self._frames = frames
        self._prepare = prepare.one_level()
        self._lock = threading.Lock()
        self._result: tuple[float, int] | NightlogError | None = None

    def measure(self) -> tuple[float, int]:
        """The read noise (ADU) and the pixels valid in both frames.

        Raises
        ------
        NightlogError
            A frame cannot be read or prepared, or too few pixels are valid.
        """
        with self._lock:
            if self._result is None:
                first, second = self._frames[0], self._frames[1]
                try:
                    a = self._prepare(read_image(first.path, first.hdu))
                    b = self._prepare(read_image(second.path, second.hdu))
                    self._result = (float(read_noise_from_biases(a, b, clip_sigma=5.0).adu),
                                    _pair_pixels(a, b))
                except NightlogError as exc:
                    self._result = exc
            result = self._result
        if isinstance(result, NightlogError):
            raise result
        return result


def _photon_transfer(frames: Sequence[CalibrationInput], prepare: Preparation, bias: Any,
                     bias_ref: MasterRef | None, region: Section | None) -> dict[str, Any]:
    """The gain by photon transfer over all the flats (``gain_ptc`` and its error,
    pairs used and rejected), or why there is none (``gain_ptc_error``).

    The read noise subtracted is the master bias's own (a pair of its biases, ADU:
    no gain needed), else the header's divided by the header's gain. The whole
    trimmed frame is measured: every static pattern (vignetting, the pixel
    response) cancels in the scaled differences, and the error of a variance
    falls as one over the root of the pixel count (the flat scale region, a
    quarter of the frame, left the simulated night's gain 1 % out).
    """
    rn_adu = bias_ref.read_noise_adu if bias_ref is not None else None
    source = "master bias"
    if not (isinstance(rn_adu, int | float) and rn_adu > 0):
        first = frames[0]
        if not (first.read_noise and first.gain):
            return {"gain_ptc_error": "no read noise in ADU: neither the master bias nor "
                                      "the header gives one"}
        rn_adu, source = first.read_noise / first.gain, "header"
    n_bias = bias_ref.n_frames if bias_ref is not None and bias_ref.n_frames else None
    bias_noise = rn_adu / (n_bias ** 0.5) if n_bias else 0.0
    try:
        flats = [_float32(prepare(read_image(f.path, f.hdu))) for f in frames]
        ptc = gain_from_photon_transfer(flats, master_bias=bias, read_noise_adu=rn_adu,
                                        master_bias_noise_adu=bias_noise, region=region)
    except NightlogError as exc:
        return {"gain_ptc_error": str(exc)}
    return {**ptc.stats(), "gain_ptc_read_noise": source}


def _float32(ccd: Any) -> Any:
    """The frame's data as float32 with masked pixels NaN (half the memory of float64)."""
    data = np.array(ccd.data, dtype=np.float32)
    if ccd.mask is not None:
        data[np.asarray(ccd.mask, dtype=bool)] = np.nan
    return data


def _pair_pixels(a: Any, b: Any) -> int:
    """Pixels valid in both frames of a pair (finite, unmasked)."""
    good = np.isfinite(np.asarray(a.data, dtype=float)) & np.isfinite(
        np.asarray(b.data, dtype=float))
    for frame in (a, b):
        if getattr(frame, "mask", None) is not None:
            good &= ~np.asarray(frame.mask, dtype=bool)
    return int(np.count_nonzero(good))


def level_uncertainty(kind: str, frame_levels: Sequence[float], scales: Sequence[float]
                      ) -> float | None:
    """Standard error of a master's level from its frames: ``std / √n`` of the frames'
    levels in the master's units (a bias's median; a dark's median times its scale,
    1/exposure for a rate; a flat's level, the inverse of its scale); ``None`` with
    fewer than two frames."""
    if kind == "flat":
        per_frame = [1.0 / s for s in scales if s]
    else:
        per_frame = [lv * s for lv, s in zip(frame_levels, scales, strict=False)]
    values = np.array([v for v in per_frame if np.isfinite(v)], dtype=float)
    if values.size < 2:
        return None
    return float(np.std(values, ddof=1) / np.sqrt(values.size))


def pair_read_noise(job: MasterJob, accepted: Sequence[CalibrationInput], *,
                    as_combined: bool, pair: BiasPair | None = None) -> float | None:
    """The read noise (ADU) of the first pair of biases, ``None`` for other kinds.

    ``as_combined``: of the frames as they are combined (per-row overscan
    included, whose estimate adds its own noise to every row), the spread the
    clip must allow; else with one overscan level per frame, the noise of a
    pixel, which the master's uncertainty states over √N (a MAD of five values
    per pixel left the master 22 % noisier than read noise / √N on a simulated
    LFC night, and the spread of five values states it to a third). ``pair``: the
    build's :class:`BiasPair`, which measures the latter once.
    """
    if job.kind != "bias" or len(accepted) < 2 or accepted[0].amplifiers is not None:
        return None
    if not as_combined and pair is not None:
        try:
            return pair.measure()[0]
        except NightlogError:
            return None
    prepare = job.prepare if as_combined else job.prepare.one_level()
    try:
        a = prepare(read_image(accepted[0].path, accepted[0].hdu))
        b = prepare(read_image(accepted[1].path, accepted[1].hdu))
        return float(read_noise_from_biases(a, b, clip_sigma=5.0).adu)
    except NightlogError:
        return None  # the MAD clip then; the characterisation says why
