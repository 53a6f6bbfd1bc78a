"""IRAF ``imcombine``'s clipping where it needs each value's frame: ``sigclip`` and
``avsigclip`` as IRAF defines them, the noise model (``ccdclip``) in each frame's
own units, and ``nkeep``.

The fast path of :mod:`~nightlog.reduction.rejection` sorts each pixel's values
once and forgets which frame each came from. Three of IRAF's rules need it back:

``sigclip``
    IRAF's sigma of the survivors about the centre, ``sqrt(Σ (x - c)² / (n - 1))``
    (the fast path's ``'std'`` is the population spread about the mean); with
    ``frame_scales`` each residual is first divided by its frame's Poisson factor
    ``f·sqrt(max(1, c/f))`` and the sigma multiplied by it.
``avsigclip``
    The spread is assumed proportional to the square root of the signal,
    ``sigma = k·sqrt(max(1, c))``, with the factor ``k`` (the inverse square root
    of an effective gain) measured from the stack itself, once per image line,
    before any rejection: ``k² = Σ (x - c)² / max(1, c) / (n - 1)`` over every
    value of every pixel of the line that has at least three, with ``c`` the
    pixel's median (``centre='median'``, IRAF ``mclip=yes``) or its average
    without the lowest and highest value (``centre='mean'``). ``k`` is not
    recomputed after rejection; ``c`` is.
Frame scales (``frame_scales=True``)
    A frame multiplied by ``f`` before combining has its noise multiplied by
    ``f`` too, at the level ``c/f`` of its own units. The noise model then
    gives frame ``i`` the sigma ``f_i·sqrt((rn/g)² + max(c/f_i, 0)/g)`` and
    ``avsigclip`` gives ``k·f_i·sqrt(max(1, c/f_i))`` with residuals converted to
    each frame's units in the estimate of ``k`` (IRAF's sigma correction for
    scaled images, always applied: ``sigscale = 0``).
``nkeep``
    After clipping, a pixel left with fewer than ``nkeep`` values (``nkeep >= 0``)
    or with more than ``-nkeep`` rejected (``nkeep < 0``) gets back the rejected
    values with the smallest absolute residual (in sigma, as computed when they
    were rejected), all values tied with it (within 0.001) together, until
    enough are kept. It applies to the values the clip rejected, never to masked
    ones or to min/max rejection.

Clipping iterates, for each pixel, until a pass rejects nothing, the pixel is
down to ``max(2, maxkeep)`` values, or ``max_iters`` passes were made; a pixel
with fewer than three values (two for the noise model, which needs no spread
from the data) is not clipped. With ``centre='mean'`` the first pass centres on
the average without the lowest and highest values, as IRAF does, and later
passes on the average of all survivors.

Pure: arrays in, a boolean array out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from nightlog.errors import CombineError

if TYPE_CHECKING:
    from nightlog.reduction.rejection import ClipSpec

__all__ = ["RESIDUAL_TIE", "reject_by_frame"]

#: Residuals (in sigma) closer than this are added back together by ``nkeep``.
RESIDUAL_TIE = 1e-3
_MAD_TO_SIGMA = 1.482602218505602


def _minmax(x: npt.NDArray[np.float64], nlow: int, nhigh: int) -> npt.NDArray[np.bool_]:
    """Valid values left after dropping the ``nlow`` lowest and ``nhigh`` highest."""
    valid = np.isfinite(x)
    if nlow == 0 and nhigh == 0:
        return valid
    order = np.argsort(np.where(valid, x, np.inf), axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(x.shape[0])[:, None], axis=0)
    n = valid.sum(axis=0)
    return valid & (ranks >= np.minimum(nlow, n)) & (ranks < np.maximum(n - nhigh, 0))


def _centre(x: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_], how: str,
            first: bool) -> npt.NDArray[np.float64]:
    values = np.where(keep, x, np.nan)
    n = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if how == "median":
            out = np.full(x.shape[1], np.nan)
            some = n > 0
            out[some] = np.nanmedian(values[:, some], axis=0)
            return out
        total = np.nansum(values, axis=0)
        if first:
            low = np.nanmin(np.where(keep, x, np.inf), axis=0)
            high = np.nanmax(np.where(keep, x, -np.inf), axis=0)
            trimmed = (total - low - high) / (n - 2)
            return np.where(n >= 3, trimmed, total / n)
        return total / n


def _avsig_factor(x: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_],
                  centre: npt.NDArray[np.float64], f: npt.NDArray[np.float64],
                  line: int) -> npt.NDArray[np.float64]:
    """IRAF's average Poisson-scaled sigma ``k`` of each line, per pixel."""
    n_pix = x.shape[1]
    used = keep & (keep.sum(axis=0) >= 3)[None, :]
    level = np.maximum(1.0, centre[None, :] / f)
    term = np.where(used, ((x - centre[None, :]) / f) ** 2 / level, 0.0)
    per_pixel_sum, per_pixel_n = term.sum(axis=0), used.sum(axis=0)
    k = np.zeros(n_pix)
    for start in range(0, n_pix, line):
        sl = slice(start, start + line)
        count = int(per_pixel_n[sl].sum())
        if count > 1:
            k[sl] = np.sqrt(float(per_pixel_sum[sl].sum()) / (count - 1))
    return k


