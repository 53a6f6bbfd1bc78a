"""The read noise of every pixel, from the scatter of a bias stack.

A CCD's read noise is one number (one output amplifier); a CMOS sensor has an
amplifier per pixel, and a few of them are far noisier than the rest: random
telegraph noise, a pixel whose level jumps between two or three states from one
read to the next. Their scatter is real noise, not a cosmic ray, and a single
read-noise figure would under-state it. :func:`read_noise_map` measures each
pixel's standard deviation about the master bias across the bias frames, and
:func:`noisy_pixels` flags those far above the median.

The scatter is measured about the master (the stack's clipped mean), one frame
at a time, so the stack is never held in memory; a value more than
``clip_sigma`` times the frame's typical read noise from the master (25 by
default: a cosmic ray in a bias, never a telegraph jump of a few sigma) is left
out. The quantisation of a converter that writes ``bit_depth`` bits shifted to
16 is part of the measured scatter; ``quantisation_step`` takes out what the
rounding adds on average at the sensor's typical read noise
(:func:`~nightlog.reduction.quantisation.rounding_excess`: Sheppard's ``step**2 /
12`` from a read noise of 0.4 step, less below, where the rounding error is no
longer independent of the noise; the typical read noise is the exact inverse of the
median pixel's variance), so that the map holds the analogue read noise and the
science variance adds the quantisation once.

The map's variance is unbiased, pixel by pixel; its median over the pixels is not
the median read noise: a variance from ``n`` values is a χ² of ``n - 1`` degrees
of freedom, whose median lies below its mean (by 2.5 % in σ for 15 biases).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from nightlog.errors import CombineError, ReductionError
from nightlog.reduction.quantisation import analogue_variance, rounding_excess
from nightlog.reduction.stack import FrameInput, Prepare, read_frame

__all__ = ["noisy_pixels", "read_noise_map"]

_MAD_TO_SIGMA = 1.482602218505602


#: The frame's typical read noise is measured on every n-th pixel (a million pixels
#: of a 4144 x 2822 frame give it to 0.1 %).
_SAMPLE_EVERY = 11


def _typical_sigma(residual: npt.NDArray[np.float32]) -> float:
    sample = residual.ravel()[::_SAMPLE_EVERY]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        raise CombineError("a bias frame has no finite pixel")
    sigma = _MAD_TO_SIGMA * float(np.median(np.abs(finite - np.median(finite))))
    # Heavily quantised data can have a MAD of 0: fall back to the standard deviation.
    return sigma if sigma > 0 else float(np.std(finite))


def _typical_variance(variance: npt.NDArray[np.float64]) -> float | None:
    """The mean variance of the ordinary pixels: the mean, iterated without those more
    than 5 standard deviations above it (telegraph pixels). Not the median: below
    0.4 step a pixel's variance depends on its offset within the step, and the
    median of that skewed spread is far below the mean the expectation gives."""
    values = variance[np.isfinite(variance)]
    if values.size == 0:
        return None
    for _ in range(10):
        mean, spread = float(values.mean()), float(values.std())
        kept = values[values <= mean + 5.0 * spread]
        if kept.size == values.size:
            break
        values = kept
    return float(values.mean())


def read_noise_map(frames: Sequence[FrameInput], centre: npt.ArrayLike, *,
                   prepare: Prepare | None = None, clip_sigma: float = 25.0,
                   quantisation_step: float | None = None) -> npt.NDArray[np.float32]:
    """Per-pixel read noise (ADU) of a bias stack about its master.

    Parameters
    ----------
    frames : sequence of ndarray, CCDData or FrameLoader
        The bias frames the master was combined from (ADU); never modified.
    centre : array_like
        The master bias (same shape, ADU).
    prepare : callable or None
        Applied to each frame as read (the master's own preparation).
    clip_sigma : float
        Values further than this many times the frame's robust read noise from
        the master are left out (cosmic rays).
    quantisation_step : float or None
        ADU between converter values; the rounding's variance at the typical
        read noise is taken out (:func:`~nightlog.reduction.quantisation.rounding_excess`).

    Returns
    -------
    numpy.ndarray of float32
        ``sqrt(sum(d**2) / (n - 1))`` over the ``n`` kept values of each pixel,
        ``d`` the frame minus the master; NaN where fewer than two were kept.

    Raises
    ------
    CombineError
        Fewer than two frames, a frame of another shape, or one without a finite
        pixel.
    ReductionError
        ``clip_sigma`` not positive, or a negative quantisation step.
    """
    if len(frames) < 2:
        raise CombineError(f"a read-noise map needs two bias frames or more, got {len(frames)}")
    if not clip_sigma > 0:
        raise ReductionError(f"clip_sigma must be positive, not {clip_sigma!r}")
    if quantisation_step is not None and not quantisation_step >= 0:
        raise ReductionError(f"quantisation_step must be >= 0 ADU, not {quantisation_step!r}")
    master = np.asarray(centre, dtype=np.float32)
    squares = np.zeros(master.shape, dtype=np.float64)
    kept = np.zeros(master.shape, dtype=np.int32)
    for item in frames:
        data, _ = read_frame(item, prepare=prepare)
        if data.shape != master.shape:
            raise CombineError(f"a bias frame of shape {data.shape} for a master of "
                               f"{master.shape}")
        residual = data - master
        limit = np.float32(clip_sigma * _typical_sigma(residual))
        with np.errstate(invalid="ignore"):
            keep = np.abs(residual) <= limit  # False for NaN
        np.square(residual, out=residual)
        residual[~keep] = 0.0
        squares += residual
        kept += keep
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(kept >= 2, squares / (kept - 1), np.nan)
    if quantisation_step:
        mean = _typical_variance(variance)
        if mean is not None:
            typical = float(np.sqrt(analogue_variance(mean, quantisation_step)))
            variance = np.maximum(variance - rounding_excess(typical, quantisation_step), 0.0)
    return np.sqrt(variance).astype(np.float32)


def noisy_pixels(noise_map: npt.ArrayLike, *, factor: float = 3.0) -> npt.NDArray[np.bool_]:
    """Pixels whose read noise exceeds ``factor`` times the map's median.

    Parameters
    ----------
    noise_map : array_like
        Per-pixel read noise (any unit).
    factor : float
        Threshold in units of the median, > 1.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` for NOISY pixels (never for NaN).

    Raises
    ------
    ReductionError
        ``factor`` not above 1, or a map with no finite positive value.
    """
    if not factor > 1:
        raise ReductionError(f"the noisy factor must be above 1, not {factor!r}")
    values = np.asarray(noise_map, dtype=np.float64)
    finite = values[np.isfinite(values)]
    median = float(np.median(finite)) if finite.size else float("nan")
    if not median > 0:
        raise ReductionError(f"a read-noise map whose median is {median}: nothing to compare")
    with np.errstate(invalid="ignore"):
        return values > factor * median
