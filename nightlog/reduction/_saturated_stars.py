"""Stars with bad pixels at their centre, modelled from their good pixels.

A saturated star's core is bad (and so is a star's with a hot pixel at its centre):
the star model of the cosmic-ray step (:mod:`nightlog.reduction.cosmics_stars`) does
not fit it on the 11 × 11 box, and L.A.Cosmic's flags in its bright wings stay.
:func:`fit_cores_bad` fits such a star with the frame's PSF on the 21 × 21 box,
centred on the middle of its central bad pixels when there are ``_SATURATED`` or more
(a saturated core; with fewer, a hot pixel or two beside the peak, on the star's
brightest good pixel, which lies nearer its centre), the bad and flagged pixels left
out: the wings fix the amplitude, the centre and the width. Private: the arrays are those
of :func:`~nightlog.reduction.cosmics_stars.refine_on_stars`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from nightlog.reduction._moffat_fits import fit as _fit
from nightlog.reduction._moffat_fits import profile as _profile

__all__ = ["fit_cores_bad"]

_CORE = 4  # the central bad pixels: within this many pixels of a star's brightest good one
_SATURATED = 5  # at least this many central bad pixels: the box centred on their middle
_APART = 3  # two such stars closer than this (pixels) are one (the first kept)


def fit_cores_bad(d: np.ndarray, v: np.ndarray, skip: np.ndarray, centres: np.ndarray,
                  yy: np.ndarray, xx: np.ndarray, *, alpha: float, beta: float,
                  error: float, iterations: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit the stars whose centres hold bad pixels on boxes at the offsets ``yy``, ``xx``.

    Parameters
    ----------
    d, v : ndarray
        The frame (ADU) and its variance (ADU²).
    skip : ndarray of bool
        Bad pixels (the cores' ones among them) and pixels flagged as hits: not fitted.
    centres : ndarray of int
        Flat indices of those stars' brightest good pixels.
    yy, xx : ndarray
        Offsets of the box (pixels), a square of odd side.
    alpha, beta : float
        The frame's Moffat width (pixels) and index: the start, and ``β`` kept.
    error : float
        The frame's model error (fraction of the signal).
    iterations : int
        Levenberg--Marquardt iterations.

    Returns
    -------
    tuple of ndarray
        The boxes' centres (flat indices), parameters ``[A, b, y0, x0, α, β]`` (ADU,
        ADU, pixels), χ² per degree of freedom, clipped pixels and covariance.
    """
    ny, nx = d.shape
    half = int(yy.max())
    empty = (np.zeros(0, dtype=np.int64), np.zeros((0, 6), dtype=np.float32),
             np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros((0, 5, 5), dtype=np.float32))
    if not centres.size:
        return empty
    rows, cols = np.divmod(centres, nx)
    # The middle of the bad pixels near each centre.
    window = np.arange(-_CORE, _CORE + 1)
    wy, wx = (a.ravel() for a in np.meshgrid(window, window, indexing="ij"))
    ys = np.clip(rows[:, None] + wy[None, :], 0, ny - 1)
    xs = np.clip(cols[:, None] + wx[None, :], 0, nx - 1)
    core = skip.flat[ys * nx + xs]
    # Centred there with _SATURATED or more (bad or flagged); with fewer (a hot pixel
    # or two beside the peak) on the brightest good pixel, nearer the star's centre
    # than their middle, which may lie 4 px out.
    count = core.sum(axis=1)
    shift = count >= _SATURATED
    count = np.maximum(count, 1)
    rows = rows + np.where(shift, np.rint((core * wy).sum(axis=1) / count), 0).astype(np.int64)
    cols = cols + np.where(shift, np.rint((core * wx).sum(axis=1) / count), 0).astype(np.int64)
    inside = (rows >= half) & (rows < ny - half) & (cols >= half) & (cols < nx - half)
    rows, cols = rows[inside], cols[inside]
    if not rows.size:
        return empty
    keep = np.ones(rows.size, dtype=bool)
    pairs = cKDTree(np.column_stack([rows, cols])).query_pairs(
        _APART, p=np.inf, output_type="ndarray")
    if len(pairs):
        keep[pairs.max(axis=1)] = False
    rows, cols = rows[keep], cols[keep]
    boxes = rows * nx + cols
    where = boxes[:, None] + (yy * nx + xx).astype(np.int64)[None, :]
    values, noise = d.flat[where], v.flat[where]
    good = ~skip.flat[where]
    # Start: the border's median, the frame's PSF scaled to the wings near the core.
    border = (np.abs(yy) == half) | (np.abs(xx) == half)
    level = np.median(values[:, border], axis=1)
    edge = good[:, border].any(axis=1)
    if edge.any():
        level[edge] = np.nanmedian(np.where(good[edge][:, border], values[edge][:, border],
                                            np.nan), axis=1)
    shape = _profile(np.zeros((rows.size, 1)), np.zeros((rows.size, 1)),
                     np.full((rows.size, 1), alpha), np.full((rows.size, 1), beta), yy, xx)[0]
    wing = good & (shape > 0.02) & (shape < 0.5)
    ratio = np.where(wing, (values - level[:, None]) / shape, np.nan)
    usable = wing.sum(axis=1) >= 8
    if not usable.any():
        return empty
    amplitude = np.nanmedian(ratio[usable], axis=1)
    start = np.column_stack([amplitude, level[usable], np.zeros(usable.sum()),
                             np.zeros(usable.sum()), np.full(usable.sum(), alpha),
                             np.full(usable.sum(), beta)]).astype(np.float32)
    params, chi2, clipped, covariance = _fit(
        values[usable], noise[usable], good[usable], start, free_beta=False,
        alpha_range=(alpha / 2, alpha * 2), error=error, iterations=iterations,
        yy=yy, xx=xx)
    return boxes[usable], params, chi2, clipped, covariance
