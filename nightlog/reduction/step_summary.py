"""The figures a reduction step records for the calibration history, cheaply.

A step's summary (the median of the master it applied, the frame's median
uncertainty) and the statistics of each frame a master is combined from
(:func:`sampled_frame_statistics`) are provenance, read by a person or a trend
plot, never used to correct pixels. Taking it over all 8.5 million pixels of a frame costs more
than the step itself (a median is a partial sort), so :func:`summary_median`
takes it over a fixed, deterministic subsample of about :data:`SUMMARY_SAMPLE`
pixels, spread over every row and every column: the standard error of such a
median is ``1.25 σ / √n``, 0.25 % of the pixel spread, far below what the
history is read for. The same frame always gives the same figure.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from nightlog.reduction.characterise import FrameStatistics
from nightlog.reduction.order_statistics import median

__all__ = ["SUMMARY_SAMPLE", "sampled_frame_statistics", "summary_median", "summary_sample"]

_MAD_TO_SIGMA = 1.482602218505602

#: Pixels a summary statistic is taken over (at most; a smaller frame uses all).
SUMMARY_SAMPLE = 1 << 18


def summary_sample(values: npt.ArrayLike, *, size: int = SUMMARY_SAMPLE) -> np.ndarray:
    """Every ``k``-th pixel of ``values`` in memory order, about ``size`` of them.

    Parameters
    ----------
    values : array_like
        An image (any shape and dtype).
    size : int, optional
        Pixels wanted (default :data:`SUMMARY_SAMPLE`); the whole image when it
        has no more.

    Returns
    -------
    numpy.ndarray
        A one-dimensional view or copy of the chosen pixels; ``k`` is chosen
        coprime with the row length so the sample walks over every column
        instead of repeating a few.
    """
    flat = np.asarray(values).reshape(-1)
    step = max(1, flat.size // max(1, size))
    if step > 1:
        row = np.asarray(values).shape[-1] if np.ndim(values) else 1
        while math.gcd(step, row) != 1:
            step += 1
    return flat[::step]


def summary_median(values: npt.ArrayLike, *, size: int = SUMMARY_SAMPLE) -> float:
    """The median of the finite pixels of :func:`summary_sample`, in ``values``' unit.

    Returns NaN when the sample holds no finite value.
    """
    sample = summary_sample(values, size=size)
    if sample.dtype.kind == "f":
        # A new array (a boolean selection): partitioned in place.
        sample = sample[np.isfinite(sample)]
        return median(sample, overwrite=True) if sample.size else float("nan")
    return median(sample) if sample.size else float("nan")


def sampled_frame_statistics(values: npt.ArrayLike, *,
                             size: int = SUMMARY_SAMPLE) -> FrameStatistics:
    """A frame's statistics for the calibration history, each computed once.

    Parameters
    ----------
    values : array_like
        A prepared frame (any unit).
    size : int, optional
        Pixels of the subsample (default :data:`SUMMARY_SAMPLE`).

    Returns
    -------
    FrameStatistics
        ``mean``, ``median``, ``std`` and ``robust_std`` (1.4826 MAD) of the finite
        pixels of :func:`summary_sample`; ``minimum``, ``maximum`` and ``n_pixels``
        of all finite pixels (a single extreme pixel is what those are read for).
        All NaN, and ``n_pixels`` 0, for a frame with no finite pixel.
    """
    array = np.asarray(values)
    sample = np.asarray(summary_sample(array, size=size), dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    # The extremes of the whole frame first: a NaN would make both NaN and an
    # infinity one of them, so finite extremes say every pixel is finite, and the
    # frame-sized finiteness test is made only for a frame that needs it.
    minimum = float(np.min(array)) if array.size else float("nan")
    maximum = float(np.max(array)) if array.size else float("nan")
    n = array.size
    if not (np.isfinite(minimum) and np.isfinite(maximum)) and array.dtype.kind == "f":
        finite_all = np.isfinite(array)
        n = int(np.count_nonzero(finite_all))
        if n:
            minimum = float(np.min(array, where=finite_all, initial=np.inf))
            maximum = float(np.max(array, where=finite_all, initial=-np.inf))
    if n == 0 or sample.size == 0:
        nan = float("nan")
        return FrameStatistics(mean=nan, median=nan, std=nan, robust_std=nan,
                               minimum=nan, maximum=nan, n_pixels=n)
    centre = median(sample)
    return FrameStatistics(
        mean=float(np.mean(sample)), median=centre, std=float(np.std(sample)),
        robust_std=_MAD_TO_SIGMA * median(np.abs(sample - centre), overwrite=True),
        minimum=minimum, maximum=maximum, n_pixels=n)
