"""The robust limit above which a master dark's pixel is HOT, found once.

:func:`hot_limit` is the threshold of
:func:`~nightlog.reduction.mask.hot_pixels_from_dark`: the median of the master
dark's finite pixels plus ``nsigma`` times 1.4826 their median absolute deviation,
a median of the whole frame and one of its deviations. The master dark's builder
finds it and records it (:data:`HOT_CARDS`, :func:`record_hot_limit`); the bit
plane of the frames reduced with that dark then reads it back
(:func:`recorded_hot_limit`) instead of taking both medians again. A step that
changes a dark's values removes the cards (:func:`forget_hot_limit`): its limit no
longer holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.errors import ReductionError
from nightlog.reduction.order_statistics import median

__all__ = ["HOT_CARDS", "forget_hot_limit", "hot_limit", "record_hot_limit",
           "recorded_hot_limit"]

# 1.4826 * MAD estimates the standard deviation of a normal distribution.
_MAD_TO_SIGMA = 1.482602218505602

#: The cards of a master dark's HOT rule (``nsigma``) and the limit it found there
#: (a float32 value, in the dark's unit).
HOT_CARDS = ("HOTNSIG", "HOTLIM")


def _robust_centre_sigma(values: np.ndarray[Any, Any]) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ReductionError("no finite pixels to estimate a threshold from")
    centre = median(finite, overwrite=True)
    sigma = _MAD_TO_SIGMA * median(np.abs(finite - centre), overwrite=True)
    return centre, sigma


def hot_limit(dark_rate: CCDData | npt.ArrayLike, *, nsigma: float = 5.0) -> float:
    """The robust HOT threshold of a master dark, in its unit.

    Parameters
    ----------
    dark_rate : CCDData or array_like
        Master dark (a rate in ADU/s or e⁻/s, or counts of one exposure).
    nsigma : float, optional
        Robust standard deviations above the median.

    Returns
    -------
    float
        ``median + nsigma * 1.4826 * MAD`` of the finite pixels; when the MAD is 0
        (a nearly noiseless dark), the float32 resolution of the median stands for
        the standard deviation.

    Raises
    ------
    ReductionError
        ``nsigma`` is not positive, or the frame has no finite pixels.
    """
    if not nsigma > 0:
        raise ReductionError(f"nsigma must be positive, not {nsigma!r}")
    values = np.asarray(dark_rate.data if isinstance(dark_rate, CCDData) else dark_rate)
    centre, sigma = _robust_centre_sigma(values)
    if sigma == 0.0:
        sigma = float(np.spacing(np.float32(abs(centre)) or np.float32(1.0)))
    return centre + nsigma * sigma


def record_hot_limit(header: fits.Header, nsigma: float, limit: float) -> None:
    """Write a master dark's HOT rule and limit (:data:`HOT_CARDS`) in ``header``.

    The limit is written as the float32 it is compared as: numpy compares float32
    values with a Python float in float32, so the dark's HOT pixels are those above
    ``numpy.float32(limit)``, and that value survives the card's decimal form (the
    float32 nearest to the value read back is it).
    """
    header[HOT_CARDS[0]] = (float(nsigma), "HOT: robust sigmas above the median")
    header[HOT_CARDS[1]] = (float(np.float32(limit)), "HOT: values above this (float32)")


def forget_hot_limit(header: fits.Header) -> None:
    """Remove a dark's HOT cards from ``header`` (a new dark's values: not its limit)."""
    for key in HOT_CARDS:
        header.remove(key, ignore_missing=True)


def recorded_hot_limit(dark: CCDData, nsigma: float) -> np.float32 | None:
    """The HOT limit a master dark recorded for the rule with ``nsigma``.

    Parameters
    ----------
    dark : CCDData
        A master dark with :data:`HOT_CARDS` (:func:`record_hot_limit`).
    nsigma : float
        The rule asked for.

    Returns
    -------
    numpy.float32 or None
        The limit, to compare the dark's float32 values with (``values > limit``
        gives the HOT pixels of :func:`hot_limit`'s threshold, bit for bit); None
        when the dark recorded none, one for another ``nsigma``, or its values are
        not float32.
    """
    stated, limit = (dark.meta.get(key) for key in HOT_CARDS)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool)
                  for v in (stated, limit))
    if (not numbers or np.asarray(dark.data).dtype != np.float32
            or float(stated) != float(nsigma) or not np.isfinite(limit)):
        return None
    return np.float32(limit)
