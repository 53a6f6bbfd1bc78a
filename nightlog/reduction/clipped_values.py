"""Sigma clipping of a whole frame's values, as ``astropy.stats.sigma_clip`` does it.

The detector's own numbers (read noise from a pair of biases, the gain from pairs
of flats) are the variance of a difference of two frames after the outliers
(cosmic rays, hot pixels, stars) are clipped. ``astropy.stats.sigma_clip`` with
``axis=None`` clips around the median by the standard deviation and drops the
clipped values at each iteration; its median of an even number of values is
``numpy.nanmedian``'s, which asks for the two middle ranks at once and so falls
back to numpy's generic selection, several times slower on millions of values.
:func:`clip_values` runs the same iterations with
:func:`~nightlog.reduction.order_statistics.median` (``numpy.median`` to the bit,
one selection) on a buffer of its own: the same values are kept, in a third of
the time on a full LFC frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nightlog.reduction.order_statistics import median

__all__ = ["clip_values"]


def clip_values(values: npt.NDArray[np.floating], sigma: float, *, maxiters: int = 5
                ) -> npt.NDArray[np.floating]:
    """The values ``astropy.stats.sigma_clip(values, sigma=sigma, maxiters=maxiters,
    masked=False)`` keeps (median centre, standard deviation, ``axis=None``).

    Parameters
    ----------
    values : ndarray
        Finite values, any shape (flattened); not modified.
    sigma : float
        Clipping threshold on each side, in standard deviations (> 0).
    maxiters : int, optional
        Most iterations; they stop earlier when one clips nothing. Default 5.

    Returns
    -------
    ndarray
        The values kept, 1-D, in their original order (a new array unless nothing
        was clipped).
    """
    kept = np.asarray(values).reshape(-1)
    work = np.empty_like(kept)
    for _ in range(maxiters):
        n = kept.size
        if n == 0:
            break  # everything clipped (values a few subnormals apart): astropy keeps none
        buffer = work[:n]
        np.copyto(buffer, kept)
        # In the values' own precision, as astropy's bounds are.
        centre = kept.dtype.type(median(buffer, overwrite=True))
        spread = np.std(kept)
        low, high = centre - spread * sigma, centre + spread * sigma
        inside = (kept >= low) & (kept <= high)
        if np.count_nonzero(inside) == n:
            break
        kept = kept[inside]
    return kept
