"""The stars of a frame, for the star model of the cosmic-ray step.

:mod:`nightlog.reduction.cosmics_stars` models the stars under its candidates; they
are found here as local maxima (over 3 × 3 bins) of the frame binned ``_BIN`` × ``_BIN``
(flagged and bad pixels left out) more than ``_DETECT_SIGMA`` (σ of the bin's mean)
above the local sky, the median of the bins of each ``_CELL`` × ``_CELL``-bin cell
(64 × 64 px), each centred on the brightest good pixel of its bin and the ring of one
pixel around it. Private: the arrays are those of
:func:`~nightlog.reduction.cosmics_stars.refine_on_stars`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["find_stars"]

_BIN = 4  # binning of the star search (pixels)
_CELL = 16  # bins per side of a sky cell
_DETECT_SIGMA = 6.0  # a star's bin above the sky (σ of the bin's mean)


def find_stars(d: np.ndarray, v: np.ndarray, skip: np.ndarray, margin: int) -> np.ndarray:
    """Flat indices of the stars' brightest pixels (module docstring).

    Parameters
    ----------
    d, v : ndarray
        The frame (ADU) and its variance (ADU²).
    skip : ndarray of bool
        Pixels left out of the bins and never a star's brightest (bad, flagged).
    margin : int
        A star's brightest pixel lies at least this far inside the frame (pixels).

    Returns
    -------
    ndarray of int
        The flat indices, sorted.
    """
    ny, nx = d.shape
    by, bx = ny // _BIN, nx // _BIN
    rows_sum = sum(d[k:by * _BIN:_BIN, :bx * _BIN] for k in range(_BIN))
    sums = sum(rows_sum[:, k::_BIN] for k in range(_BIN))
    excluded = np.flatnonzero(skip)
    rows, cols = np.divmod(excluded, nx)
    inside = (rows < by * _BIN) & (cols < bx * _BIN)
    bins = (rows[inside] // _BIN) * bx + cols[inside] // _BIN
    sums -= np.bincount(bins, d.flat[excluded[inside]], by * bx).reshape(by, bx
                                                                      ).astype(np.float32)
    counts = _BIN * _BIN - np.bincount(bins, minlength=by * bx).reshape(by, bx)
    means = sums / np.maximum(counts, 1)
    sky = _sky(means)
    spread = np.sqrt(v[_BIN // 2:by * _BIN:_BIN, _BIN // 2:bx * _BIN:_BIN]
                     / np.maximum(counts, 1))
    excess = np.where(counts > 0, means - sky, np.float32(0))
    peaks = (excess > _DETECT_SIGMA * spread) & (
        excess == _maximum3(excess))
    peak_rows, peak_cols = np.nonzero(peaks)
    # The brightest good pixel of the bin and its ring of one pixel.
    window = np.arange(-1, _BIN + 1)
    wy, wx = np.meshgrid(window, window, indexing="ij")
    ys = np.clip(peak_rows[:, None] * _BIN + wy.ravel()[None, :], 0, ny - 1)
    xs = np.clip(peak_cols[:, None] * _BIN + wx.ravel()[None, :], 0, nx - 1)
    flat = ys * nx + xs
    values = d.flat[flat]
    values[skip.flat[flat]] = -np.inf
    best = flat[np.arange(len(flat)), np.argmax(values, axis=1)]
    best = np.unique(best)
    rows, cols = np.divmod(best, nx)
    keep = (rows >= margin) & (rows < ny - margin) & (cols >= margin) & (cols < nx - margin)
    return best[keep]


def _maximum3(values: np.ndarray) -> np.ndarray:
    """Maximum over each pixel's 3 × 3 box (the edge: over the part inside)."""
    rows = values.copy()
    np.maximum(rows[1:], values[:-1], out=rows[1:])
    np.maximum(rows[:-1], values[1:], out=rows[:-1])
    out = rows.copy()
    np.maximum(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


def _sky(means: np.ndarray) -> np.ndarray:
    """The median of each ``_CELL`` × ``_CELL`` cell of the binned frame, at each bin
    (the last partial cells share their neighbour's)."""
    by, bx = means.shape
    cy, cx = by // _CELL, bx // _CELL
    cells = means[:cy * _CELL, :cx * _CELL].reshape(cy, _CELL, cx, _CELL)
    level = np.median(cells.transpose(0, 2, 1, 3).reshape(cy, cx, -1), axis=2)
    rows = np.minimum(np.arange(by) // _CELL, cy - 1)
    cols = np.minimum(np.arange(bx) // _CELL, cx - 1)
    return level[rows[:, None], cols[None, :]]
