"""Which frames of a night stand out: a robust rule on one figure across the night.

A value is an outlier when it lies more than ``nsigma`` robust standard
deviations (1.4826 × the median absolute deviation, at least √median, the
Poisson scatter of a count) above the night's median *and* more than twice that
median; a night of fewer than ``min_frames`` measured frames is not judged. This
is the rule that shows a frame with 750 cosmic-ray pixels among frames of 30 to
78. Pure: numbers in, indices out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["high_outliers"]

_MAD_TO_SIGMA = 1.482602218505602


def high_outliers(values: Sequence[float | None], *, nsigma: float = 5.0,
                  min_frames: int = 4) -> set[int]:
    """Indices of the values far above the others (``None`` values are skipped).

    Parameters
    ----------
    values : sequence of float or None
        One figure per frame (a count such as cosmic-ray pixels).
    nsigma : float
        How many robust standard deviations above the median.
    min_frames : int
        Fewest measured values for the rule to judge.

    Returns
    -------
    set of int
        Positions in ``values`` of the outliers.
    """
    measured = [(i, float(v)) for i, v in enumerate(values)
                if v is not None and math.isfinite(float(v))]
    if len(measured) < min_frames:
        return set()
    data = np.array([v for _, v in measured])
    median = float(np.median(data))
    spread = max(_MAD_TO_SIGMA * float(np.median(np.abs(data - median))),
                 math.sqrt(max(median, 0.0)), 1e-12)
    return {i for i, v in measured if v > median + nsigma * spread and v > 2.0 * median}
