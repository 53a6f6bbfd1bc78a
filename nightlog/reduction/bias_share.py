"""The master dark's share of the master bias's error.

A master dark made by subtracting a master bias from each frame, then scaling
each by ``sᵢ`` (``1/tᵢ`` for a rate) and combining, carries ``-s·b`` of that
bias's error ``b``. A science frame less the same bias and ``k`` times the dark
carries ``(1 - k·s)·b``: with darks of the frame's own exposure nothing of the
bias is left, and with short darks scaled to a long frame more than ``b``.

For darks of one exposure ``s`` is that scale. For mixed exposures it is not
the mean of the scales, nor of the scales of the frames a pixel kept: the clip
keeps the long darks' rates more often than the short ones' (they scatter
less), and the short darks' rates it keeps are cut to its window around the
centre, which follows the long ones; so a short dark's value hardly moves with
the bias. ``s`` is measured per pixel through the combination as it is
(:attr:`~nightlog.reduction.combine.CombineResult.offset_response`, the master's
slope for an offset of the bias's size).

The master's uncertainty then holds each pixel's ``s²σ_b²`` besides the scatter
of its frames (which the bias, common to them, does not show): it is the
master's whole error. A science frame's variance holds the rest of the bias's,
``(1 - 2k⟨s⟩)σ_b²``, the cross term with the pixels' mean share (the square,
the larger part for ``k·s > 1``, is exact per pixel).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData, VarianceUncertainty

from nightlog.reduction._row_blocks import BLOCK_ROWS
from nightlog.reduction.combine import CombineResult
from nightlog.reduction.order_statistics import median

__all__ = ["bias_error_size", "bias_share", "bias_share_factor", "with_bias_share"]


def bias_error_size(bias: CCDData) -> float | None:
    """The typical error of a master bias: the median of its uncertainty (its unit,
    ADU), or ``None`` when it has none (then its share is not measured)."""
    if bias.uncertainty is None:
        return None
    var = np.asarray(bias.uncertainty.represent_as(VarianceUncertainty).array)
    var = var[np.isfinite(var) & (var > 0)]
    # The median of the variances as float64, without their float64 copy.
    return float(np.sqrt(median(var, overwrite=True, dtype=np.float64))) if var.size else None


def with_bias_share(result: CombineResult, bias: CCDData) -> npt.NDArray[np.float32] | None:
    """The dark's uncertainty with its share of the bias's error:
    ``√(σ_d² + s²σ_b²)`` per pixel (``σ_d`` the scatter of its frames), or ``None``
    when the share was not measured (a bias without uncertainty).

    Parameters
    ----------
    result : CombineResult
        The dark's combination, with ``offset_response``.
    bias : CCDData
        The master bias subtracted from its frames, with its uncertainty.

    Returns
    -------
    ndarray of float32 or None
        In the dark's unit (ADU/s for a rate).
    """
    if result.offset_response is None or bias.uncertainty is None:
        return None
    bias_var = np.asarray(bias.uncertainty.represent_as(VarianceUncertainty).array,
                          dtype=np.float32)
    share = result.offset_response
    # ``√(σ_d·σ_d + (s·s)·σ_b²)``, each product in an array of its own, then in place.
    plane = np.multiply(result.uncertainty, result.uncertainty)
    term = np.multiply(share, share)
    term *= bias_var
    plane += term
    return np.sqrt(plane, out=plane).astype(np.float32, copy=False)


def bias_share(result: CombineResult, valid: npt.NDArray[np.bool_]
               ) -> tuple[float, float] | None:
    """The mean over the ``valid`` pixels of the dark's share ``s`` of the bias's
    error, and of ``s²``.

    Parameters
    ----------
    result : CombineResult
        The dark's combination, with ``offset_response``.
    valid : ndarray of bool
        The master's good pixels.

    Returns
    -------
    (float, float) or None
        ``(⟨s⟩, ⟨s²⟩)`` (s⁻¹ and s⁻² for a rate); ``None`` when the combination
        did not measure it.
    """
    if result.offset_response is None:
        return None
    response = result.offset_response
    # Sums in float64 over blocks of rows (no frame-sized selection or float64 copy).
    count, total, squares = 0, 0.0, 0.0
    for r0 in range(0, response.shape[0], BLOCK_ROWS):
        rows = slice(r0, r0 + BLOCK_ROWS)
        block = response[rows]
        share = block[valid[rows] & np.isfinite(block)].astype(np.float64)
        count += share.size
        total += float(np.sum(share))
        squares += float(np.sum(share * share))
    if count == 0:
        return None
    return total / count, squares / count


def bias_share_factor(factor: float, share: float, share_sq: float | None = None) -> float:
    """How many times the master bias's variance a frame less ``factor`` times the
    dark carries beyond what the dark's own uncertainty brings:
    ``1 - 2k⟨s⟩ + k²·share_sq``.

    Parameters
    ----------
    factor : float
        ``k``, the dark's scale in the subtraction (seconds for a rate).
    share : float
        ``⟨s⟩``.
    share_sq : float or None
        The mean of ``s²`` the dark's uncertainty does not hold already: 0 for a
        master whose uncertainty holds ``s²σ_b²`` (:func:`with_bias_share`), ``s²``
        for an older one of darks of one exposure; ``None``: ``⟨s⟩²``.

    Returns
    -------
    float
        The factor; below 0 when the dark's uncertainty holds the square (its
        ``k²s²σ_b²`` is then larger than what the cross term takes back).
    """
    square = share * share if share_sq is None else share_sq
    return 1.0 - 2.0 * factor * share + factor * factor * square
