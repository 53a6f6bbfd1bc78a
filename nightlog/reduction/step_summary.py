"""The figures a reduction step records for the calibration history, cheaply.

A step's summary (the median of the master it applied, the frame's median
uncertainty) is provenance, read by a person or a trend plot, never used to
correct pixels. Taking it over all 8.5 million pixels of a frame costs more
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

__all__ = ["SUMMARY_SAMPLE", "summary_median", "summary_sample"]

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
        sample = sample[np.isfinite(sample)]
    return float(np.median(sample)) if sample.size else float("nan")
