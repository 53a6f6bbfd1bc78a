"""Is a master of several nights' frames stable: does each night agree with the whole?

A group short of frames on its night may be completed with the neighbouring
nights' (the profile's ``fallback_nights``). Such a master is only as good as the
set-up was steady: dust that moved, a filter put back askew, a bias level that
drifted would be averaged into a master that suits no night. So before it is
written, each night's frames are combined on their own and compared with the
whole, pixel by pixel, in units of their expected difference::

    z = (night - whole) / sqrt(sigma_night**2 - sigma_whole**2)

(the night's frames are part of the whole, so the variance of the difference is
the difference of the variances). A stable set-up gives a robust standard
deviation of ``z`` near 1; a night above ``limit`` refuses the master.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NightAgreement", "night_agreement"]

# 1.4826 x MAD: the standard deviation of a normal distribution.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class NightAgreement:
    """The nights of a multi-night master against the whole.

    Attributes
    ----------
    scatter : dict of str to float
        Per night (ISO date), the robust standard deviation of ``z`` (dimensionless;
        1 for a steady set-up); nights of a single frame are not judged.
    limit : float
        Largest acceptable scatter.
    """

    scatter: dict[str, float]
    limit: float

    @property
    def stable(self) -> bool:
        return all(v <= self.limit for v in self.scatter.values())

    def describe(self) -> str:
        worst = max(self.scatter.items(), key=lambda kv: kv[1], default=None)
        if worst is None:
            return "no night of two frames or more to compare"
        return (f"night {worst[0]} differs from the multi-night master by {worst[1]:.2f} "
                f"times its expected scatter (limit {self.limit:g})")


def _robust_std(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return float(_MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def night_agreement(whole: Any, nights: Sequence[tuple[str, Sequence[Any]]],
                    combine: Callable[[Sequence[Any]], Any], *, limit: float = 1.5
                    ) -> NightAgreement:
    """Compare each night's own combination with ``whole``.

    Parameters
    ----------
    whole : CCDData
        The master of every night's frames, with its uncertainty (the master's unit).
    nights : sequence of (str, sequence)
        Per night (ISO date), its frames as ``combine`` takes them.
    combine : callable
        Combines frames exactly as ``whole`` was combined; returns a CCDData with
        uncertainty.
    limit : float
        Largest acceptable robust standard deviation of ``z``.

    Returns
    -------
    NightAgreement
        The scatter of each night of two frames or more.
    """
    data = np.asarray(whole.data, dtype=np.float64)
    sigma = np.asarray(whole.uncertainty.array, dtype=np.float64)
    scatter: dict[str, float] = {}
    for night, frames in nights:
        if len(frames) < 2:
            continue
        own = combine(frames)
        own_sigma = np.asarray(own.uncertainty.array, dtype=np.float64)
        expected = np.sqrt(np.clip(own_sigma ** 2 - sigma ** 2, 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.asarray(own.data, dtype=np.float64) - data) / expected
        z[~(expected > 0)] = np.nan
        scatter[night] = _robust_std(z)
    return NightAgreement(scatter, limit)