def _sigma(x: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_],
           centre: npt.NDArray[np.float64], clip: ClipSpec, f: npt.NDArray[np.float64],
           k: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
    """Sigma of every value (``(N, P)``) in the units of the stack."""
    n = np.maximum(keep.sum(axis=0), 1)
    c = centre[None, :]
    if clip.spread == "std":
        mean = np.where(keep, x, 0.0).sum(axis=0) / n
        var = np.where(keep, (x - mean[None, :]) ** 2, 0.0).sum(axis=0) / n
        return np.broadcast_to(np.sqrt(var)[None, :], x.shape)
    if clip.spread == "mad":
        mad = np.full(x.shape[1], np.nan)
        some = keep.any(axis=0)
        mad[some] = np.nanmedian(np.where(keep, np.abs(x - c), np.nan)[:, some], axis=0)
        return np.broadcast_to((_MAD_TO_SIGMA * mad)[None, :], x.shape)
    if clip.spread == "noise":
        assert clip.read_noise is not None and clip.gain is not None
        level = np.maximum(c / f, 0.0) if clip.light else 0.0
        return f * np.sqrt((clip.read_noise / clip.gain) ** 2 + level / clip.gain)
    if clip.spread == "sigclip":
        # IRAF sigclip: the spread of the survivors about the centre, n - 1, each
        # residual in its frame's own Poisson units when frame_scales is on.
        w = f * np.sqrt(np.maximum(1.0, c / f)) if clip.frame_scales else np.ones_like(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.sqrt(np.where(keep, ((x - c) / w) ** 2, 0.0).sum(axis=0)
                        / (keep.sum(axis=0) - 1))
        return s[None, :] * w
    assert k is not None
    return k[None, :] * f * np.sqrt(np.maximum(1.0, c / f))


def _maxkeep(n: npt.NDArray[np.intp], nkeep: int | None) -> npt.NDArray[np.intp]:
    if nkeep is None:
        return np.zeros_like(n)
    if nkeep >= 0:
        return np.minimum(n, nkeep)
    return np.maximum(0, n + nkeep)


def reject_by_frame(tile: npt.NDArray[np.floating], clip: ClipSpec, *,
                    nlow: int = 0, nhigh: int = 0,
                    scales: npt.NDArray[np.float64] | None = None,
                    line_length: int | None = None) -> npt.NDArray[np.bool_]:
    """The values of each pixel that survive min/max rejection and IRAF-style clipping.

    Parameters
    ----------
    tile : ndarray, shape (N, P)
        One value per frame and pixel, already scaled; NaN means "no value". Not
        modified.
    clip : ClipSpec
        The clip: its spread (``'std'``, ``'mad'``, ``'noise'``, ``'avsigclip'``),
        centre, thresholds, ``max_iters``, ``nkeep`` and ``frame_scales``.
    nlow, nhigh : int
        Lowest and highest valid values of each pixel dropped first (IRAF
        ``minmax``); ``nkeep`` never gives them back.
    scales : ndarray, shape (N,), optional
        The factor each frame was multiplied by (default 1). With
        ``frame_scales=False`` the noise model uses their mean, as the fast path.
    line_length : int, optional
        Pixels per image line, for the per-line factor of ``avsigclip``; default
        the whole tile is one line. ``P`` must be a multiple of it.

    Returns
    -------
    ndarray of bool, shape (N, P)
        True for the values that are kept.

    Raises
    ------
    CombineError
        Scales of the wrong length or not positive, or a tile that is not whole
        lines.
    """
    x = np.asarray(tile, dtype=np.float64)
    n_frames, n_pix = x.shape
    factors = np.ones(n_frames) if scales is None else np.asarray(scales, dtype=np.float64)
    if factors.shape != (n_frames,) or not np.all(factors > 0):
        raise CombineError(f"need {n_frames} positive scale factors, got {factors!r}")
    if clip.frame_scales:
        f = factors[:, None]
    else:
        mean_scale = float(np.mean(factors)) if clip.spread == "noise" else 1.0
        f = np.full((n_frames, 1), mean_scale)
    line = n_pix if line_length is None else int(line_length)
    if line < 1 or (n_pix and n_pix % line):
        raise CombineError(f"a tile of {n_pix} pixels is not whole lines of {line}")
    keep = _minmax(x, nlow, nhigh)
    n_start = keep.sum(axis=0)
    maxkeep = _maxkeep(n_start, clip.nkeep)
    min_clip = 2 if clip.spread == "noise" else 3
    active = n_start >= np.maximum(min_clip, maxkeep + 1)
    resid = np.full(x.shape, np.inf)
    centre = _centre(x, keep, clip.centre, first=True)
    k = _avsig_factor(x, keep, centre, f, line) if clip.spread == "avsigclip" else None
    passes = 0
    while active.any() and (clip.max_iters is None or passes < clip.max_iters):
        passes += 1
        if passes > 1:
            centre = _centre(x, keep, clip.centre, first=False)
        sigma = _sigma(x, keep, centre, clip, f, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (x - centre[None, :]) / sigma
        low = np.zeros(x.shape, dtype=bool) if clip.low is None else r < -clip.low
        high = np.zeros(x.shape, dtype=bool) if clip.high is None else r > clip.high
        rejected = keep & active[None, :] & (sigma > 0) & (low | high)
        resid[rejected] = np.abs(r[rejected])
        keep &= ~rejected
        n_now = keep.sum(axis=0)
        active &= rejected.any(axis=0) & (n_now > np.maximum(2, maxkeep))
    _restore(keep, resid, maxkeep)
    return keep


def _restore(keep: npt.NDArray[np.bool_], resid: npt.NDArray[np.float64],
             maxkeep: npt.NDArray[np.intp]) -> None:
    """Give back, in place, the rejected values with the smallest residuals (ties
    together) until every pixel keeps ``maxkeep`` values."""
    while True:
        short = keep.sum(axis=0) < maxkeep
        if not short.any():
            return
        candidates = np.where(~keep & np.isfinite(resid) & short[None, :], resid, np.inf)
        best = candidates.min(axis=0)
        back = candidates <= (best + RESIDUAL_TIE)[None, :]
        back &= np.isfinite(candidates)
        if not back.any():
            return
        keep |= back
